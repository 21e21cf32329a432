"""SQLite read connections that run on the event loop's own thread.

aiosqlite runs every call (BEGIN, cursor, execute, fetch, close, rollback) on a helper
thread and wakes the event loop for each result: six thread round trips for one
primary-key read, which measured 10x the CPU of the read itself (about 1,300 us against
120 us per read on this project's 2-core machines) and dominated every simple RPC.

:func:`inline_connection` gives SQLAlchemy's aiosqlite dialect a connection with the same
async interface whose calls simply run where they are awaited. It is used only for
read-only sessions (``Database.reading()``), where that is safe: in WAL mode a reader
never waits for a writer, and a point read takes tens of microseconds. Writers keep
aiosqlite's thread, since a write may wait up to the busy timeout for another process's
lock. Each read connection sets ``PRAGMA query_only``, so a write attempted through one
fails loudly instead of blocking the loop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["InlineConnection", "inline_connection"]


class InlineCursor:
    """The subset of ``aiosqlite.Cursor`` SQLAlchemy's adapter uses, run inline."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> InlineCursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class InlineConnection:
    """The subset of ``aiosqlite.Connection`` SQLAlchemy's adapter uses, run inline."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        # What the adapter checks before commit and rollback: None once closed.
        self._connection: sqlite3.Connection | None = connection

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Terminate (SQLAlchemy's forced close): nothing runs elsewhere, so just close."""
        self._connection = None
        self._conn.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level


async def inline_connection(path: str, busy_timeout_ms: int) -> InlineConnection:
    """A read-only connection to the database file at ``path``.

    Transactions are left to the caller's ``BEGIN`` (``isolation_level=None``), exactly
    like the write connections, so a session reads one consistent snapshot.
    """
    connection = sqlite3.connect(
        path,
        isolation_level=None,
        check_same_thread=False,  # SQLAlchemy's pool may close it from a finaliser thread
    )
    connection.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    connection.execute("PRAGMA query_only=ON")
    return InlineConnection(connection)
