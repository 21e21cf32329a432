"""The simulation store and queue on SQLite and PostgreSQL: segment leases, fair share,
fencing, checkpoints, completion, idempotency, tenancy, pages and the result cache."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.runtime.errors import NotFound
from services.runtime.listing import ListRequest
from services.simulation import store as s
from services.simulation.queue import Queue, combine_progress
from services.simulation.store import SimulationRecord, Store
from tests.integration.simulation.models import insert_model, model_of

NOW = 1_000_000.0


def job(tenant: str = "t1", *, priority: int = 0, created: float = NOW, **kw) -> SimulationRecord:
    values = dict(
        id=str(uuid.uuid4()),
        tenant_id=tenant,
        user_id="u1",
        request_id=None,
        model_id=model_of(tenant),
        cache_key="k1",
        trials=1000,
        chunk_trials=100,
        seed=1,
        sampling="mc",
        backend_preference="AUTO",
        priority=priority,
        state=s.QUEUED,
        state_reason="",
        trials_done=0,
        backend="",
        cached=False,
        progress=None,
        create_time=created,
        update_time=created,
        start_time=None,
        end_time=None,
        segment_trials=1000,
    )
    values.update(kw)
    return SimulationRecord(**values)


async def lease(store: Store, owner: str = "w1", now: float = NOW, gpu: bool = False):
    return await Queue(store).lease(owner, now=now, lease_seconds=10, prefer_gpu=gpu)


async def checkpoint(store: Store, held, trials: int, now: float, complete: bool = False):
    progress = {"trials": trials, "running": {"y": [1.0, 0.1]}}
    return await Queue(store).checkpoint(
        held,
        trials_done=trials,
        checkpoint=b"ck%d" % trials,
        progress=progress,
        backend="numpy",
        now=now,
        lease_seconds=10,
        complete=complete,
    )


async def test_segments_split_the_trials(store: Store):
    record = job(trials=2500, segment_trials=1000)
    await store.insert_simulation(record)
    taken = [await lease(store, f"w{i}") for i in range(4)]
    ranges = [(x.first_trial, x.end_trial) for x in taken if x is not None]
    assert ranges == [(0, 1000), (1000, 2000), (2000, 2500)] and taken[3] is None
    assert (await store.get_simulation("t1", record.id)).state == s.RUNNING


async def test_concurrent_leases_never_share_a_segment(store: Store):
    for i in range(6):
        await store.insert_simulation(job(created=NOW + i))
    leases = await asyncio.gather(*(lease(store, f"w{i}") for i in range(8)))
    taken = [x.segment_id for x in leases if x is not None]
    assert len(taken) == 6 and len(set(taken)) == 6
    assert sum(x is None for x in leases) == 2


async def test_fair_share_then_priority_then_age(store: Store):
    busy = [job("busy", created=NOW + i) for i in range(3)]
    for record in busy:
        await store.insert_simulation(record)
    assert (await lease(store)).simulation.id == busy[0].id
    low = job("quiet", created=NOW + 10)
    high = job("quiet", created=NOW + 20, priority=5)
    await store.insert_simulation(low)
    await store.insert_simulation(high)
    # "busy" already runs one segment, so "quiet" goes next, its high priority first.
    assert (await lease(store)).simulation.id == high.id
    # One running each: equal priority, so the older job.
    assert (await lease(store)).simulation.id == busy[1].id
    assert (await lease(store)).simulation.id == low.id


async def test_gpu_worker_takes_gpu_jobs_first(store: Store):
    await store.insert_simulation(job(created=NOW))
    gpu_job = job(created=NOW + 1, backend_preference="GPU")
    await store.insert_simulation(gpu_job)
    assert (await lease(store, gpu=True)).simulation.id == gpu_job.id


async def test_expired_lease_resumes_elsewhere_and_fences_the_old_worker(store: Store):
    record = job()
    await store.insert_simulation(record)
    old = await lease(store, "w1")
    held, _ = await checkpoint(store, old, 300, NOW + 1)
    assert held and (await store.get_simulation("t1", record.id)).trials_done == 300
    assert await lease(store, "w2", now=NOW + 5) is None  # lease still live
    new = await lease(store, "w2", now=NOW + 12)
    assert new.trials_done == 300 and new.checkpoint == b"ck300"
    assert new.epoch == old.epoch + 1
    assert not (await checkpoint(store, old, 400, NOW + 13))[0]
    assert not await Queue(store).heartbeat(old, now=NOW + 13, lease_seconds=10)
    assert (await checkpoint(store, new, 1000, NOW + 14, complete=True))[0]
    queue = Queue(store)
    assert await queue.pending_segments(record.id) == 0
    assert await queue.segment_checkpoints(record.id) == [b"ck1000"]
    assert await queue.unfinished(NOW + 20) == [("t1", record.id)]  # its finisher never came
    assert await queue.finish(record.id, result_data={"y": 1}, backend="numpy", now=NOW + 21)
    assert not await queue.finish(record.id, result_data={"y": 2}, backend="numpy", now=NOW + 22)
    done = await store.get_simulation("t1", record.id)
    assert done.state == s.SUCCEEDED and await store.get_results("t1", record.id) == {"y": 1}


async def test_cancel_fences_the_running_worker(store: Store):
    record = job()
    await store.insert_simulation(record)
    held = await lease(store)
    assert await store.cancel("t1", record.id, "by user", NOW + 1)
    assert not await Queue(store).heartbeat(held, now=NOW + 2, lease_seconds=10)
    assert not await store.cancel("t1", record.id, "again", NOW + 3)
    assert (await store.get_simulation("t1", record.id)).state == s.CANCELLED
    assert await lease(store, "w2", now=NOW + 20) is None  # nothing left to run
    assert not await store.cancel("t2", job().id, "absent", NOW)


async def test_request_id_is_idempotent_per_tenant(store: Store):
    first, created = await store.insert_simulation(job(request_id="r1"))
    again, created_again = await store.insert_simulation(job(request_id="r1"))
    other, created_other = await store.insert_simulation(job("t2", request_id="r1"))
    assert created and not created_again and created_other
    assert again.id == first.id and other.id != first.id


async def test_tenant_scoping_and_pages(store: Store):
    ids = []
    for i in range(5):
        record = job(created=NOW + i)
        ids.append(record.id)
        await store.insert_simulation(record)
    await store.insert_simulation(job("t2"))
    assert await store.get_simulation("t2", ids[0]) is None
    page1 = await store.list_simulations("t1", ListRequest(2))
    page2 = await store.list_simulations("t1", ListRequest(2, page1.next_page_token))
    page3 = await store.list_simulations("t1", ListRequest(2, page2.next_page_token))
    seen = [r.id for r in page1.items + page2.items + page3.items]
    assert seen == ids[::-1] and page3.next_page_token == ""
    running = ListRequest(10, filter='state = "STATE_RUNNING"')
    assert (await store.list_simulations("t1", running)).items == []


async def test_cache_lookup_respects_tenant_and_age(store: Store):
    record = job()
    await store.insert_simulation(record)
    held = await lease(store)
    await checkpoint(store, held, 1000, NOW + 1, complete=True)
    await Queue(store).finish(record.id, result_data={"r": 1}, backend="numpy", now=NOW + 5)
    assert await store.cached_result("t1", "k1", NOW) == {"r": 1}
    assert await store.cached_result("t1", "k1", NOW + 6) is None
    assert await store.cached_result("t2", "k1", NOW) is None


def test_progress_pools_segments():
    a = {"trials": 100, "running": {"y": [1.0, 0.1]}}
    b = {"trials": 300, "running": {"y": [3.0, 0.05]}}
    pooled = combine_progress([a, b, None])
    assert pooled["trials"] == 400 and pooled["running"]["y"][0] == 2.5
    assert pooled["running"]["y"][1] > 0.05  # the means differ: the spread counts


async def test_concurrent_checkpoints_keep_every_segment_in_the_total(store: Store):
    # Two workers completing the two segments of one simulation at the same moment: the
    # one committing last must count the other's trials, not an older copy of them.
    for attempt in range(5):
        record = job(trials=2000, segment_trials=1000, created=NOW + attempt)
        await store.insert_simulation(record)
        a, b = await lease(store, "w1", NOW + attempt), await lease(store, "w2", NOW + attempt)
        await asyncio.gather(
            checkpoint(store, a, 1000, NOW + attempt + 1, complete=True),
            checkpoint(store, b, 1000, NOW + attempt + 1, complete=True),
        )
        done = await store.get_simulation("t1", record.id)
        assert done.trials_done == 2000 and done.progress["trials"] == 2000


async def test_reads_do_not_wait_for_a_writer(store: Store):
    # Watchers, pollers and Get/List calls read while workers write checkpoints: on
    # SQLite a read must not queue for the single write lock (nor fail once it times out).
    record = job()
    await store.insert_simulation(record)
    queue = Queue(store)
    async with store.db.transaction() as session:
        await session.execute(s.simulations.update().values(update_time=NOW + 1))
        assert (await store.get_simulation("t1", record.id)).update_time == NOW
        assert len((await store.list_simulations("t1", ListRequest())).items) == 1
        assert await store.get_results("t1", record.id) is None
        assert await queue.pending_segments(record.id) == 1


async def test_a_cache_hit_does_not_renew_the_results_age(store: Store):
    record = job()
    await store.insert_simulation(record)
    held = await lease(store)
    await checkpoint(store, held, 1000, NOW + 1, complete=True)
    await Queue(store).finish(record.id, result_data={"r": 1}, backend="numpy", now=NOW + 5)
    hit = job(
        created=NOW + 50,
        state=s.SUCCEEDED,
        cached=True,
        backend="cache",
        trials_done=1000,
        start_time=NOW + 50,
        end_time=NOW + 50,
    )
    await store.insert_simulation(hit, {"r": 1})
    # The results were computed at NOW + 5: past the age limit, whoever served them since.
    assert await store.cached_result("t1", "k1", NOW + 6) is None


async def test_a_stopped_simulation_leaves_nothing_in_the_queue(store: Store):
    busy = job("busy", trials=2000, segment_trials=1000)
    await store.insert_simulation(busy)
    assert (await lease(store, "w1")).simulation.id == busy.id
    assert await store.cancel("busy", busy.id, "by user", NOW + 1)
    failed = job("busy", created=NOW + 1)
    await store.insert_simulation(failed)
    assert await Queue(store).fail(failed.id, reason="boom", now=NOW + 2)
    assert await Queue(store).pending_segments(busy.id) == 0
    assert await Queue(store).pending_segments(failed.id) == 0
    # The cancelled segment's lease no longer counts as work "busy" runs: its next job
    # (the older) goes before the quiet tenant's.
    mine = job("busy", created=NOW + 2)
    quiet = job("quiet", created=NOW + 3)
    await store.insert_simulation(mine)
    await store.insert_simulation(quiet)
    assert (await lease(store, "w2", NOW + 3)).simulation.id == mine.id


async def test_cancel_racing_checkpoints_has_the_last_word(store: Store):
    # Cancel takes segment rows then the simulation's, like checkpoints: no deadlock on
    # PostgreSQL, and no checkpoint lands on the simulation after it was cancelled.
    for attempt in range(5):
        record = job(trials=2000, segment_trials=1000, created=NOW + attempt)
        await store.insert_simulation(record)
        a, b = await lease(store, "w1", NOW + attempt), await lease(store, "w2", NOW + attempt)
        cancelled, *_ = await asyncio.gather(
            store.cancel("t1", record.id, "by user", NOW + attempt + 2),
            checkpoint(store, a, 1000, NOW + attempt + 1, complete=True),
            checkpoint(store, b, 500, NOW + attempt + 1),
        )
        done = await store.get_simulation("t1", record.id)
        assert cancelled and done.state == s.CANCELLED
        assert done.update_time == done.end_time == NOW + attempt + 2
        assert await Queue(store).pending_segments(record.id) == 0


async def test_a_model_in_use_is_not_deleted_and_a_deleted_one_takes_no_simulation(store: Store):
    model_id = await insert_model(store)
    running = job(model_id=model_id)
    await store.insert_simulation(running)
    assert await store.delete_model("t1", model_id, NOW) == "in use"
    assert await store.delete_model("t2", model_id, NOW) == "absent"  # another tenant's
    await store.cancel("t1", running.id, "by user", NOW + 1)
    assert await store.delete_model("t1", model_id, NOW + 2) == "deleted"
    assert await store.delete_model("t1", model_id, NOW + 3) == "absent"
    with pytest.raises(NotFound):
        await store.insert_simulation(job(model_id=model_id))


async def test_delete_model_and_create_simulation_racing_leave_no_orphan(store: Store):
    for _ in range(5):
        model_id = await insert_model(store)
        record = job(model_id=model_id)
        deleted, inserted = await asyncio.gather(
            store.delete_model("t1", model_id, NOW),
            store.insert_simulation(record),
            return_exceptions=True,
        )
        # Either the simulation came first and the model stays, or the delete did and the
        # simulation was refused: never a queued simulation of a deleted model.
        if deleted == "deleted":
            assert isinstance(inserted, NotFound)
        else:
            assert deleted == "in use" and inserted == (record, True)


async def test_a_segment_that_kills_its_workers_fails_its_simulation(store: Store):
    """Leased ``max_attempts`` times with no checkpoint between: the next lease fails it."""
    record = job()
    await store.insert_simulation(record)
    held = await lease(store, "w0")
    assert held is not None
    await checkpoint(store, held, 100, NOW + 1)  # progress resets the count
    for i in range(3):  # each worker dies before its first checkpoint; its lease expires
        assert await lease(store, f"w{i + 1}", now=NOW + 20 * (i + 1)) is not None
    assert await lease(store, "w4", now=NOW + 80) is None
    failed = await store.get_simulation(record.tenant_id, record.id)
    assert failed.state == s.FAILED
    assert failed.state_reason.startswith("trials 0 to 999 were started 3 times")
    assert await lease(store, "w5", now=NOW + 100) is None  # and nothing is left to lease
