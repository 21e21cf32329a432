"""What the generated fuzz tests share: the leak check and the case counts they report.

Both fuzzers (schemathesis over REST, Hypothesis over native gRPC) count the cases they send
per service; ``tests/e2e/conftest.py`` prints the counts at the end of the run.
"""

from __future__ import annotations

from collections import Counter

__all__ = ["CASES", "LEAKS", "leaked"]

CASES: Counter[str] = Counter()
"""Cases sent, by ``"<transport> <service>"``."""

# Words that only Python, SQL or the server's internals would put in an answer.
LEAKS = ("Traceback", "<class", "DecodeError", "Exception", "sqlalchemy", "asyncpg", 'File "/')


def leaked(text: str) -> str | None:
    """The first internal-looking word in ``text``, or None."""
    return next((word for word in LEAKS if word in text), None)
