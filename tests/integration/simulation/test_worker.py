"""Workers in-process on SQLite and PostgreSQL: run, checkpoint/resume, cancel, cache, watch."""

from __future__ import annotations

import asyncio
import contextlib
import io
from dataclasses import replace

import pytest
from openpyxl import Workbook
from sqlalchemy.exc import OperationalError

from services.engine import ir, outcome
from services.engine.errors import ModelError
from services.engine.run import Run, make_evaluator, resolve_backend
from services.engine.stats import StatsOptions
from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from services.runtime.listing import ListRequest
from services.simulation import convert
from services.simulation.config import SimulationConfig
from services.simulation.domain import ModelSource, SimulationRequest, Simulations
from services.simulation.hub import Hub, Progress
from services.simulation.queue import Queue
from services.simulation.store import Store
from services.simulation.worker import Worker, failure_reason
from tests.integration.simulation.models import insert_model, simtable_model, small_model

CONFIG = SimulationConfig(
    lease_seconds=2.0,
    chunk_trials=2_000,
    checkpoint_seconds=0.0,
    poll_seconds=0.05,
    exact_limit=5_000,
    max_segments=3,
    min_segment_trials=1,
)
CPU = resolve_backend("cpu")  # what a CPU worker runs: native where a C compiler exists


@contextlib.asynccontextmanager
async def workers(store: Store, hub: Hub, count: int = 1, config: SimulationConfig = CONFIG):
    stop = asyncio.Event()
    pool = [Worker(store, hub, config, backend=CPU) for _ in range(count)]
    tasks = [asyncio.create_task(w.run(stop)) for w in pool]
    try:
        yield pool
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def wait_state(domain: Simulations, sim_id: str, states: tuple[str, ...], tenant="t1"):
    for _ in range(2000):
        record = await domain.get_simulation(tenant, sim_id)
        if record.state in states:
            return record
        await asyncio.sleep(0.01)
    raise AssertionError(f"simulation {sim_id} stuck in {record.state}")


async def wait_progress(store: Store, sim_id: str, trials: int):
    for _ in range(5000):
        record = await store.get_simulation("t1", sim_id)
        if record.trials_done >= trials:
            return record
        await asyncio.sleep(0.002)
    raise AssertionError(f"simulation {sim_id} made no progress")


def reference(
    trials: int,
    seed: int,
    chunk: int,
    segment: int,
    config: SimulationConfig = CONFIG,
    model: ir.Model | None = None,
    sampling: str = "mc",
) -> dict:
    """The engine alone (its chunk loop), cut into the same segments and chunks, merged in
    trial order."""
    expansion = outcome.prepare(model or small_model(), outcome.RunOptions())
    evaluator = make_evaluator(expansion.model, seed=seed, sampling=sampling, backend=CPU)
    options = StatsOptions(exact_limit=config.exact_limit)
    merged = None
    for start in range(0, trials, segment):
        end = min(start + segment, trials)
        run = Run(evaluator, first_trial=start, end_trial=end, chunk_size=chunk, options=options)
        while not run.finished:
            partial = run.step()
        merged = partial if merged is None else merged.merge(partial)
    assert merged is not None
    return {"format": 2, "outputs": outcome.results_data(expansion, merged), "reports": []}


@pytest.fixture
def domain(store: Store) -> Simulations:
    return Simulations(store, Hub(store.simulations_by_id, 0.05), CONFIG)


async def test_runs_to_the_engine_results(domain: Simulations, store: Store):
    model_id = await insert_model(store)
    sim = await domain.create_simulation("t1", "u1", SimulationRequest(model_id, 9_000, 7))
    assert sim.state == "QUEUED" and sim.chunk_trials == 2_000 and sim.segment_trials == 4_000
    async with workers(store, domain.hub):
        done = await wait_state(domain, sim.id, ("SUCCEEDED", "FAILED"))
    assert done.state == "SUCCEEDED", done.state_reason
    assert done.trials_done == 9_000 and done.backend == CPU
    _, data = await domain.get_results("t1", sim.id)
    assert data == reference(9_000, 7, 2_000, 4_000)  # beyond exact_limit: same cuts, same bits


async def test_sobol_sampling_gives_the_engines_bits_over_two_workers(
    domain: Simulations, store: Store
):
    model_id = await insert_model(store)
    request = SimulationRequest(model_id, 9_000, 7, sampling="sobol")
    sim = await domain.create_simulation("t1", "u1", request)
    async with workers(store, domain.hub, count=2):
        done = await wait_state(domain, sim.id, ("SUCCEEDED", "FAILED"))
    assert done.state == "SUCCEEDED", done.state_reason
    record, data = await domain.get_results("t1", sim.id)
    assert record.sampling == "sobol"
    assert data == reference(9_000, 7, 2_000, 4_000, sampling="sobol")
    assert data != reference(9_000, 7, 2_000, 4_000)


async def test_reports_come_with_the_results(domain: Simulations, store: Store):
    """A reporting cell (=RiskPercentile(y, 0.95)/1000) is computed when the results are."""
    base = small_model()
    p95 = ir.Apply("div", (ir.statistic("percentile", "y", 0.95), ir.Const(1000.0)))
    broken = ir.Apply("div", (ir.statistic("mean", "z"), ir.Const(0.0)))
    reports = (ir.Report("P95 (k)", "Sheet1!C1", p95), ir.Report("Sheet1!C2", "Sheet1!C2", broken))
    model_id = await insert_model(store, model=replace(base, reports=reports))
    sim = await domain.create_simulation("t1", "u1", SimulationRequest(model_id, 9_000, 7))
    async with workers(store, domain.hub):
        done = await wait_state(domain, sim.id, ("SUCCEEDED", "FAILED"))
    assert done.state == "SUCCEEDED", done.state_reason
    record, data = await domain.get_results("t1", sim.id)
    want = reference(9_000, 7, 2_000, 4_000)
    assert data["outputs"] == want["outputs"]
    first, second = data["reports"]
    assert first["name"] == "P95 (k)" and first["error"] == ""
    assert first["value"] == pytest.approx(
        data["outputs"]["y"]["percentiles"]["95"] / 1000, rel=2e-3
    )
    assert second == {
        "name": "Sheet1!C2",
        "address": "Sheet1!C2",
        "value": None,
        "error": "#DIV/0!",
    }
    message = convert.results(record, data, {})
    assert [(r.name, r.HasField("value"), r.error) for r in message.reports] == [
        ("P95 (k)", True, ""),
        ("Sheet1!C2", False, "#DIV/0!"),
    ]
    old_format = convert.results(record, data["outputs"], {})  # results stored before reports
    assert [o.name for o in old_format.outputs] == ["y", "z"] and not old_format.reports


async def test_resume_from_checkpoint_is_bit_identical(domain: Simulations, store: Store):
    model_id = await insert_model(store)
    sim = await domain.create_simulation("t1", "u1", SimulationRequest(model_id, 120_000, 3))
    async with workers(store, domain.hub):
        await wait_progress(store, sim.id, 4_000)
    paused = await store.get_simulation("t1", sim.id)  # stopped: checkpointed and released
    assert paused.state == "RUNNING" and 0 < paused.trials_done < 120_000
    async with workers(store, domain.hub, count=2):  # resumed by two workers at once
        done = await wait_state(domain, sim.id, ("SUCCEEDED", "FAILED"))
    assert done.state == "SUCCEEDED" and done.trials_done == 120_000
    assert (await domain.get_results("t1", sim.id))[1] == reference(120_000, 3, 2_000, 40_000)


async def test_risksimtable_runs_its_simulations_as_one_job(domain: Simulations, store: Store):
    model_id = await insert_model(store, model=simtable_model())
    assert (await store.get_model("t1", model_id)).summary["simulations"] == 3
    sim = await domain.create_simulation("t1", "u1", SimulationRequest(model_id, 9_000, 7))
    varied = await domain.create_simulation(
        "t1", "u1", SimulationRequest(model_id, 9_000, 7, options=outcome.RunOptions(True))
    )
    async with workers(store, domain.hub, count=2):  # segments on both workers
        done = await wait_state(domain, sim.id, ("SUCCEEDED", "FAILED"))
        other = await wait_state(domain, varied.id, ("SUCCEEDED", "FAILED"))
    assert done.state == other.state == "SUCCEEDED", (done.state_reason, other.state_reason)
    record, data = await domain.get_results("t1", sim.id)
    assert data == reference(9_000, 7, 2_000, 4_000, model=simtable_model())
    message = convert.results(record, data, {"y": "Sheet1!B1"})
    assert [(o.name, o.simulation, o.address) for o in message.outputs] == [
        ("y", k, "Sheet1!B1") for k in (1, 2, 3)
    ]
    assert [[v.value for v in s.values] for s in message.simulations] == [[100], [200], [300]]
    # one more of b's mean (3 * 8/3) above each simulation's mean of a; varied seeds too
    _, varied_data = await domain.get_results("t1", varied.id)
    assert convert.simulation(other).vary_simulation_seeds
    for results in (data, varied_data):
        for k, mean in enumerate((108.0, 208.0, 308.0)):
            y = results["outputs"][f"y [{k + 1}]"]
            assert abs(y["mean"] - mean) < 4 * y["std"] / 9_000**0.5
    # The same numbers, shifted: equal spreads up to the rounding of the shifted sums (the
    # varied seeds' spreads differ by about 1 %).
    assert data["outputs"]["y [2]"]["std"] == pytest.approx(
        data["outputs"]["y [1]"]["std"], rel=1e-12
    )
    assert varied_data["outputs"]["y [2]"]["std"] != varied_data["outputs"]["y [1]"]["std"]


def fail_once(monkeypatch, cls, name: str) -> list:
    """Make ``cls.name`` raise a database error on its first call only; returns the calls."""
    original, calls = getattr(cls, name), []

    async def flaky(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise OperationalError("SELECT 1", {}, ConnectionError("the database went away"))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, flaky)
    return calls


async def test_a_database_error_interrupts_a_segment_but_loses_nothing(
    domain: Simulations, store: Store, monkeypatch
):
    model_id = await insert_model(store)
    sim = await domain.create_simulation("t1", "u1", SimulationRequest(model_id, 9_000, 7))
    checkpoints = fail_once(monkeypatch, Queue, "checkpoint")
    leases = fail_once(monkeypatch, Queue, "lease")
    async with workers(store, domain.hub):
        done = await wait_state(domain, sim.id, ("SUCCEEDED", "FAILED"))
    assert done.state == "SUCCEEDED", done.state_reason  # resumed once its lease lapsed
    assert len(checkpoints) > 1 and len(leases) > 1  # both failed once, and the worker went on
    _, data = await domain.get_results("t1", sim.id)
    assert data == reference(9_000, 7, 2_000, 4_000)


async def test_a_model_that_fails_at_run_time_fails_only_its_simulation(
    domain: Simulations, store: Store
):
    a = ir.Sample(0, "uniform", (ir.Const(0.0), ir.Const(1.0)), "a", "Sheet1!A1")
    broken = ir.Apply("no_such_function", (a,), "Sheet1!B1")
    bad_id = await insert_model(store, model=ir.Model((a,), (ir.Output("y", "Sheet1!B1", broken),)))
    bad = await domain.create_simulation("t1", "u1", SimulationRequest(bad_id, 3_000, 1))
    good = await domain.create_simulation(
        "t1", "u1", SimulationRequest(await insert_model(store), 3_000, 1)
    )
    async with workers(store, domain.hub):
        failed = await wait_state(domain, bad.id, ("SUCCEEDED", "FAILED"))
        done = await wait_state(domain, good.id, ("SUCCEEDED", "FAILED"))
    assert failed.state == "FAILED" and "no_such_function" in failed.state_reason
    assert done.state == "SUCCEEDED"  # the same worker went on to the next job


async def test_cache_and_idempotency(domain: Simulations, store: Store):
    model_id = await insert_model(store)
    request = SimulationRequest(model_id, 3_000, 11, request_id="r-1")
    first = await domain.create_simulation("t1", "u1", request)
    assert (await domain.create_simulation("t1", "u1", request)).id == first.id
    for different in (
        replace(request, trials=4_000),
        replace(request, seed=12),
        replace(request, sampling="lhs"),
        replace(request, model_id=await insert_model(store)),
        replace(request, backend_preference="CPU"),
        replace(request, priority=5),
        replace(request, options=outcome.RunOptions(vary_seeds=True)),
    ):
        with pytest.raises(InvalidArgument) as refused:
            await domain.create_simulation("t1", "u1", different)
        assert refused.value.violations[0][0] == "request_id"
    async with workers(store, domain.hub):
        await wait_state(domain, first.id, ("SUCCEEDED",))
    again = await domain.create_simulation("t1", "u1", replace(request, request_id=""))
    assert again.cached and again.state == "SUCCEEDED" and again.id != first.id
    assert (await domain.get_results("t1", again.id))[1] == (
        await domain.get_results("t1", first.id)
    )[1]
    fresh = await domain.create_simulation(
        "t1", "u1", replace(request, request_id="", bypass_cache=True)
    )
    assert not fresh.cached and fresh.state == "QUEUED"


class Ledger:
    """Trial reservations by id, idempotent like identity's ReserveTrials."""

    def __init__(self) -> None:
        self.reserved: dict[str, int] = {}

    async def reserve_trials(self, tenant_id: str, trials: int, reservation_id: str) -> None:
        self.reserved.setdefault(f"{tenant_id}/{reservation_id}", trials)


async def test_a_retried_request_reserves_its_trials_once(store: Store, monkeypatch):
    ledger = Ledger()
    domain = Simulations(store, Hub(store.simulations_by_id, 0.05), CONFIG, quotas=ledger)
    model_id = await insert_model(store)
    request = SimulationRequest(model_id, 3_000, 11, request_id="r-1")
    insert = store.insert_simulation

    async def fail_once(*args):
        monkeypatch.setattr(store, "insert_simulation", insert)
        raise ConnectionError("the database went away after the reservation")

    monkeypatch.setattr(store, "insert_simulation", fail_once)
    with pytest.raises(ConnectionError):
        await domain.create_simulation("t1", "u1", request)
    first = await domain.create_simulation("t1", "u1", request)
    same = await asyncio.gather(*(domain.create_simulation("t1", "u1", request) for _ in range(3)))
    assert {s.id for s in same} == {first.id}
    assert sum(ledger.reserved.values()) == 3_000
    await domain.create_simulation("t1", "u1", replace(request, request_id="", bypass_cache=True))
    await domain.create_simulation("t1", "u1", replace(request, request_id="r-2"))
    other = replace(request, model_id=await insert_model(store, "t2"))
    await domain.create_simulation("t2", "u1", other)  # the same request id in another tenant
    assert sum(ledger.reserved.values()) == 4 * 3_000


async def test_cancel_stops_a_running_job(domain: Simulations, store: Store):
    model_id = await insert_model(store)
    sim = await domain.create_simulation("t1", "u1", SimulationRequest(model_id, 10**8, 1))
    async with workers(store, domain.hub) as pool:
        domain.cancel_local = lambda sim_id: [w.cancel(sim_id) for w in pool]
        record = await wait_state(domain, sim.id, ("RUNNING",))
        await wait_progress(store, sim.id, 1)
        cancelled = await domain.cancel_simulation("t1", sim.id)
        assert cancelled.state == "CANCELLED"
        for _ in range(500):
            if pool[0].job is None:
                break
            await asyncio.sleep(0.01)
        assert pool[0].job is None  # the worker let go within a chunk
    final = await store.get_simulation("t1", sim.id)
    assert final.state == "CANCELLED" and final.trials_done < 10**8
    assert record.state == "RUNNING"
    assert await domain.cancel_simulation("t1", sim.id) == final  # ended: nothing changes
    with pytest.raises(FailedPrecondition):
        await domain.get_results("t1", sim.id)


async def test_other_tenants_see_nothing(domain: Simulations, store: Store):
    model_id = await insert_model(store)
    sim = await domain.create_simulation("t1", "u1", SimulationRequest(model_id, 100, 1))
    with pytest.raises(NotFound):
        await domain.get_model("t2", model_id)
    with pytest.raises(NotFound):
        await domain.create_simulation("t2", "u2", SimulationRequest(model_id, 100, 1))
    for call in (domain.get_simulation, domain.cancel_simulation, domain.get_results):
        with pytest.raises(NotFound):
            await call("t2", sim.id)
    with pytest.raises(NotFound):
        await anext(domain.watch("t2", sim.id))
    assert (await domain.list_simulations("t2", ListRequest())).items == []


async def test_bad_requests_name_the_field(domain: Simulations, store: Store):
    model_id = await insert_model(store)
    with pytest.raises(InvalidArgument) as error:
        await domain.create_simulation("t1", "u1", SimulationRequest(model_id, 0, 1))
    assert error.value.violations[0][0] == "trials"
    with pytest.raises(InvalidArgument) as error:
        await domain.list_simulations("t1", ListRequest(filter="colour = red"))
    assert error.value.violations[0][0] == "filter"
    with pytest.raises(InvalidArgument) as error:
        await domain.list_simulations("t1", ListRequest(page_token="not-a-token"))
    assert error.value.violations[0][0] == "page_token"


async def test_a_model_too_wide_for_the_memory_budget_is_refused_at_creation(
    domain: Simulations, monkeypatch: pytest.MonkeyPatch
):
    """CreateModel says the size of one trial and the limit (INVALID_ARGUMENT), before any
    worker could run out of memory on it."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Model"
    ws["A1"] = "=RiskNormal(0,1)"
    for r in range(1, 101):  # 100 outputs: 64 KiB of statistics each
        ws.cell(r, 2, f"=RiskOutput()+A1*{r}")
    buffer = io.BytesIO()
    wb.save(buffer)
    monkeypatch.setenv("ALEA_ENGINE_MEMORY_BYTES", str(16 << 20))
    with pytest.raises(InvalidArgument) as error:
        await domain.create_model("t1", "u1", "wide", ModelSource(workbook=buffer.getvalue()))
    field, reason = error.value.violations[0]
    assert field == "workbook" and "one trial of this model needs 6.3 MiB" in reason
    assert "(ALEA_ENGINE_MEMORY_BYTES) is 16.0 MiB" in reason


async def test_watchers_get_state_progress_and_final_state(domain: Simulations, store: Store):
    model_id = await insert_model(store)
    sim = await domain.create_simulation("t1", "u1", SimulationRequest(model_id, 40_000, 5))

    async def watch() -> list:
        return [event async for event in domain.watch("t1", sim.id)]

    watchers = [asyncio.create_task(watch()) for _ in range(50)]
    while domain.hub.watchers < 50:  # noqa: ASYNC110  (every watcher subscribed)
        await asyncio.sleep(0.01)
    async with workers(store, domain.hub):
        seen = await asyncio.gather(*watchers)
    for events in seen:
        assert events[0].state == "QUEUED" and events[-1].state == "SUCCEEDED"
        progress = [e for e in events if isinstance(e, Progress)]
        assert progress and progress[-1].trials_total == 40_000
        assert set(progress[-1].running) == {"y", "z"}
    assert domain.hub.watchers == 0  # every watcher released its topic


async def test_watchers_joining_a_watched_simulation_share_its_state(
    domain: Simulations, store: Store, monkeypatch
):
    model_id = await insert_model(store)
    sim = await domain.create_simulation("t1", "u1", SimulationRequest(model_id, 10**8, 2))
    first = domain.watch("t1", sim.id)
    assert (await anext(first)).state == "QUEUED"
    following = asyncio.ensure_future(anext(first))
    while domain.hub.watchers < 1:  # noqa: ASYNC110  (the first watcher subscribed)
        await asyncio.sleep(0.01)
    reads = []
    get_simulation = store.get_simulation

    async def counted(*args):
        reads.append(args)
        return await get_simulation(*args)

    monkeypatch.setattr(store, "get_simulation", counted)
    joined = [domain.watch("t1", sim.id) for _ in range(20)]
    assert [(await anext(stream)).id for stream in joined] == [sim.id] * 20
    assert reads == []  # the crowd started from the hub's copy
    with pytest.raises(NotFound):  # which never serves another tenant
        await anext(domain.watch("t2", sim.id))
    following.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await following
    for stream in (first, *joined):
        await stream.aclose()
    await domain.cancel_simulation("t1", sim.id)


async def test_a_watcher_that_leaves_frees_its_topic(domain: Simulations, store: Store):
    model_id = await insert_model(store)
    sim = await domain.create_simulation("t1", "u1", SimulationRequest(model_id, 10**8, 2))
    stream = domain.watch("t1", sim.id)
    assert (await anext(stream)).state == "QUEUED"
    following = asyncio.ensure_future(anext(stream))  # subscribed, waiting for an event
    await asyncio.sleep(0.3)
    assert domain.hub.watchers == 1
    following.cancel()  # the client went away
    with contextlib.suppress(asyncio.CancelledError):
        await following
    await stream.aclose()
    assert domain.hub.watchers == 0 and not domain.hub._topics
    await domain.cancel_simulation("t1", sim.id)


def test_failure_reasons_are_sentences_not_exceptions() -> None:
    assert failure_reason(ModelError("no output", "Model!B1")) == "Model!B1: no output"
    assert "ALEA_ENGINE_MEMORY_BYTES" in failure_reason(MemoryError())
    reason = failure_reason(ZeroDivisionError("float division by zero"))
    assert reason.startswith("the engine failed on this model (error ")
    assert "ZeroDivision" not in reason and "division" not in reason


async def test_the_hub_reads_every_watched_simulation_at_once(store: Store):
    """Watchers of many simulations run elsewhere (another replica's workers) cost one read
    of the database per poll interval, not one per simulation, and each still follows its
    simulation to the end."""
    reads: list[int] = []

    async def load(ids):
        reads.append(len(ids))
        return await store.simulations_by_id(ids)

    domain = Simulations(store, Hub(load, 0.05), CONFIG)
    model_id = await insert_model(store)
    request = [SimulationRequest(model_id, 2_000, seed) for seed in range(20)]
    sims = [await domain.create_simulation("t1", "u1", r) for r in request]
    streams = [domain.watch("t1", sim.id) for sim in sims]
    assert [(await anext(stream)).state for stream in streams] == ["QUEUED"] * 20

    async def follow(stream):
        async for event in stream:
            if not isinstance(event, Progress):
                last = event
        return last

    following = [asyncio.ensure_future(follow(stream)) for stream in streams]
    while domain.hub.watchers < 20:  # noqa: ASYNC110  (every watcher subscribed)
        await asyncio.sleep(0.01)
    reads.clear()
    await asyncio.sleep(0.5)  # about ten poll intervals
    assert 1 <= len(reads) <= 15 and set(reads) == {20}
    async with workers(store, Hub(store.simulations_by_id, 0.05)):  # another replica's
        ends = await asyncio.wait_for(asyncio.gather(*following), 60)
    assert [end.state for end in ends] == ["SUCCEEDED"] * 20
    assert domain.hub.watchers == 0 and not domain.hub._topics
