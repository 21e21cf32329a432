"""What the generated fuzz tests share: the leak check and the case counts they report.

Both fuzzers (schemathesis over REST, Hypothesis over native gRPC) count the cases they send
per service; ``tests/e2e/conftest.py`` prints the counts at the end of the run.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, Phase, settings

__all__ = ["CASES", "LEAKS", "fixed_budget", "leaked"]

CASES: Counter[str] = Counter()
"""Cases sent, by ``"<transport> <service>"``."""

# Words that only Python, SQL or the server's internals would put in an answer.
LEAKS = ("Traceback", "<class", "DecodeError", "Exception", "sqlalchemy", "asyncpg", 'File "/')


def leaked(text: str) -> str | None:
    """The first internal-looking word in ``text``, or None."""
    return next((word for word in LEAKS if word in text), None)


def fixed_budget(examples: int) -> settings:
    """Hypothesis settings for CI: ``examples`` cases, reproducible, no deadline per case,
    no shrinking (a failure is reported as found) and no example database."""
    return settings(
        max_examples=examples,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
