"""Recent request and server-error counts over five minutes, health checks left out."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import pytest

from services.runtime import status
from services.runtime.status import RecentCalls


@dataclass
class Call:
    method: str
    code: grpc.StatusCode


def test_requests_and_server_errors_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(status.time, "monotonic", lambda: now[0])
    recent = RecentCalls()
    for code in (grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INTERNAL):
        recent.finished(Call("/alea.files.v1.FilesService/GetFile", code))
    recent.finished(Call("/grpc.health.v1.Health/Check", grpc.StatusCode.UNAVAILABLE))
    assert recent.totals() == (3, 1)  # NOT_FOUND is the client's business
    now[0] += 240
    recent.finished(Call("/alea.files.v1.FilesService/GetFile", grpc.StatusCode.UNAVAILABLE))
    assert recent.totals() == (4, 2)
    now[0] += 120  # the first minute has left the window
    assert recent.totals() == (1, 1)
