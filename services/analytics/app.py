"""Wiring of the analytics service: usage, performance and reports over one database."""

from __future__ import annotations

from pathlib import Path

from alea.analytics.v1 import analytics_pb2, analytics_pb2_grpc

from services.analytics.api import AnalyticsServicer
from services.analytics.store import AnalyticsStore
from services.analytics.usage import Usage
from services.runtime.config import Settings
from services.runtime.db import Database
from services.runtime.peers import Peers
from services.runtime.server import Mount, Service

__all__ = ["MIGRATIONS", "build"]

MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: Settings, db: Database, peers: Peers) -> Service:
    """The AnalyticsService servicer."""
    mount = Mount(
        analytics_pb2.DESCRIPTOR.services_by_name["AnalyticsService"],
        AnalyticsServicer(Usage(AnalyticsStore(db))),
        analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server,
    )
    return Service([mount])
