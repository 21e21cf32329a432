"""SQLite reads that run on the event loop's own thread, with no async machinery around them.

Through SQLAlchemy's asyncio extension every SQLite call (cursor, execute, fetch, close)
is a round trip to aiosqlite's helper thread, and every statement a greenlet switch or
three: a primary-key read measured about ten times the CPU of the same read done plainly
(some 1,300 us against 120 us on this project's 2-core machines), and it dominated every
simple RPC.

Reads on a SQLite file therefore go through a plain, synchronous SQLAlchemy engine,
called inline where they are awaited (:class:`InlineReader`). That is safe for reads
only: in WAL mode a reader never waits for a writer, and a point read takes tens of
microseconds. Writers keep aiosqlite's thread, since a write may wait up to the busy
timeout for another process's lock. Every read connection sets ``PRAGMA query_only``,
so a write attempted through one fails loudly instead of blocking the loop.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, Executable, Result, ScalarResult, create_engine, event
from sqlalchemy.pool import QueuePool
from sqlalchemy.util.typing import TupleAny, Unpack

__all__ = ["InlineReader", "create_read_engine"]


class InlineReader:
    """The read methods of an ``AsyncConnection``, run synchronously on a plain one."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def execute(
        self, statement: Executable, parameters: Any = None
    ) -> Result[Unpack[TupleAny]]:
        return self._connection.execute(statement, parameters)

    async def scalar(self, statement: Executable, parameters: Any = None) -> Any:
        return self._connection.scalar(statement, parameters)

    async def scalars(self, statement: Executable, parameters: Any = None) -> ScalarResult[Any]:
        return self._connection.scalars(statement, parameters)


def _read_only(busy_timeout_ms: int) -> Any:
    def tune(dbapi_connection: Any, _record: Any) -> None:
        # isolation_level None: no implicit transaction, so every SELECT is its own read
        # transaction and sees the latest commit, as under PostgreSQL's READ COMMITTED.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    return tune


def create_read_engine(path: str, busy_timeout_ms: int) -> Engine:
    """A synchronous engine of read-only connections to the SQLite file at ``path``.

    Its pool never makes a caller wait (``max_overflow=-1``): waiting would block the
    event loop, and with it the reader that would have given a connection back.
    """
    engine = create_engine(
        f"sqlite:///{path}",
        poolclass=QueuePool,
        pool_size=8,
        max_overflow=-1,
        pool_reset_on_return=None,  # read-only and autocommit: nothing to roll back
        connect_args={"check_same_thread": False},  # a finaliser may close it elsewhere
    )
    event.listen(engine, "connect", _read_only(busy_timeout_ms))
    return engine
