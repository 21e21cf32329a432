"""Server streams through the edge over REST: NDJSON by default, Server-Sent Events when the
client asks for ``text/event-stream``; both framings carry the same events.
"""

from __future__ import annotations

import json
import uuid

import pytest

from services.cli.edge_client import RestClient
from tests.e2e.conftest import Tenants
from tests.e2e.test_simulation_rest import workbook_b64
from tests.engine import models
from tests.support.mesh import Mesh

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def finished_simulation(mesh: Mesh, tenants: Tenants) -> str:
    """The id of a small simulation of tenant A, run to completion."""
    if "simulation" not in mesh.layout.services:
        pytest.skip("the simulation service is not implemented")
    rest = mesh.rest()
    model = rest.request(
        "POST",
        "/v1/models",
        {
            "displayName": "stream",
            "workbook": workbook_b64(models.small()),
        },
        headers=tenants.a.headers,
    )
    assert model.status == 200, model.text
    started = rest.request(
        "POST",
        "/v1/simulations",
        {
            "modelId": model.body["id"],
            "trials": "2000",
            "seed": "7",
            "requestId": str(uuid.uuid4()),
        },
        headers=tenants.a.headers,
    )
    assert started.status == 200, started.text
    # Watching to the end (NDJSON) makes the SSE watch below replay a finished simulation.
    rest.request("GET", f"/v1/simulations/{started.body['id']}:watch", headers=tenants.a.headers)
    rest.close()
    return str(started.body["id"])


def test_watch_is_ndjson_by_default(
    rest: RestClient, tenants: Tenants, finished_simulation: str
) -> None:
    reply = rest.request(
        "GET", f"/v1/simulations/{finished_simulation}:watch", headers=tenants.a.headers
    )
    assert reply.status == 200, reply.text
    assert reply.headers["content-type"] == "application/x-ndjson"
    events = [json.loads(line) for line in reply.text.splitlines() if line.strip()]
    assert events[-1]["simulation"]["state"] == "STATE_SUCCEEDED"


def test_watch_is_server_sent_events_on_request(
    rest: RestClient, tenants: Tenants, finished_simulation: str
) -> None:
    reply = rest.request(
        "GET",
        f"/v1/simulations/{finished_simulation}:watch",
        headers={**tenants.a.headers, "accept": "text/event-stream"},
    )
    assert reply.status == 200, reply.text
    assert reply.headers["content-type"] == "text/event-stream"
    frames = [f for f in reply.text.split("\n\n") if f.strip()]
    assert frames and all(f.startswith("data: ") for f in frames), reply.text[:300]
    events = [json.loads(f.removeprefix("data: ")) for f in frames]
    assert events[-1]["simulation"]["state"] == "STATE_SUCCEEDED"


def test_a_refused_watch_is_a_json_status(rest: RestClient, tenants: Tenants) -> None:
    reply = rest.request(
        "GET",
        "/v1/simulations/00000000-0000-4000-8000-000000000000:watch",
        headers=tenants.a.headers,
    )
    assert reply.status == 404, reply.text
    assert reply.headers["content-type"] == "application/json"
    assert reply.body["code"] == 5
