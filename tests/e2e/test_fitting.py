"""FitDistribution end to end through Envoy: a CSV uploaded to the files service, its columns
fitted by name and by position, inline values, over gRPC and REST; bad columns and values
refused naming the field; another tenant's file NOT_FOUND. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from alea.files.v1 import files_pb2, files_pb2_grpc
from alea.simulation.v1 import fitting_pb2, simulation_pb2_grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.cli.edge_client import RestClient
from tests.e2e.conftest import Account, register

pytestmark = pytest.mark.integration

CLAIMS = Path(__file__).parents[1] / "data" / "datasets" / "claims.csv"


@pytest.fixture(scope="module")
def sims(edge: grpc.Channel) -> simulation_pb2_grpc.SimulationServiceStub:
    return simulation_pb2_grpc.SimulationServiceStub(edge)


@pytest.fixture(scope="module")
def owner(identity) -> Account:
    return register(identity, "fit-owner")


@pytest.fixture(scope="module")
def stranger(identity) -> Account:
    return register(identity, "fit-stranger")


def upload(edge: grpc.Channel, account: Account, name: str, data: bytes) -> str:
    def messages():
        yield files_pb2.UploadRequest(
            metadata=files_pb2.FileMetadata(file_name=name, size_bytes=len(data))
        )
        yield files_pb2.UploadRequest(chunk=data)

    stub = files_pb2_grpc.FilesServiceStub(edge)
    return str(stub.Upload(messages(), metadata=account.metadata, timeout=60).id)


@pytest.fixture(scope="module")
def claims(edge: grpc.Channel, owner: Account) -> str:
    return upload(edge, owner, "claims.csv", CLAIMS.read_bytes())


def violations(error: grpc.RpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)
    assert status is not None
    found = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.update({v.field: v.description for v in bad.field_violations})
    return found


def fit(sims, account: Account, **fields) -> fitting_pb2.FitDistributionResponse:
    request = fitting_pb2.FitDistributionRequest(**fields)
    return sims.FitDistribution(request, metadata=account.metadata, timeout=30)


def test_a_stored_files_columns_fitted_by_name_and_position(sims, owner, claims):
    counts = fit(sims, owner, file_id=claims, column_name="claims", bootstrap_replicates=20)
    assert counts.column == "claims" and counts.count == 500 and counts.discrete
    best = counts.fits[0]
    assert best.function == "RiskNegbin" and best.formula.startswith("=RiskNegbin(4, 0.5")
    assert best.aic_rank == 1 and best.bootstrap_replicates == 20
    assert best.HasField("chi_square_p_value") and not best.HasField("ks_statistic")
    losses = fit(sims, owner, file_id=claims, column_index=2, bootstrap_replicates=0)
    assert losses.column == "loss" and not losses.discrete
    functions = [f.function for f in losses.fits]
    assert functions.index("RiskLognorm") < 3 and "RiskBeta" in [s.function for s in losses.skipped]
    lognorm = next(f for f in losses.fits if f.function == "RiskLognorm")
    mean, sd = (p.value for p in lognorm.parameters)
    assert mean == pytest.approx(12_000, rel=0.05) and sd == pytest.approx(6_000, rel=0.1)
    assert len(lognorm.pp_points) == 100 and not lognorm.HasField("ks_p_value")


def test_inline_values(sims, owner):
    values = [0.5, 1.25, 2.0, 2.5, 3.0, 3.75, 4.5, 6.0, 7.5, 9.0]
    response = fit(sims, owner, values=values, bootstrap_replicates=10, seed=7)
    assert response.count == len(values) and response.column == ""
    assert response.fits and all(f.formula.startswith("=Risk") for f in response.fits)


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"column_name": "premium"}, "column_name", "no column 'premium'"),
        ({"column_index": 40}, "column_index", "holds no numbers"),
        ({"column_index": 1, "sheet": "Data"}, "sheet", "only an XLSX file"),
    ],
)
def test_bad_columns_name_the_field(sims, owner, claims, fields, field, words):
    with pytest.raises(grpc.RpcError) as error:
        fit(sims, owner, file_id=claims, **fields)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in violations(error.value)[field]


def test_bad_values_and_sources_name_the_field(edge, sims, owner):
    text = upload(edge, owner, "bad.csv", b"amount\n1\n2\nabc\n4\n5\n")
    cases = [
        ({"file_id": text}, "column_index", "row 4: 'abc' is not a finite number"),
        ({"values": [1.0, 2.0]}, "values", "at least 5"),
        ({"values": [3.0] * 8}, "values", "constant"),
        ({}, "file_id", "exactly one"),
        ({"file_id": text, "values": [1.0] * 6}, "file_id", "exactly one"),
    ]
    for fields, field, words in cases:
        with pytest.raises(grpc.RpcError) as error:
            fit(sims, owner, **fields)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, fields
        assert words in violations(error.value)[field], fields


def test_another_tenants_file_is_not_found(sims, stranger, claims):
    with pytest.raises(grpc.RpcError) as error:
        fit(sims, stranger, file_id=claims, column_name="loss")
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_rest_fit(rest: RestClient, owner, claims):
    body = {"fileId": claims, "columnName": "claims", "bootstrapReplicates": 5}
    response = rest.request("POST", "/v1/distributions:fit", body, headers=owner.headers)
    assert response.status == 200, response.text
    assert response.body["fits"][0]["function"] == "RiskNegbin"
    assert response.body["count"] == "500"
    refused = rest.request(
        "POST", "/v1/distributions:fit", {"values": [1, 2]}, headers=owner.headers
    )
    assert refused.status == 400 and "at least 5" in refused.text
