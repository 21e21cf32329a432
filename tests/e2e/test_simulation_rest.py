"""The simulation service over REST through Envoy's transcoder, streaming included.

Create a model (workbook bytes as base64 JSON), start a simulation, follow it on the
NDJSON watch stream, read its results; refusals as JSON errors naming the cell, and
another tenant's simulation is 404. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import io
import json
import urllib.parse
import uuid

import pytest

from services import engine
from services.cli.edge_client import RestClient, RestReply
from services.engine import convergence
from tests.e2e.conftest import Account, register
from tests.engine import examples, models

pytestmark = pytest.mark.integration


def workbook_b64(book) -> str:
    buffer = io.BytesIO()
    book.save(buffer)
    return base64.b64encode(buffer.getvalue()).decode()


def create_model(rest: RestClient, owner: Account, name: str, book) -> dict:
    """POST /v1/models with ``book``; the created model."""
    created = rest.request(
        "POST",
        "/v1/models",
        {"displayName": name, "workbook": workbook_b64(book)},
        headers=owner.headers,
    )
    assert created.status == 200, created.text
    return created.body


def results_when_done(rest: RestClient, owner: Account, simulation_id: str) -> dict:
    """Watch the simulation to its end over REST, then its results."""
    rest.request("GET", f"/v1/simulations/{simulation_id}:watch", headers=owner.headers)
    got = rest.request("GET", f"/v1/simulations/{simulation_id}/results", headers=owner.headers)
    assert got.status == 200, got.text
    return got.body


@pytest.fixture(scope="module")
def owner(identity) -> Account:
    return register(identity, "rest-sim")


@pytest.fixture(scope="module")
def stranger(identity) -> Account:
    return register(identity, "rest-sim-stranger")


def test_rest_model_simulation_watch_results(rest: RestClient, owner: Account, stranger):
    created = rest.request(
        "POST",
        "/v1/models",
        {
            "displayName": "small",
            "workbook": workbook_b64(models.small()),
        },
        headers=owner.headers,
    )
    assert created.status == 200, created.text
    assert [o["name"] for o in created.body["outputs"]] == ["Profit"]
    started = rest.request(
        "POST",
        "/v1/simulations",
        {
            "modelId": created.body["id"],
            "trials": "50000",
            "seed": "5",
            "sampling": "SAMPLING_LATIN_HYPERCUBE",
            "requestId": str(uuid.uuid4()),
        },
        headers=owner.headers,
    )
    assert started.status == 200, started.text
    sim_id = started.body["id"]
    assert started.body["state"] == "STATE_QUEUED"

    stream = rest.request("GET", f"/v1/simulations/{sim_id}:watch", headers=owner.headers)
    assert stream.status == 200, stream.text
    lines = stream.body if isinstance(stream.body, str) else json.dumps(stream.body)
    events = [json.loads(line) for line in lines.splitlines() if line.strip()]
    assert "simulation" in events[0]
    assert events[-1]["simulation"]["state"] == "STATE_SUCCEEDED"

    results = rest.request("GET", f"/v1/simulations/{sim_id}/results", headers=owner.headers)
    assert results.status == 200, results.text
    (profit,) = results.body["outputs"]
    assert int(profit["statistics"]["count"]) == 50_000
    assert results.body["sampling"] == "SAMPLING_LATIN_HYPERCUBE"

    hidden = rest.request("GET", f"/v1/simulations/{sim_id}", headers=stranger.headers)
    assert hidden.status == 404
    hidden = rest.request("GET", f"/v1/simulations/{sim_id}:watch", headers=stranger.headers)
    assert hidden.status == 404, hidden.text


def test_rest_refused_model_names_the_cell(rest: RestClient, owner: Account):
    book = models.small()
    book["Model"]["B2"] = "=RiskTriang(5,2,1)"
    refused = rest.request(
        "POST",
        "/v1/models",
        {"displayName": "bad", "workbook": workbook_b64(book)},
        headers=owner.headers,
    )
    assert refused.status == 400, refused.text
    assert "Model!B2" in refused.text


def test_list_filters_and_orders_as_the_contract_documents(rest: RestClient, owner: Account):
    """The proto's own examples pass through the edge; junk ``order_by`` and filter values
    that are not the contract's spellings are 400 naming the parameter."""
    model = create_model(rest, owner, "listed", models.small())
    done = rest.request(
        "POST",
        "/v1/simulations",
        {"modelId": model["id"], "trials": "1000", "seed": "3"},
        headers=owner.headers,
    )
    assert done.status == 200, done.text

    def listing(path: str, **query: str):
        return rest.request(
            "GET",
            f"{path}?{urllib.parse.urlencode(query, quote_via=urllib.parse.quote)}",
            headers=owner.headers,
        )

    example = f'state = "STATE_RUNNING" AND model_id = "{model["id"]}"'
    assert listing("/v1/simulations", filter=example).status == 200
    mine = listing(
        "/v1/simulations",
        filter=f'model_id = "{model["id"]}"',
        orderBy="priority desc, create_time",
    )
    assert [s["id"] for s in mine.body["simulations"]] == [done.body["id"]]
    sources = listing("/v1/models", filter='source = "MODEL_SOURCE_WORKBOOK"')
    assert model["id"] in [m["id"] for m in sources.body["models"]]
    for path, query, parameter in (
        ("/v1/simulations", {"filter": 'state = "RUNNING"'}, "filter"),
        ("/v1/simulations", {"orderBy": "id; drop table simulations"}, "order_by"),
        ("/v1/models", {"orderBy": "create_time sideways"}, "order_by"),
        ("/v1/models", {"pageToken": "not-a-token"}, "page_token"),
    ):
        refused = listing(path, **query)
        assert refused.status == 400, refused.text
        assert parameter in refused.text


def test_rest_risksimtable_results_per_simulation(rest: RestClient, owner: Account):
    created = create_model(rest, owner, "scenarios", examples.simtable())
    assert created["simulations"] == len(examples.RATES)
    trials = 20_000
    results = {}
    for vary in (False, True):
        started = rest.request(
            "POST",
            "/v1/simulations",
            {
                "modelId": created["id"],
                "trials": str(trials),
                "seed": "9",
                "varySimulationSeeds": vary,
                "requestId": str(uuid.uuid4()),
            },
            headers=owner.headers,
        )
        assert started.status == 200, started.text
        assert started.body.get("varySimulationSeeds", False) is vary
        sim_id = started.body["id"]
        results[vary] = results_when_done(rest, owner, sim_id)
    for body in results.values():
        assert [s["index"] for s in body["simulations"]] == [1, 2, 3]
        assert [v["value"] for v in body["simulations"][2]["values"]] == [0.1, 60]
        outputs = {(o["name"], o["simulation"]): o for o in body["outputs"]}
        assert len(outputs) == 6
        for k in range(len(examples.RATES)):
            for name, mean in examples.simtable_means(k).items():
                out = outputs[(name, k + 1)]
                stats = out["statistics"]
                assert out["address"] == {"Profit": "Model!B7", "Value": "Model!B8"}[name]
                assert abs(stats["mean"] - mean) < 4 * stats["std"] / trials**0.5
    same, varied = (results[v]["outputs"] for v in (False, True))
    assert same[2]["statistics"] != varied[2]["statistics"]


def test_rest_scenario_analysis_and_contribution_to_variance(rest: RestClient, owner: Account):
    created = create_model(rest, owner, "scenarios", examples.scenarios())

    def simulate(scenarios: list[dict]) -> tuple[int, dict, str]:
        started = rest.request(
            "POST",
            "/v1/simulations",
            {
                "modelId": created["id"],
                "trials": "40000",
                "seed": "3",
                "scenarios": scenarios,
                "requestId": str(uuid.uuid4()),
            },
            headers=owner.headers,
        )
        return started.status, started.body, started.text

    loss = {"output": "Profit", "kind": "SCENARIO_KIND_BELOW_VALUE", "threshold": 0}
    top = {"kind": "SCENARIO_KIND_TOP_PERCENT", "threshold": 5}
    status, body, text = simulate([loss, top])
    assert status == 200, text
    assert body["scenarios"] == [loss, {"output": "", **top}]
    results = results_when_done(rest, owner, body["id"])
    outputs = {o["name"]: o for o in results["outputs"]}
    profit, cost = outputs["Profit"], outputs["Cost"]
    assert [s["label"] for s in profit["scenarios"]] == ["<0", ">95%"]
    assert [s["label"] for s in cost["scenarios"]] == [">95%"]
    assert cost["scenarios"][0]["trials"] == "2000"
    below = profit["scenarios"][0]
    assert below["target"]["output"] == "Profit"
    significant = [i["inputName"] for i in below["inputs"] if i.get("significant")]
    assert significant == ["Price", "Unit cost", "Overhead"]
    shares = {c["inputName"]: c["share"] for c in cost["contributionToVariance"]}
    for name, share in examples.cost_shares().items():
        assert abs(shares[name] - share) < 0.01
    assert abs(cost["regressionRSquared"] - 1) < 1e-9

    for scenarios, field in (
        ([{**loss, "output": "Nope"}], "scenarios[0].output"),
        ([{**top, "threshold": 100}], "scenarios[0]"),
        ([{"threshold": 1}], "scenarios[0].kind"),
        ([top] * 17, "scenarios"),
    ):
        status, _, text = simulate(scenarios)
        assert status == 400, text
        assert field in text


def test_rest_sobol_sampling_and_a_compound_model(rest: RestClient, owner: Account):
    """SAMPLING_SOBOL through the transcoder, on the RiskCompound worked example."""
    created = create_model(rest, owner, "portfolio", examples.compound())
    assert [i["name"] for i in created["inputs"]] == ["Claims", "Claim", "Large claim"]
    trials = 16_384
    started = rest.request(
        "POST",
        "/v1/simulations",
        {
            "modelId": created["id"],
            "trials": str(trials),
            "seed": "3",
            "sampling": "SAMPLING_SOBOL",
            "requestId": str(uuid.uuid4()),
        },
        headers=owner.headers,
    )
    assert started.status == 200, started.text
    assert started.body["sampling"] == "SAMPLING_SOBOL"
    sim_id = started.body["id"]
    results = results_when_done(rest, owner, sim_id)
    ground_up = next(o for o in results["outputs"] if o["name"] == "Ground-up")["statistics"]
    mean = examples.CLAIMS * examples.CLAIM_MEAN
    assert abs(ground_up["mean"] - mean) < 4 * ground_up["std"] / trials**0.5


def test_rest_convergence_stopping_on_the_riskconvergence_example(rest: RestClient, owner: Account):
    """ConvergenceSettings through the transcoder; the outputs' own RiskConvergence decide,
    and the stopping trial is the engine's (alea run's) for the same seed."""
    created = create_model(rest, owner, "convergence", examples.convergence())

    def start(settings: dict) -> RestReply:
        body = {
            "modelId": created["id"],
            "trials": "200000",
            "seed": "5",
            "requestId": str(uuid.uuid4()),
            "convergence": settings,
        }
        return rest.request("POST", "/v1/simulations", body, headers=owner.headers)

    bad = start({"checkEvery": "3000"})
    assert bad.status == 400 and "trials" in bad.text, bad.text
    started = start({"checkEvery": "2000"})
    assert started.status == 200, started.text
    assert started.body["convergence"] == {"checkEvery": "2000"}
    sim_id = started.body["id"]
    results = results_when_done(rest, owner, sim_id)
    status = results["convergence"]
    assert status["converged"] is True and results["trials"] == status["trials"]
    assert [o["output"] for o in status["outputs"]] == ["Profit", "Shortfall"]
    buffer = io.BytesIO()
    examples.convergence().save(buffer)
    model = engine.load_workbook(buffer.getvalue())
    settings = convergence.Settings(2000, 200_000, None)
    evaluator = engine.make_evaluator(model, seed=5, backend="cpu")
    _, stopped = convergence.simulate(model, evaluator, settings)
    assert int(status["trials"]) == stopped.trials
