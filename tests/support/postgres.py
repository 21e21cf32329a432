"""A throwaway PostgreSQL server for tests: ``initdb`` into a temp dir, start, drop.

Usage in a conftest::

    from tests.support.postgres import postgres  # noqa: F401  (session fixture)

    def test_x(postgres):
        url = postgres.create_database("identity")  # postgresql+asyncpg://...

As root, ``initdb`` refuses to run, so it and the server run as the ``postgres``
system user. The fixture skips (saying why) only when the binaries are absent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.services import free_port

PG_BIN = Path(os.environ.get("ALEA_PG_BIN", "/usr/lib/postgresql/15/bin"))
SUPERUSER = "postgres"


def _as_server_user(args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", SUPERUSER, "--", *args]
    return args


@dataclass
class PostgresServer:
    """A running server on 127.0.0.1:``port`` with trust authentication."""

    directory: Path
    port: int

    def _psql(self, sql: str) -> None:
        subprocess.run(
            [
                str(PG_BIN / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        """Stop the server at once (an outage); :meth:`start` brings it back, data kept."""
        _pg_ctl(self.directory, "-m", "immediate", "stop")

    def start(self) -> None:
        """Start the server again on the same port and data directory."""
        _pg_ctl(self.directory, "-o", _options(self.directory, self.port), "start")

    def url(self, database: str) -> str:
        """The SQLAlchemy asyncpg URL of ``database``."""
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create (or recreate, empty) database ``name`` and return its URL."""
        self._psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._psql(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _options(directory: Path, port: int) -> str:
    return f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off"


def _pg_ctl(directory: Path, *args: str) -> None:
    data = directory / "data"
    command = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(directory / "server.log")]
    subprocess.run(_as_server_user([*command, "-w", *args]), check=True, capture_output=True)


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a fresh server in a temp dir; stop it and remove the dir on exit."""
    directory = Path(tempfile.mkdtemp(prefix="alea-pg-"))
    data = directory / "data"
    if os.geteuid() == 0:
        shutil.chown(directory, SUPERUSER, SUPERUSER)
    port = free_port()
    run = subprocess.run
    try:
        run(
            _as_server_user(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(data),
                    "-A",
                    "trust",
                    "-U",
                    SUPERUSER,
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )
        _pg_ctl(directory, "-o", _options(directory, port), "start")
        yield PostgresServer(directory, port)
    finally:
        if (data / "postmaster.pid").exists():
            run(
                _as_server_user(
                    [str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
                ),
                capture_output=True,
            )
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole test session."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN} (apt-get install postgresql)")
    with running_postgres() as server:
        yield server
