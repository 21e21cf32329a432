"""The whole mesh for end-to-end tests: every implemented service and Envoy, as real processes.

``mesh`` is session-scoped and parametrised on the database: ``sqlite`` (each service's
embedded default) and ``postgresql`` (one throwaway server, one database per service).
Everything binds free ports under a temporary ``ALEA_HOME``; it is started with the same
code as ``alea up`` (``services.cli.mesh_procs``) and stopped at the end. Use it from a
conftest::

    from tests.support.mesh import mesh  # noqa: F401  (session fixture)
    from tests.support.postgres import postgres  # noqa: F401
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from services.cli.edge_client import RestClient, edge_channel
from services.cli.mesh_procs import (
    MeshLayout,
    implemented_services,
    start_edge,
    start_mesh,
    stop_mesh,
)
from tests.support.services import free_port

__all__ = ["Mesh", "mesh", "start_test_mesh"]


@dataclass
class Mesh:
    """A running mesh: its layout plus clients of its edge (and, for tests, of services)."""

    layout: MeshLayout
    database: str

    @property
    def pki(self) -> Path:
        return self.layout.pki

    @property
    def edge_address(self) -> str:
        return f"localhost:{self.layout.edge_port}"

    def channel(self, identity: str = "client") -> grpc.Channel:
        """A gRPC channel to the edge presenting ``identity``'s certificate."""
        return edge_channel(self.edge_address, self.pki, identity)

    def rest(self, identity: str = "client") -> RestClient:
        """A REST client of the edge presenting ``identity``'s certificate."""
        return RestClient.for_pki("localhost", self.layout.edge_port, self.pki, identity)

    def direct_channel(self, service: str, identity: str = "edge") -> grpc.Channel:
        """A gRPC channel straight to ``service`` presenting ``identity``'s certificate (by
        default the edge's: a test in the edge's place)."""
        return edge_channel(f"localhost:{self.layout.services[service]}", self.pki, identity)

    def extra_edge(self, name: str, **changes: Any) -> MeshLayout:
        """Start a second Envoy named ``name`` in front of the same services.

        ``changes`` override layout fields (e.g. ``rate_limit_per_s=1``); it gets fresh
        ports and is stopped with the mesh.
        """
        layout = dataclasses.replace(
            self.layout, edge_port=free_port(), admin_port=free_port(), **changes
        )
        start_edge(layout, name)
        self._extra.append(name)
        return layout

    def stop(self) -> None:
        """Stop every process of the mesh, extra edges included."""
        stop_mesh(self.layout)
        if self._extra:
            stop_mesh(self.layout, names=self._extra)

    def __post_init__(self) -> None:
        self._extra: list[str] = []


def start_test_mesh(home: Path, database_url_template: str | None, database: str) -> Mesh:
    """Start every implemented service and an edge under ``home`` on free ports."""
    services = implemented_services()
    layout = MeshLayout(
        home=home,
        services={name: free_port() for name in services},
        health_ports={name: free_port() for name in services},
        edge_port=free_port(),
        admin_port=free_port(),
        database_url_template=database_url_template,
        owner_pid=os.getpid(),
    )
    start_mesh(layout)
    return Mesh(layout, database)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def mesh(request: pytest.FixtureRequest) -> Iterator[Mesh]:
    """The whole mesh on SQLite, then on a throwaway PostgreSQL."""
    template = None
    if request.param == "postgresql":
        postgres = request.getfixturevalue("postgres")
        for name in implemented_services():
            postgres.create_database(f"alea_{name}")
        template = postgres.url("alea_{service}")
    home = Path(tempfile.mkdtemp(prefix=f"alea-e2e-{request.param}-"))
    running = start_test_mesh(home, template, request.param)
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(home, ignore_errors=True)
