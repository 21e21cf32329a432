"""GetSimulationSipmath through the whole mesh (services, Envoy), over REST and gRPC, on SQLite
and PostgreSQL: the library of a simulation run by the service is the one ``alea run
--sipmath`` writes of the same model, seed and trials; its metalogs reproduce the
simulation's percentiles; a cached simulation gives its run's library; another tenant's
simulation is NOT_FOUND, bad ``terms`` INVALID_ARGUMENT, an unfinished one FAILED_PRECONDITION.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import grpc
import numpy as np
import pytest
from alea.simulation.v1 import simulation_pb2 as pb
from alea.simulation.v1 import simulation_pb2_grpc

from services.cli.edge_client import RestClient
from services.cli.main import main as alea
from services.engine import metalog
from tests.e2e.conftest import Account, register
from tests.e2e.test_simulation_rest import create_model, results_when_done
from tests.engine import models

pytestmark = pytest.mark.integration
TRIALS, SEED = 20_000, 3


@pytest.fixture(scope="module")
def owner(identity) -> Account:
    return register(identity, "sipmath")


@pytest.fixture(scope="module")
def stranger(identity) -> Account:
    return register(identity, "sipmath-stranger")


@pytest.fixture(scope="module")
def sims(edge: grpc.Channel) -> simulation_pb2_grpc.SimulationServiceStub:
    return simulation_pb2_grpc.SimulationServiceStub(edge)


def _simulate(rest: RestClient, owner: Account, model_id: str, **extra) -> dict:
    started = rest.request(
        "POST",
        "/v1/simulations",
        {
            "modelId": model_id,
            "trials": str(TRIALS),
            "seed": str(SEED),
            "backend": "BACKEND_PREFERENCE_NUMPY",
            "requestId": str(uuid.uuid4()),
            **extra,
        },
        headers=owner.headers,
    )
    assert started.status == 200, started.text
    return started.body


def _sipmath(rest: RestClient, account: Account, simulation_id: str, query: str = ""):
    return rest.request(
        "GET", f"/v1/simulations/{simulation_id}/sipmath{query}", headers=account.headers
    )


def _grpc_refusal(sims, account: Account, simulation_id: str) -> grpc.StatusCode:
    """The code GetSimulationSipmath answers ``account`` with for a refused request."""
    with pytest.raises(grpc.RpcError) as caught:
        sims.GetSimulationSipmath(
            pb.GetSimulationSipmathRequest(simulation_id=simulation_id),
            metadata=account.metadata,
            timeout=30,
        )
    return caught.value.code()


def test_the_library_of_a_service_run(rest: RestClient, sims, owner, stranger, tmp_path: Path):
    model = create_model(rest, owner, "small", models.small())
    simulation = _simulate(rest, owner, model["id"], bypassCache=True)
    results = results_when_done(rest, owner, simulation["id"])

    got = _sipmath(rest, owner, simulation["id"])
    assert got.status == 200, got.text
    assert got.headers["content-type"] == "application/json"
    assert "attachment" in got.headers["content-disposition"]
    library = got.body
    assert (library["libraryType"], library["name"]) == ("SIPmath_3_0", "small")
    assert [s["name"] for s in library["sips"]] == ["Revenue", "Cost", "Tax", "Profit"]

    # The metalog of Profit reproduces the simulation's percentiles 5 to 95 within 1 % of its
    # standard deviation, the sparser tails (1 and 99) within 3 %.
    (profit,) = results["outputs"]
    sip = library["sips"][-1]
    fitted = metalog.Metalog(tuple(sip["arguments"]["aCoefficients"]))
    percents = np.array([p["percent"] for p in profit["percentiles"]])
    expected = np.array([p["value"] for p in profit["percentiles"]])
    error = fitted.quantile(percents / 100) - expected
    tolerance = np.where((percents > 1) & (percents < 99), 0.01, 0.03)
    assert np.all(np.abs(error) < tolerance * profit["statistics"]["std"]), error
    assert sip["metadata"]["count"] == TRIALS

    # gRPC gives the same bytes' library.
    body = sims.GetSimulationSipmath(
        pb.GetSimulationSipmathRequest(simulation_id=simulation["id"]),
        metadata=owner.metadata,
        timeout=60,
    )
    assert body.content_type == "application/json"
    assert json.loads(body.data) == library

    # alea run --sipmath of the same workbook, seed and trials on the same back end.
    workbook = models.save(models.small(), tmp_path, "small")
    written = tmp_path / "library.json"
    local = ["run", str(workbook), "--trials", str(TRIALS), "--seed", str(SEED)]
    assert alea([*local, "--backend", "numpy", "--json", "--sipmath", str(written)]) == 0
    mine = json.loads(written.read_text())
    mine["dateCreated"] = library["dateCreated"]
    assert mine == library

    # terms: at most as many as asked; outside 2..30 INVALID_ARGUMENT naming the field.
    few = _sipmath(rest, owner, simulation["id"], "?terms=4")
    assert few.status == 200, few.text
    assert max(s["metadata"]["terms"] for s in few.body["sips"]) <= 4
    refused = _sipmath(rest, owner, simulation["id"], "?terms=31")
    assert refused.status == 400 and "terms" in refused.text, refused.text
    with pytest.raises(grpc.RpcError) as caught:
        sims.GetSimulationSipmath(
            pb.GetSimulationSipmathRequest(simulation_id=simulation["id"], terms=1),
            metadata=owner.metadata,
            timeout=30,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "terms" in caught.value.details()

    # Another tenant's simulation is not found, over REST and gRPC.
    assert _sipmath(rest, stranger, simulation["id"]).status == 404
    assert _grpc_refusal(sims, stranger, simulation["id"]) == grpc.StatusCode.NOT_FOUND

    # The same request again is served from the cache: the library of the run it reuses.
    again = _simulate(rest, owner, model["id"])
    assert again["cached"] is True and again["state"] == "STATE_SUCCEEDED"
    cached = _sipmath(rest, owner, again["id"])
    assert cached.status == 200, cached.text
    cached.body["dateCreated"] = library["dateCreated"]
    assert cached.body == library


def test_only_a_succeeded_simulation_has_a_library(rest: RestClient, sims, owner):
    # 50 inputs on the NumPy back end: a million trials last long enough to be cancelled
    # (the 3-input model's could end before the cancellation, which then changes nothing)
    model = create_model(rest, owner, "portfolio", models.portfolio())
    simulation = _simulate(rest, owner, model["id"], trials="1000000", bypassCache=True)
    cancelled = rest.request(
        "POST", f"/v1/simulations/{simulation['id']}:cancel", {}, headers=owner.headers
    )
    assert cancelled.status == 200, cancelled.text
    refused = _sipmath(rest, owner, simulation["id"])
    assert refused.status == 400 and "CANCELLED" in refused.text, refused.text
    assert _grpc_refusal(sims, owner, simulation["id"]) == grpc.StatusCode.FAILED_PRECONDITION


def test_a_converged_simulation_gives_the_trials_its_results_are_of(rest: RestClient, owner):
    """Through the mesh; tests/integration/simulation/test_convergence.py has workers
    complete segments past the converging check, which the library leaves out."""
    model = create_model(rest, owner, "small", models.small())
    stopping = {"checkEvery": "2000", "defaultTest": {"tolerance": 0.5, "mean": True}}
    simulation = _simulate(rest, owner, model["id"], convergence=stopping, bypassCache=True)
    results = results_when_done(rest, owner, simulation["id"])
    assert results["convergence"]["converged"] is True
    trials = int(results["trials"])
    assert trials < TRIALS
    got = _sipmath(rest, owner, simulation["id"])
    assert got.status == 200, got.text
    profit = got.body["sips"][-1]["metadata"]
    assert profit["count"] == trials
    assert profit["mean"] == pytest.approx(results["outputs"][0]["statistics"]["mean"], rel=1e-12)
