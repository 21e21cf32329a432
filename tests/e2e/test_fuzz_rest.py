"""Schemathesis over every REST operation of the OpenAPI document, through the real edge.

Positive and negative cases are generated from ``gen/openapi/alea.json`` (the document the
edge serves) for each operation of the running services, sent over mTLS with the client
certificate and a tenant admin's token. Every answer must be below 500, say nothing of the
server's internals, and come within the request timeout (no hang). A fixed number of
examples per operation and derandomised generation keep the run inside the CI budget.

Schemathesis cannot expand a path variable bound to a nested field (``{user.id}``: it
formats templates with ``str.format``), so UpdateUser and SetSetting are left to the gRPC
fuzzer and the e2e tests.
"""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import given
from hypothesis import strategies as st

from services.cli.mesh_envoy import OPENAPI_DOCUMENT
from services.cli.mesh_procs import implemented_services
from tests.e2e.conftest import Tenants
from tests.support.fuzz import CASES, fixed_budget, leaked
from tests.support.mesh import Mesh

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES = 20  # per operation and database
TIMEOUT = 30  # seconds: a hang fails the case

SCHEMA = (
    schemathesis.openapi.from_path(str(OPENAPI_DOCUMENT))
    .include(tag=[f"{name.capitalize()}Service" for name in implemented_services()])
    .exclude(path_regex=r"\{[^}]*\.")
)
OPERATIONS = {op.ok().label: op.ok() for op in SCHEMA.get_all_operations()}


@pytest.fixture(scope="module")
def session(mesh: Mesh) -> requests.Session:
    client = requests.Session()
    client.verify = str(mesh.pki / "ca.crt")
    client.cert = (str(mesh.pki / "client.crt"), str(mesh.pki / "client.key"))
    return client


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_every_rest_operation_survives_generated_input(
    label: str, mesh: Mesh, session: requests.Session, tenants: Tenants
) -> None:
    operation = OPERATIONS[label]
    cases = st.one_of(
        operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
    )

    live = operation.path.startswith("/v1/events:")

    @given(case=cases)
    @fixed_budget(EXAMPLES)
    def survives(case: schemathesis.Case) -> None:
        # Sent with our own session (not case.call) so that a live feed is streamed and left
        # after its headers: its status is the answer to check, and it never ends by itself.
        request = case.as_transport_kwargs(
            base_url=f"https://localhost:{mesh.layout.edge_port}", headers=tenants.a.headers
        )
        request.update(timeout=TIMEOUT, stream=live, verify=session.verify, cert=session.cert)
        with session.request(**request) as response:
            CASES[f"REST {operation.tags[0]}"] += 1
            text = "" if live and response.status_code == 200 else response.text
        assert response.status_code < 500, f"{case.as_curl_command()}\n{text[:500]}"
        assert leaked(text[:100_000]) is None, text[:500]

    survives()
