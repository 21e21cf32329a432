"""Database runtime: SQLite tuning, serialised write transactions, migrations on both engines."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError, PendingRollbackError

from services.runtime.db import Database, after_commit, is_outage
from tests.support.postgres import postgres  # noqa: F401  (session fixture)

IDENTITY_MIGRATIONS = Path(__file__).parents[3] / "services" / "identity" / "migrations"


@pytest.fixture
async def sqlite(tmp_path: Path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/nested/dir/x.db")
    yield db
    await db.close()


async def test_sqlite_connections_are_tuned(sqlite: Database) -> None:
    async with sqlite.transaction() as connection:
        pragmas = [
            (await connection.execute(text(f"PRAGMA {name}"))).scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout", "query_only")
        ]
    assert pragmas == ["wal", 1, 10_000, 0]
    async with sqlite.reading() as connection:
        pragmas = [
            (await connection.execute(text(f"PRAGMA {name}"))).scalar()
            for name in ("journal_mode", "busy_timeout", "query_only")
        ]
    assert pragmas == ["wal", 10_000, 1]


async def test_sqlite_reads_are_read_only_and_see_committed_writes(sqlite: Database) -> None:
    async with sqlite.transaction() as connection:
        await connection.execute(text("CREATE TABLE t (n INTEGER)"))
        await connection.execute(text("INSERT INTO t VALUES (1)"))
    async with sqlite.reading() as connection:
        assert (await connection.execute(text("SELECT n FROM t"))).scalar_one() == 1
        with pytest.raises(OperationalError, match="readonly"):
            await connection.execute(text("INSERT INTO t VALUES (2)"))
    async with sqlite.reading() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1


async def test_a_read_statement_sees_each_commit_and_never_blocks_a_writer(
    sqlite: Database,
) -> None:
    async with sqlite.transaction() as connection:
        await connection.execute(text("CREATE TABLE t (n INTEGER)"))
        await connection.execute(text("INSERT INTO t VALUES (1)"))
    async with sqlite.reading() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1
        async with sqlite.transaction() as writer:  # WAL: the writer does not wait for us
            await writer.execute(text("INSERT INTO t VALUES (2)"))
        # READ COMMITTED, as on PostgreSQL: the next statement sees the commit.
        assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar_one() == 2


async def test_read_connections_kept_between_readings_see_every_commit(sqlite: Database) -> None:
    async with sqlite.transaction() as connection:
        await connection.execute(text("CREATE TABLE t (n INTEGER)"))
    for n in range(3):
        async with sqlite.reading() as connection:  # the previous reading's connection
            assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar_one() == n
        async with sqlite.transaction() as writer:
            await writer.execute(text("INSERT INTO t VALUES (1)"))
    with pytest.raises(LookupError):
        async with sqlite.reading() as connection:  # a failed reading closes its connection
            await connection.execute(text("SELECT count(*) FROM t"))
            raise LookupError
    async with sqlite.reading() as first, sqlite.reading() as second:  # two at once
        for connection in (first, second):
            assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar_one() == 3


async def test_concurrent_read_modify_write_transactions_do_not_collide(sqlite: Database) -> None:
    async with sqlite.transaction() as session:
        await session.execute(text("CREATE TABLE counter (n INTEGER)"))
        await session.execute(text("INSERT INTO counter VALUES (0)"))

    async def increment() -> None:
        async with sqlite.transaction() as session:
            n = (await session.execute(text("SELECT n FROM counter"))).scalar_one()
            await asyncio.sleep(0.01)  # let the others read the same value if they can
            await session.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})

    await asyncio.gather(*(increment() for _ in range(8)))
    async with sqlite.reading() as session:
        assert (await session.execute(text("SELECT n FROM counter"))).scalar_one() == 8


async def test_a_process_s_writers_queue_without_holding_connections(sqlite: Database) -> None:
    """Writers of one process wait for their turn in the process, not in SQLite's busy
    handler (which sleeps up to 100 ms a try): only the writer inside holds a connection."""
    async with sqlite.transaction() as session:
        await session.execute(text("CREATE TABLE t (n INTEGER)"))
    held: list[int] = []

    async def write(n: int) -> None:
        async with sqlite.transaction() as session:
            await asyncio.sleep(0.01)  # the others arrive meanwhile
            held.append(sqlite.engine.pool.checkedout())
            await session.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})

    await asyncio.gather(*(write(n) for n in range(8)))
    assert held == [1] * 8
    async with sqlite.reading() as session:
        assert (await session.execute(text("SELECT count(*) FROM t"))).scalar_one() == 8


async def test_a_transaction_inside_a_transaction_is_an_error_not_a_hang(sqlite: Database) -> None:
    async with sqlite.transaction():
        with pytest.raises(RuntimeError, match="inside a transaction"):
            async with sqlite.transaction():
                pass
    async with sqlite.transaction():  # the lock was released
        pass


async def test_a_failed_transaction_rolls_back(sqlite: Database) -> None:
    async with sqlite.transaction() as session:
        await session.execute(text("CREATE TABLE t (n INTEGER)"))
    with pytest.raises(RuntimeError):
        async with sqlite.transaction() as session:
            await session.execute(text("INSERT INTO t VALUES (1)"))
            raise RuntimeError("boom")
    async with sqlite.reading() as session:
        assert (await session.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0


@pytest.mark.integration
async def test_migrations_run_once_on_postgresql(postgres) -> None:  # noqa: F811
    url = postgres.create_database("migrations_test")
    db = Database(url, IDENTITY_MIGRATIONS)
    try:
        await db.open()
        await db.open()  # a restart finds nothing to do
        async with db.reading() as session:
            version = await session.execute(text("SELECT version_num FROM alembic_version"))
            assert version.scalars().all() == ["0002"]
            tables = await session.execute(
                text("SELECT count(*) FROM information_schema.tables WHERE table_name = 'users'")
            )
            assert tables.scalar_one() == 1
    finally:
        await db.close()


@pytest.mark.integration
async def test_postgresql_reads_run_in_autocommit_and_transactions_stay_whole(
    postgres,  # noqa: F811
) -> None:
    db = Database(postgres.create_database("autocommit_test"))
    xid = text("SELECT pg_current_xact_id()")  # the transaction's id, assigned on first call
    try:
        async with db.reading() as session:  # each statement its own transaction: no BEGIN
            assert await session.scalar(xid) != await session.scalar(xid)
        async with db.transaction() as session:
            assert await session.scalar(xid) == await session.scalar(xid)
            await session.execute(text("CREATE TABLE t (n INTEGER)"))
        with pytest.raises(RuntimeError):
            async with db.transaction() as session:
                await session.execute(text("INSERT INTO t VALUES (1)"))
                raise RuntimeError("boom")
        async with db.reading() as session:
            assert await session.scalar(text("SELECT count(*) FROM t")) == 0
    finally:
        await db.close()


@pytest.mark.integration
async def test_a_transaction_whose_connection_is_lost_raises_the_driver_s_outage(
    postgres,  # noqa: F811
) -> None:
    # The server ends the transaction's connection (as when PostgreSQL restarts): what comes
    # out is the driver's error on the invalidated connection, an outage in itself, not an
    # error raised while cleaning up after it.
    db = Database(postgres.create_database("lost_connection_test"))
    committed: list[str] = []
    try:
        with pytest.raises(DBAPIError) as raised:
            async with db.transaction() as session:
                after_commit(session, lambda: committed.append("committed"))
                pid = await session.scalar(text("SELECT pg_backend_pid()"))
                async with db.reading() as other:
                    await other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
                await session.execute(text("SELECT 1"))
        assert raised.value.connection_invalidated
        assert is_outage(raised.value)
        assert committed == []
        async with db.transaction() as session:  # the pool connects again
            after_commit(session, lambda: committed.append("committed"))
            assert await session.scalar(text("SELECT 1")) == 1
        assert committed == ["committed"]
    finally:
        await db.close()


@pytest.mark.integration
async def test_a_transaction_cancelled_mid_statement_is_cancelled(
    postgres,  # noqa: F811
) -> None:
    # SQLAlchemy invalidates a connection whose statement was interrupted; the cancellation
    # (a client gone, a deadline) must come out as such, and a timeout as TimeoutError.
    db = Database(postgres.create_database("cancelled_transaction_test"))
    started = asyncio.Event()

    async def sleeping() -> None:
        async with db.transaction() as session:
            started.set()
            await session.execute(text("SELECT pg_sleep(10)"))

    try:
        task = asyncio.create_task(sleeping())
        await started.wait()
        await asyncio.sleep(0.2)  # the statement is under way
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await sleeping()
        async with db.reading() as session:
            assert await session.scalar(text("SELECT 1")) == 1
    finally:
        await db.close()


def _raised_while_handling(
    first: BaseException, then: BaseException, *, hide: bool
) -> BaseException:
    """``then`` as raised in an ``except`` block of ``first`` (``from None`` when ``hide``)."""
    try:
        try:
            raise first
        except BaseException:
            if hide:
                raise then from None
            raise then  # noqa: B904  (chained implicitly, as a library's handler does)
    except BaseException as raised:
        return raised


def test_an_error_raised_while_handling_a_lost_connection_is_an_outage() -> None:
    lost = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
    rollback = PendingRollbackError("Can't reconnect until invalid transaction is rolled back")
    assert is_outage(lost)
    assert not is_outage(rollback)
    assert is_outage(_raised_while_handling(lost, rollback, hide=False))
    # Not when the handler said the first error does not matter, nor for a plain error.
    assert not is_outage(_raised_while_handling(lost, ValueError("x"), hide=True))
    assert not is_outage(ValueError("x"))
    caused = ValueError("wrapped")
    caused.__cause__ = TimeoutError()
    assert is_outage(caused)
