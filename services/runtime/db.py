"""Async database access (SQLAlchemy 2) and per-service schema migrations.

SQLite (aiosqlite) is the embedded default, tuned per connection for WAL, foreign
keys and a busy timeout; its read-only sessions run on the event loop's thread
(:mod:`services.runtime.sqlite` says why). PostgreSQL is reached through asyncpg.

Migrations are Alembic revisions in each service's ``migrations/versions/`` folder,
applied at start-up through Alembic's ``EnvironmentContext`` rather than an
``env.py`` per service: Alembic gives ordered, versioned, reviewable revisions and
``alembic_version`` bookkeeping on both databases, while one runner here keeps the
six services from carrying six copies of the same ``env.py``. On PostgreSQL an
advisory lock serialises replicas that start together.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, cast

import asyncpg
import sqlalchemy.exc
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, DateTime, Executable, ScalarResult, TypeDecorator, event, text
from sqlalchemy.engine import CursorResult, Result, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util.typing import TupleAny, Unpack

from services.runtime.sqlite import InlineReader, create_read_engine

__all__ = [
    "Database",
    "Reader",
    "UtcDateTime",
    "after_commit",
    "is_outage",
    "migrate",
    "rowcount",
]


class Reader(Protocol):
    """What stores read through: an ``AsyncConnection``, or on SQLite an
    :class:`~services.runtime.sqlite.InlineReader`."""

    async def execute(
        self, statement: Executable, parameters: Any = None
    ) -> Result[Unpack[TupleAny]]: ...

    async def scalar(self, statement: Executable, parameters: Any = None) -> Any: ...

    async def scalars(self, statement: Executable, parameters: Any = None) -> ScalarResult[Any]: ...


SQLITE_BUSY_TIMEOUT_MS = 10_000
_IDLE_READERS = 8  # inline read connections kept between reads (the read pool's size)
_IMMEDIATE = "alea_sqlite_immediate"
_AFTER_COMMIT = "alea_after_commit"


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling starts transactions late (at the first write),
    # so a read-then-write loses updates; _begin_sqlite takes over instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _begin_sqlite(connection: Connection) -> None:
    # Write transactions take the write lock up front (BEGIN IMMEDIATE): two deferred
    # transactions that both read and then write would otherwise fail with "database is
    # locked" instead of waiting their turn. Reads stay deferred and run concurrently (WAL).
    immediate = connection.get_execution_options().get(_IMMEDIATE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_engine(url: str) -> AsyncEngine:
    """An async engine for ``url``; creates the SQLite file's directory if needed."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _tune_sqlite)
        event.listen(engine.sync_engine, "begin", _begin_sqlite)
        return engine
    # Autocommit by default: a read is one statement with no BEGIN and ROLLBACK around it,
    # and the checkout's ping one ";" (with a transaction it is BEGIN, ";", ROLLBACK), so
    # a read takes two round trips instead of six. Transactions and migrations ask for
    # READ COMMITTED (_READ_COMMITTED), a flag of the driver that costs no round trip.
    return create_async_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=10, isolation_level="AUTOCOMMIT"
    )


_READ_COMMITTED = {"isolation_level": "READ COMMITTED"}


def _sqlite_file(url: str) -> str | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


def _upgrade(connection: Connection, migrations: Path) -> None:
    config = Config()
    config.set_main_option("script_location", str(migrations))
    script = ScriptDirectory.from_config(config)

    def upgrade(revision: Any, _context: Any) -> Any:
        return script._upgrade_revs("head", revision)

    with EnvironmentContext(config, script, fn=upgrade, destination_rev="head") as env:
        env.configure(connection=connection, render_as_batch=True)
        with env.begin_transaction():
            if connection.dialect.name == "postgresql":
                lock_key = zlib.crc32(str(migrations.parent.name).encode())
                connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key})
            env.run_migrations()


async def migrate(engine: AsyncEngine, migrations: Path) -> None:
    """Apply every pending Alembic revision under ``migrations`` (idempotent)."""
    async with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execution_options(**_READ_COMMITTED)
        await connection.run_sync(_upgrade, migrations)
        await connection.commit()


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which drops the zone) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value


class Database:
    """One service's engine plus a session factory; open once, close on shutdown."""

    def __init__(self, url: str, migrations: Path | None = None) -> None:
        self.url = url
        self.migrations = migrations
        self.engine = create_engine(url)
        path = _sqlite_file(url)
        # SQLite reads run inline on a plain engine: see services.runtime.sqlite.
        self.read_engine = create_read_engine(path, SQLITE_BUSY_TIMEOUT_MS) if path else None
        # Inline read connections wait here for the next reader rather than going back to
        # the pool: a checkout and return cost as much as the primary-key read they serve.
        self._idle_readers: list[Connection] = []
        # SQLite has one write lock, and a writer waiting for it sleeps in SQLite's busy
        # handler in growing steps (up to 100 ms) rather than taking its turn: a process's
        # concurrent writers commit several times slower than one after the other. So they
        # queue here; other processes on the same file still wait in the busy handler.
        self._sqlite_writer = asyncio.Lock()
        self._sqlite_writer_task: asyncio.Task[Any] | None = None

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    async def open(self) -> None:
        """Run pending migrations."""
        if self.migrations is not None:
            await migrate(self.engine, self.migrations)

    async def close(self) -> None:
        """Dispose of every pooled connection."""
        if self.read_engine is not None:
            while self._idle_readers:
                self._idle_readers.pop().close()
            self.read_engine.dispose()
        await self.engine.dispose()

    async def reachable(self, within: float) -> bool:
        """Whether the database answers ``SELECT 1`` within ``within`` seconds."""
        try:
            async with asyncio.timeout(within), self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:  # refused, reset, timed out, shutting down, out of connections...
            return False
        return True

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Reader]:
        """A connection for reads. Each statement sees what was committed when it ran, as
        under PostgreSQL's READ COMMITTED (on PostgreSQL each runs in autocommit: its own
        transaction). On SQLite it runs inline on the event loop and is read-only: a write
        through it fails.

        Stores run Core statements on connections rather than ORM sessions: a session
        costs several times the CPU of the query it runs.
        """
        if self.read_engine is None:
            async with self.engine.connect() as connection:
                yield connection
            return
        idle = self._idle_readers
        inline = idle.pop() if idle else self.read_engine.connect()
        try:
            yield InlineReader(inline)
        except BaseException:  # whatever state a failure left it in goes with it
            inline.close()
            raise
        if inline.invalidated or len(idle) >= _IDLE_READERS:
            inline.close()
        else:
            idle.append(inline)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside one transaction: committed on success, rolled back on error.

        On SQLite it holds the database's single write lock from the start, so keep it
        short and never open a second ``transaction()`` inside one (RuntimeError: it would
        wait forever). Read-only work belongs in ``reading()``.
        """
        if self.dialect != "sqlite":
            async with self._transaction() as connection:
                yield connection
            return
        if self._sqlite_writer.locked() and self._sqlite_writer_task is asyncio.current_task():
            raise RuntimeError("a transaction() inside a transaction() would wait forever")
        async with self._sqlite_writer:
            self._sqlite_writer_task = asyncio.current_task()
            try:
                async with self._transaction(immediate=True) as connection:
                    yield connection
            finally:
                self._sqlite_writer_task = None

    @asynccontextmanager
    async def _transaction(self, immediate: bool = False) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as connection:
            if immediate:
                await connection.execution_options(**{_IMMEDIATE: True})
            else:
                await connection.execution_options(**_READ_COMMITTED)
            # Taken while the connection is live: once SQLAlchemy has invalidated it (the
            # server went away, or a statement was cancelled), reading connection.info
            # reconnects, synchronously and outside a greenlet, and raises MissingGreenlet
            # in place of the error being handled (an outage, a cancellation).
            info = connection.info
            try:
                async with connection.begin():
                    yield connection
            except BaseException:
                # info lives with the pooled DBAPI connection: never hand it to the next user.
                info.pop(_AFTER_COMMIT, None)
                raise
            for callback in info.pop(_AFTER_COMMIT, ()):
                callback()


def after_commit(connection: AsyncConnection, callback: Callable[[], None]) -> None:
    """Call ``callback`` once the transaction ``connection`` belongs to (one of
    :meth:`Database.transaction`) has committed; never if it rolls back."""
    connection.info.setdefault(_AFTER_COMMIT, []).append(callback)


def rowcount(result: Result[Any]) -> int:
    """Rows matched by an UPDATE or DELETE run through ``connection.execute``.

    SQLAlchemy returns a ``CursorResult`` for DML but types ``execute`` as ``Result``;
    conditional updates (leases, quotas) read their outcome from this count.
    """
    return cast(CursorResult[Any], result).rowcount


_OUTAGES: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, aborted
    TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,  # starting up or shutting down
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
)


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` means the database could not be reached (down, restarting, the
    connection lost) rather than a fault of the statement: the client should retry.

    Also an error raised while handling such a one (SQLAlchemy's ``PendingRollbackError``
    on the connection just lost, a rollback that cannot reach the server): the outage is
    what happened, whatever was raised last."""
    seen: set[int] = set()
    found: BaseException | None = error
    while found is not None and id(found) not in seen:
        seen.add(id(found))
        if isinstance(found, sqlalchemy.exc.DBAPIError) and found.connection_invalidated:
            return True
        if isinstance(found, _OUTAGES):
            return True
        context = None if found.__suppress_context__ else found.__context__
        found = getattr(found, "orig", None) or found.__cause__ or context
    return False
