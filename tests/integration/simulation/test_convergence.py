"""Convergence stopping through the job queue, on SQLite and PostgreSQL.

A converging simulation is a segment per check; whoever completes a segment tests the
completed prefix. The trial it stops at, and its results, must be the engine's alone
(:func:`services.engine.convergence.simulate`) whatever the chunk size and the number of
workers; the segments beyond it are dropped.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import numpy as np
import pytest
from alea.simulation.v1 import convergence_pb2

from services.engine import convergence, outcome, sipmath
from services.engine.convergence import Settings, criterion
from services.engine.run import make_evaluator
from services.engine.stats import StatsOptions
from services.runtime.errors import InvalidArgument
from services.simulation import convert
from services.simulation.config import SimulationConfig
from services.simulation.domain import SimulationRequest, Simulations
from services.simulation.hub import Hub, Progress
from services.simulation.queue import Queue
from services.simulation.store import Store
from tests.integration.simulation.models import insert_model, small_model
from tests.integration.simulation.test_worker import CONFIG, CPU, wait_state, workers

SEED = 11
TRIALS = 20_000
# Everything exact (samples kept), so any chunking gives the same statistics' bits.
EXACT = replace(CONFIG, exact_limit=1_000_000)


def reference(settings: Settings, config: SimulationConfig) -> dict:
    """The engine alone: the converging run and its results as the worker stores them."""
    expansion = outcome.prepare(small_model(), outcome.RunOptions())
    evaluator = make_evaluator(expansion.model, seed=SEED, backend=CPU)
    options = StatsOptions(exact_limit=config.exact_limit)
    partial, stopped = convergence.simulate(expansion.model, evaluator, settings, options=options)
    return {
        "format": 2,
        "outputs": outcome.results_data(expansion, partial),
        "reports": [],
        "convergence": stopped.to_dict(settings),
    }


def without_series(data: dict) -> tuple[dict, dict]:
    """(the results less each output's convergence series, the series): the series is of
    merged moments, equal within rounding for any chunking (see engine/stats.py)."""
    outputs = {k: dict(v) for k, v in data["outputs"].items()}
    series = {k: np.array(v.pop("convergence")) for k, v in outputs.items()}
    return {**data, "outputs": outputs}, series


async def run(store: Store, config: SimulationConfig, settings: Settings, count: int):
    domain = Simulations(store, Hub(store.simulations_by_id, 0.05), config)
    model_id = await insert_model(store)
    options = outcome.RunOptions(convergence=settings)
    request = SimulationRequest(model_id, settings.max_trials, SEED, options=options)
    sim = await domain.create_simulation("t1", "u1", request)
    assert sim.segment_trials == settings.check_every
    async with workers(store, domain.hub, count=count, config=config):
        done = await wait_state(domain, sim.id, ("SUCCEEDED", "FAILED"))
    assert done.state == "SUCCEEDED", done.state_reason
    assert await Queue(store).pending_segments(sim.id) == 0  # the rest were dropped
    return await domain.get_results("t1", sim.id)


async def test_stops_where_the_engine_does_with_any_workers_and_chunks(store: Store):
    settings = Settings(check_every=500, max_trials=TRIALS, default=criterion(0.01))
    want, want_series = without_series(reference(settings, EXACT))
    stopped = want["convergence"]
    assert stopped["converged"] and 500 < stopped["trials"] < TRIALS
    for count, chunk in ((1, 2_000), (2, 128)):
        record, data = await run(store, replace(EXACT, chunk_trials=chunk), settings, count)
        got, series = without_series(data)
        assert got == want, (count, chunk)
        for key, values in series.items():
            np.testing.assert_allclose(values, want_series[key], rtol=1e-12)
        assert record.trials_done == stopped["trials"] and record.trials == TRIALS
        message = convert.results(record, data, {})
        assert message.trials == stopped["trials"] and message.convergence.converged
        assert [o.output for o in message.convergence.outputs] == ["y", "z"]
        assert convert.simulation(record).convergence.check_every == 500


async def test_beyond_the_exact_limit_the_same_cuts_give_the_same_bits(store: Store):
    settings = Settings(check_every=1_000, max_trials=TRIALS, default=criterion(0.008))
    want = reference(settings, CONFIG)  # exact_limit 5,000: sketches from the sixth check
    assert want["convergence"]["trials"] > CONFIG.exact_limit
    _, data = await run(store, CONFIG, settings, 2)
    assert data == want


async def test_a_run_that_never_converges_runs_every_trial_and_says_so(store: Store):
    settings = Settings(check_every=1_000, max_trials=3_000, default=criterion(1e-6))
    record, data = await run(store, CONFIG, settings, 1)
    assert data["convergence"]["converged"] is False
    assert data["convergence"]["trials"] == record.trials_done == 3_000
    assert data == reference(settings, CONFIG)
    assert not convert.results(record, data, {}).convergence.converged


@pytest.mark.parametrize(
    ("check_every", "test", "field"),
    [
        (0, None, "convergence.check_every"),
        (3_000, None, "trials"),  # 10,000 is not a multiple of 3,000
        (1_000, convergence_pb2.ConvergenceTest(tolerance=0), "convergence.default_test.tolerance"),
        (1_000, convergence_pb2.ConvergenceTest(tolerance=2), "convergence.default_test.tolerance"),
        (
            1_000,
            convergence_pb2.ConvergenceTest(tolerance=0.01, confidence=1.5),
            "convergence.default_test.confidence",
        ),
        (
            1_000,
            convergence_pb2.ConvergenceTest(tolerance=0.01, percentiles=[95]),
            "convergence.default_test.percentiles",
        ),
    ],
)
def test_bad_settings_are_invalid_argument_naming_the_field(
    check_every: int, test: convergence_pb2.ConvergenceTest | None, field: str
) -> None:
    message = convergence_pb2.ConvergenceSettings(check_every=check_every, default_test=test)
    with pytest.raises(InvalidArgument) as caught:
        convert.convergence_settings(message, 10_000)
    assert caught.value.violations[0][0] == field


async def test_the_service_refuses_what_the_queue_cannot_run(store: Store):
    domain = Simulations(store, Hub(store.simulations_by_id, 0.05), CONFIG)
    model_id = await insert_model(store)

    async def create(settings: Settings) -> None:
        options = outcome.RunOptions(convergence=settings)
        request = SimulationRequest(model_id, settings.max_trials, SEED, options=options)
        await domain.create_simulation("t1", "u1", request)

    with pytest.raises(InvalidArgument, match=r"^convergence\.check_every"):
        await create(Settings(check_every=10, max_trials=1_000_000))  # 100,000 segments
    with pytest.raises(InvalidArgument, match=r"^convergence\.tolerance"):
        await create(Settings(check_every=1_000, max_trials=10_000, default=None))
    message = convert.convergence_settings(
        convergence_pb2.ConvergenceSettings(
            check_every=1_000, default_test=convergence_pb2.ConvergenceTest(tolerance=0.05)
        ),
        10_000,
    )
    assert message == Settings(1_000, 10_000, criterion(0.05))


async def test_progress_shows_the_precision_of_the_latest_check(store: Store):
    domain = Simulations(store, Hub(store.simulations_by_id, 0.05), CONFIG)
    model_id = await insert_model(store)
    settings = Settings(check_every=2_000, max_trials=12_000, default=criterion(1e-6))
    options = outcome.RunOptions(convergence=settings)
    sim = await domain.create_simulation(
        "t1", "u1", SimulationRequest(model_id, 12_000, SEED, options=options)
    )

    async def watch() -> list:
        return [event async for event in domain.watch("t1", sim.id)]

    watcher = asyncio.create_task(watch())
    while domain.hub.watchers < 1:  # noqa: ASYNC110  (the watcher subscribed)
        await asyncio.sleep(0.01)
    async with workers(store, domain.hub, config=replace(CONFIG, chunk_trials=500)):
        events = await watcher
    checks = [e.convergence for e in events if isinstance(e, Progress) and e.convergence]
    assert checks, "no progress event carried a check"
    trials = [c["trials"] for c in checks]
    assert trials == sorted(trials) and all(t % 2_000 == 0 for t in trials)
    assert not any(c["converged"] for c in checks)
    assert checks[-1]["outputs"]["y"]["precision"]["mean"] > 1e-6
    message = convert.progress(next(e for e in events if isinstance(e, Progress) and e.convergence))
    assert message.convergence.outputs[0].statistics[0].statistic == "mean"


async def test_the_sipmath_library_is_of_the_trials_it_stopped_at(store: Store):
    """Two workers complete segments past the check that converges; the library is of the
    trials the results are of, the same as the engine's converging run gives."""
    settings = Settings(check_every=500, max_trials=TRIALS, default=criterion(0.01))
    record, _ = await run(store, EXACT, settings, 2)
    domain = Simulations(store, Hub(store.simulations_by_id, 0.05), EXACT)
    library = json.loads(await domain.sipmath("t1", record.id, None))
    expansion = outcome.prepare(small_model(), outcome.RunOptions())
    evaluator = make_evaluator(expansion.model, seed=SEED, backend=CPU)
    options = StatsOptions(exact_limit=EXACT.exact_limit)
    partial, _ = convergence.simulate(expansion.model, evaluator, settings, options=options)
    want = sipmath.library_of_run(
        library["name"], partial, seed=SEED, terms=16, created=library["dateCreated"]
    )
    assert library["sips"][0]["metadata"]["count"] == record.trials_done < TRIALS
    assert library == json.loads(json.dumps(want))
