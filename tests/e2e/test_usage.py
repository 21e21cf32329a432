"""Usage end to end: after a scripted set of simulations and uploads, analytics' numbers
are exactly what happened and reconcile with identity's quota accounting; API calls are
counted per user; reports download over REST; tenants see only their own usage."""

from __future__ import annotations

import csv
import io
import math
import time

import grpc
import pytest
from alea.access.v1 import access_pb2
from alea.analytics.v1 import analytics_pb2 as pb
from alea.analytics.v1 import analytics_pb2_grpc
from alea.files.v1 import files_pb2, files_pb2_grpc
from alea.identity.v1 import identity_pb2, identity_pb2_grpc
from alea.simulation.v1 import simulation_pb2, simulation_pb2_grpc
from google.api import httpbody_pb2

from services.cli.edge_client import RestClient
from tests.e2e.conftest import Account, Tenants, add_user, register, small_model

pytestmark = pytest.mark.integration
State = simulation_pb2.Simulation.State


@pytest.fixture(scope="module")
def analytics(edge: grpc.Channel) -> analytics_pb2_grpc.AnalyticsServiceStub:
    return analytics_pb2_grpc.AnalyticsServiceStub(edge)


def totals(analytics, account: Account, **request: object) -> dict[tuple[str, str, str], float]:
    response = analytics.GetUsage(
        pb.GetUsageRequest(granularity=pb.GRANULARITY_MONTH, **request),
        metadata=account.metadata,
        timeout=30,
    )
    return {
        (pb.UsageMetric.Name(s.metric).removeprefix("USAGE_METRIC_"), s.user_id, s.state): s.total
        for s in response.series
    }


def settled(analytics, account: Account, expected: dict, timeout: float = 30, **request) -> dict:
    """Usage once it shows ``expected`` (events reach analytics through relays)."""
    deadline = time.monotonic() + timeout
    while True:
        found = totals(analytics, account, **request)
        if all(found.get(k) == v for k, v in expected.items()) or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


@pytest.fixture(scope="module")
def scripted(edge: grpc.Channel) -> tuple[Account, dict]:
    """A tenant that ran three simulations, had one answered from the cache, cancelled one
    while it waited, and uploaded two files."""
    ids = identity_pb2_grpc.IdentityServiceStub(edge)
    sims = simulation_pb2_grpc.SimulationServiceStub(edge)
    files = files_pb2_grpc.FilesServiceStub(edge)
    owner = register(ids, "usage")
    model = small_model(edge, owner)
    run = []
    for trials, seed in ((10_000, 1), (20_000, 2), (30_000, 3)):
        created = sims.CreateSimulation(
            simulation_pb2.CreateSimulationRequest(model_id=model.id, trials=trials, seed=seed),
            metadata=owner.metadata,
            timeout=30,
        )
        events = sims.WatchSimulation(
            simulation_pb2.WatchSimulationRequest(simulation_id=created.id),
            metadata=owner.metadata,
            timeout=120,
        )
        run.append(list(events)[-1].simulation)
    assert {s.state for s in run} == {State.STATE_SUCCEEDED}
    cached = sims.CreateSimulation(
        simulation_pb2.CreateSimulationRequest(model_id=model.id, trials=10_000, seed=1),
        metadata=owner.metadata,
    )
    assert cached.cached
    queued = sims.CreateSimulation(
        simulation_pb2.CreateSimulationRequest(
            model_id=model.id, trials=1_000_000, seed=4, priority=0
        ),
        metadata=owner.metadata,
    )
    cancelled = sims.CancelSimulation(
        simulation_pb2.CancelSimulationRequest(simulation_id=queued.id), metadata=owner.metadata
    )
    assert cancelled.state == State.STATE_CANCELLED
    sizes = (1000, 2500)
    for size in sizes:
        files.UploadBody(
            files_pb2.UploadBodyRequest(
                file_name="f.bin",
                body=httpbody_pb2.HttpBody(
                    content_type="application/octet-stream", data=b"x" * size
                ),
            ),
            metadata=owner.metadata,
            timeout=60,
        )
    final = sims.GetSimulation(
        simulation_pb2.GetSimulationRequest(simulation_id=cancelled.id), metadata=owner.metadata
    )
    expected = {
        ("TRIALS", "", ""): 10_000 + 20_000 + 30_000 + 1_000_000,
        ("TRIALS_RUN", "", ""): 60_000 + final.trials_done,
        ("SIMULATIONS", "", ""): 5,
        ("UPLOADED_BYTES", "", ""): sum(sizes),
    }
    return owner, expected


def test_usage_is_exactly_what_happened_and_matches_the_quota(
    analytics, edge: grpc.Channel, scripted
) -> None:
    owner, expected = scripted
    # The cancellation is its own event, relayed apart from the creation that counted it.
    states = {("SIMULATIONS", "", "STATE_SUCCEEDED"): 4, ("SIMULATIONS", "", "STATE_CANCELLED"): 1}
    found = settled(analytics, owner, {**expected, **states}, group_by=[pb.USAGE_DIMENSION_STATE])
    for key, value in expected.items():
        assert found.get(key) == value, key
    by_state = {
        state: total
        for (metric, _, state), total in found.items()
        if metric == "SIMULATIONS" and state
    }
    assert by_state == {"STATE_SUCCEEDED": 4, "STATE_CANCELLED": 1}
    assert found[("CPU_SECONDS", "", "")] > 0
    assert found[("COMPUTE_SECONDS", "", "")] == pytest.approx(
        found[("CPU_SECONDS", "", "")] + found[("GPU_SECONDS", "", "")]
    )
    quota = identity_pb2_grpc.IdentityServiceStub(edge).GetQuota(
        identity_pb2.GetQuotaRequest(), metadata=owner.metadata
    )
    assert found[("TRIALS", "", "")] == quota.trials_used_this_month


def test_usage_by_day_has_a_point_per_day_so_far(analytics, scripted) -> None:
    owner, expected = scripted
    response = analytics.GetUsage(
        pb.GetUsageRequest(granularity=pb.GRANULARITY_DAY), metadata=owner.metadata, timeout=30
    )
    first = response.start_time.seconds
    assert time.gmtime(first)[2:6] == (1, 0, 0, 0)  # the 1st of this month, 00:00 UTC
    end = response.end_time.seconds + response.end_time.nanos / 1e9  # now, by default
    days = math.ceil((end - first) / 86_400)
    assert 1 <= days <= 31
    for series in response.series:
        starts = [p.start_time.seconds for p in series.points]
        assert starts == [first + 86_400 * d for d in range(days)], series.metric
        assert not any(p.start_time.nanos for p in series.points)
        assert sum(p.value for p in series.points) == pytest.approx(series.total)
    trials = [s for s in response.series if s.metric == pb.USAGE_METRIC_TRIALS]
    assert [s.total for s in trials] == [expected[("TRIALS", "", "")]]


def test_api_calls_are_counted_per_user(analytics, edge: grpc.Channel) -> None:
    ids = identity_pb2_grpc.IdentityServiceStub(edge)
    owner = register(ids, "counted")
    reader, token = add_user(ids, owner, access_pb2.ROLE_VIEWER)
    as_reader = (("authorization", f"Bearer {token.access_token}"),)
    for _ in range(7):
        ids.GetUser(identity_pb2.GetUserRequest(user_id=reader.id), metadata=as_reader)
    key = ("API_CALLS", reader.id, "")
    found = settled(analytics, owner, {key: 7}, per_user=True)
    assert found[key] == 7


def test_performance_and_reports(analytics, rest: RestClient, scripted) -> None:
    owner, _ = scripted
    performance = analytics.GetPerformance(pb.GetPerformanceRequest(), metadata=owner.metadata)
    (cpu,) = [b for b in performance.backends if b.model_size_band == "small"]
    assert (cpu.simulations, cpu.trials) == (3, 60_000) and cpu.trials_per_second > 0
    assert cpu.run_seconds_p95 >= cpu.run_seconds_p50 > 0
    assert performance.cache_hits == 1 and performance.cache_hit_ratio == pytest.approx(0.2)

    reply = rest.request(
        "GET", "/v1/reports:download?format=REPORT_FORMAT_CSV", headers=owner.headers
    )
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/csv")
    assert "attachment" in reply.headers.get("content-disposition", "")
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    tenant = {r["metric"]: float(r["value"]) for r in rows if not r["user_id"]}
    assert tenant["TRIALS"] == 1_060_000 and tenant["UPLOADED_BYTES"] == 3500
    page = rest.request("GET", "/v1/reports:download", headers=owner.headers)
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text.count("<svg") == 3 and "<script" not in page.text
    report = analytics.GetReport(
        pb.GetReportRequest(month=time.strftime("%Y-%m", time.gmtime())), metadata=owner.metadata
    )
    assert report.simulations_by_state == {"STATE_SUCCEEDED": 4, "STATE_CANCELLED": 1}
    assert [u.user_id for u in report.top_users] == [owner.user_id]


def test_usage_and_reports_are_each_tenants_own(
    analytics, rest: RestClient, tenants: Tenants, scripted
) -> None:
    owner, _ = scripted
    for call, request in (
        (analytics.GetUsage, pb.GetUsageRequest(tenant_id=owner.tenant_id)),
        (analytics.GetPerformance, pb.GetPerformanceRequest(tenant_id=owner.tenant_id)),
        (analytics.GetReport, pb.GetReportRequest(tenant_id=owner.tenant_id)),
        (analytics.DownloadReport, pb.DownloadReportRequest(tenant_id=owner.tenant_id)),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            call(request, metadata=tenants.b.metadata, timeout=30)
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    mine = totals(analytics, tenants.b)
    assert mine[("TRIALS", "", "")] == 0
    reply = rest.request(
        "GET", f"/v1/reports:download?tenantId={owner.tenant_id}", headers=tenants.b.headers
    )
    assert reply.status == 404
    with pytest.raises(grpc.RpcError) as viewer:
        analytics.GetReport(pb.GetReportRequest(), metadata=tenants.viewer.metadata)
    assert viewer.value.code() == grpc.StatusCode.PERMISSION_DENIED
