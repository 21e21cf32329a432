"""The simulation service end to end through Envoy over native gRPC, on SQLite and PostgreSQL.

Models from workbook bytes and from a spec, refusals naming the cell, idempotent
CreateSimulation, a watched run to SUCCEEDED, results, the result cache, cancel, quotas,
the queue status, 200 concurrent watchers, and every RPC refused across tenants.
"""

from __future__ import annotations

import asyncio
import io
import uuid

import grpc
import pytest
from alea.identity.v1 import identity_pb2
from alea.simulation.v1 import model_spec_pb2, simulation_pb2_grpc
from alea.simulation.v1 import simulation_pb2 as pb
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.e2e.conftest import Account, register
from tests.engine import models
from tests.support.mesh import Mesh

pytestmark = pytest.mark.integration
State = pb.Simulation.State
# Four chunks: the run lasts a few hundred milliseconds, and may end before a watch opened
# right after its creation arrives (test_a_watch_hears_progress_climb has a longer run).
WATCHED_TRIALS = 1_000_000
TICK_SECONDS = 0.2  # a watch hears progress at least this often while the run goes on


def workbook_bytes(book) -> bytes:
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def sims(edge: grpc.Channel) -> simulation_pb2_grpc.SimulationServiceStub:
    return simulation_pb2_grpc.SimulationServiceStub(edge)


@pytest.fixture(scope="module")
def owner(identity) -> Account:
    return register(identity, "sim-owner")


@pytest.fixture(scope="module")
def stranger(identity) -> Account:
    return register(identity, "sim-stranger")


@pytest.fixture(scope="module")
def model(sims, owner: Account) -> pb.Model:
    request = pb.CreateModelRequest(
        display_name="small",
        workbook=workbook_bytes(models.small()),
        request_id=str(uuid.uuid4()),
    )
    return sims.CreateModel(request, metadata=owner.metadata, timeout=60)


@pytest.fixture(scope="module")
def finished(sims, owner: Account, model: pb.Model) -> tuple[pb.Simulation, list]:
    """A run of ``WATCHED_TRIALS``, watched from creation to its final state."""
    created = sims.CreateSimulation(
        pb.CreateSimulationRequest(
            model_id=model.id,
            trials=WATCHED_TRIALS,
            seed=7,
            request_id=str(uuid.uuid4()),
        ),
        metadata=owner.metadata,
        timeout=30,
    )
    watch = pb.WatchSimulationRequest(simulation_id=created.id)
    events = list(sims.WatchSimulation(watch, metadata=owner.metadata, timeout=120))
    return created, events


def details(error: grpc.RpcError, kind):
    status = rpc_status.from_call(error)
    found = []
    for any_detail in status.details if status else ():
        message = kind()
        if any_detail.Unpack(message):
            found.append(message)
    return found


def test_model_from_workbook_shows_inputs_outputs(model: pb.Model):
    assert model.source == pb.MODEL_SOURCE_WORKBOOK and len(model.content_hash) == 64
    assert {i.name for i in model.inputs} == {"Revenue", "Cost", "Tax"}
    assert [(o.name, o.address) for o in model.outputs] == [("Profit", "Model!B5")]
    normal = next(i for i in model.inputs if i.name == "Revenue")
    assert normal.kind == model_spec_pb2.DISTRIBUTION_KIND_NORMAL and normal.address == "Model!B1"


def test_refused_workbook_names_the_cell(sims, owner: Account):
    book = models.small()
    book["Model"]["B1"] = "=RiskNormal(0,-1)"
    with pytest.raises(grpc.RpcError) as error:
        sims.CreateModel(
            pb.CreateModelRequest(display_name="bad", workbook=workbook_bytes(book)),
            metadata=owner.metadata,
            timeout=30,
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    (bad,) = details(error.value, error_details_pb2.BadRequest)
    assert bad.field_violations[0].field == "Model!B1"


def test_model_from_spec(sims, owner: Account):
    spec = model_spec_pb2.ModelSpec(
        inputs=[
            model_spec_pb2.InputSpec(
                name="x",
                distribution=model_spec_pb2.Distribution(
                    kind=model_spec_pb2.DISTRIBUTION_KIND_UNIFORM, parameters=[0, 1]
                ),
            )
        ],
        expressions=[model_spec_pb2.ExpressionSpec(name="y", formula="2 * x")],
        outputs=[model_spec_pb2.OutputSpec(name="y", expression="y")],
    )
    created = sims.CreateModel(
        pb.CreateModelRequest(display_name="spec", spec=spec), metadata=owner.metadata, timeout=30
    )
    assert created.source == pb.MODEL_SOURCE_SPEC and [o.name for o in created.outputs] == ["y"]
    fetched = sims.GetModel(pb.GetModelRequest(model_id=created.id), metadata=owner.metadata)
    assert fetched.content_hash == created.content_hash


def test_watched_run_succeeds_with_results(sims, owner: Account, finished):
    created, events = finished
    assert created.state == State.STATE_QUEUED
    assert events[0].WhichOneof("event") == "simulation"
    assert events[-1].simulation.state == State.STATE_SUCCEEDED
    if events[0].simulation.state == State.STATE_SUCCEEDED:
        # The run ended before the watch arrived: its final state is all there is to hear.
        assert len(events) == 1
    else:
        progress = [e.progress for e in events if e.WhichOneof("event") == "progress"]
        if progress or _open_while_running(events) >= 2 * TICK_SECONDS:
            _climbs_to(progress, WATCHED_TRIALS, "Profit")
    results = sims.GetResults(
        pb.GetResultsRequest(simulation_id=created.id), metadata=owner.metadata, timeout=30
    )
    (profit,) = results.outputs
    assert profit.name == "Profit" and profit.address == "Model!B5"
    assert profit.statistics.count == WATCHED_TRIALS
    assert (
        abs(profit.statistics.mean - models.SMALL_MEAN)
        < 5 * profit.statistics.std / WATCHED_TRIALS**0.5
    )
    assert [p.percent for p in profit.percentiles] == [1, 5, 10, 25, 50, 75, 90, 95, 99]
    assert sum(profit.histogram.counts) == WATCHED_TRIALS
    assert {s.input_name for s in profit.sensitivity} == {"Revenue", "Cost", "Tax"}
    assert profit.convergence[-1].trials == WATCHED_TRIALS


def _open_while_running(events: list[pb.SimulationEvent]) -> float:
    """Seconds from a watch's first event to the end of the run it watched."""
    joined = events[0].event_time.ToNanoseconds()
    return (events[-1].simulation.end_time.ToNanoseconds() - joined) / 1e9


def _climbs_to(progress: list[pb.Progress], trials: int, output: str) -> None:
    """Progress was heard, rising to every trial, the last with the output's statistics."""
    assert progress, "a watch open while the run went on heard no progress"
    done = [p.trials_done for p in progress]
    assert done == sorted(done) and done[-1] == trials
    assert {p.trials_total for p in progress} == {trials}
    assert progress[-1].outputs[0].name == output


def test_a_watch_hears_progress_climb(sims, owner: Account):
    """A run of a second or more (the 50-input portfolio): a watch opened after its creation
    hears progress at every chunk, or at least every tick, until the end."""
    portfolio = sims.CreateModel(
        pb.CreateModelRequest(display_name="watched", workbook=workbook_bytes(models.portfolio())),
        metadata=owner.metadata,
        timeout=60,
    )
    created = sims.CreateSimulation(
        pb.CreateSimulationRequest(model_id=portfolio.id, trials=1_000_000, seed=11),
        metadata=owner.metadata,
        timeout=30,
    )
    watch = pb.WatchSimulationRequest(simulation_id=created.id)
    events = list(sims.WatchSimulation(watch, metadata=owner.metadata, timeout=120))
    assert events[-1].simulation.state == State.STATE_SUCCEEDED
    progress = [e.progress for e in events if e.WhichOneof("event") == "progress"]
    if progress or _open_while_running(events) >= 2 * TICK_SECONDS:
        _climbs_to(progress, 1_000_000, portfolio.outputs[0].name)


def test_identical_request_is_served_from_cache(sims, owner: Account, model, finished):
    created, _ = finished
    again = sims.CreateSimulation(
        pb.CreateSimulationRequest(model_id=model.id, trials=WATCHED_TRIALS, seed=7),
        metadata=owner.metadata,
        timeout=30,
    )
    assert again.cached and again.state == State.STATE_SUCCEEDED and again.id != created.id
    first = sims.GetResults(pb.GetResultsRequest(simulation_id=created.id), metadata=owner.metadata)
    cached = sims.GetResults(pb.GetResultsRequest(simulation_id=again.id), metadata=owner.metadata)
    assert cached.outputs == first.outputs


def test_create_simulation_is_idempotent(sims, owner: Account, model):
    request = pb.CreateSimulationRequest(
        model_id=model.id, trials=1000, seed=1, request_id=str(uuid.uuid4()), bypass_cache=True
    )
    first = sims.CreateSimulation(request, metadata=owner.metadata, timeout=30)
    second = sims.CreateSimulation(request, metadata=owner.metadata, timeout=30)
    assert first.id == second.id
    listed = sims.ListSimulations(
        pb.ListSimulationsRequest(page_size=1000), metadata=owner.metadata
    )
    assert [s.id for s in listed.simulations].count(first.id) == 1
    # the same key for another request: refused, naming the key (AIP-155)
    other = pb.CreateSimulationRequest()
    other.CopyFrom(request)
    other.trials = 2000
    model_request = pb.CreateModelRequest(
        display_name="first", workbook=workbook_bytes(models.small()), request_id=str(uuid.uuid4())
    )
    sims.CreateModel(model_request, metadata=owner.metadata, timeout=60)
    renamed = pb.CreateModelRequest()
    renamed.CopyFrom(model_request)
    renamed.display_name = "second"
    for call, different in ((sims.CreateSimulation, other), (sims.CreateModel, renamed)):
        with pytest.raises(grpc.RpcError) as refused:
            call(different, metadata=owner.metadata, timeout=60)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        (bad,) = details(refused.value, error_details_pb2.BadRequest)
        assert bad.field_violations[0].field == "request_id"


def test_cancel_and_delete_model_follow_the_contract(sims, owner: Account):
    """Cancelling a finished simulation changes nothing and returns it; a model cannot be
    deleted while one of its simulations is queued or running."""
    portfolio = sims.CreateModel(
        pb.CreateModelRequest(
            display_name="portfolio", workbook=workbook_bytes(models.portfolio())
        ),
        metadata=owner.metadata,
        timeout=60,
    )
    created = sims.CreateSimulation(
        pb.CreateSimulationRequest(model_id=portfolio.id, trials=1_000_000, seed=3),
        metadata=owner.metadata,
    )
    delete = pb.DeleteModelRequest(model_id=portfolio.id)
    with pytest.raises(grpc.RpcError) as error:
        sims.DeleteModel(delete, metadata=owner.metadata)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "cancel them first" in error.value.details()
    cancel = pb.CancelSimulationRequest(simulation_id=created.id)
    cancelled = sims.CancelSimulation(cancel, metadata=owner.metadata)
    assert cancelled.state == State.STATE_CANCELLED and cancelled.state_reason
    again = sims.CancelSimulation(cancel, metadata=owner.metadata)
    assert again == cancelled  # finished: nothing changed
    sims.DeleteModel(delete, metadata=owner.metadata)
    with pytest.raises(grpc.RpcError) as error:
        sims.GetModel(pb.GetModelRequest(model_id=portfolio.id), metadata=owner.metadata)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as error:
        sims.CreateSimulation(
            pb.CreateSimulationRequest(model_id=portfolio.id, trials=1000, seed=3),
            metadata=owner.metadata,
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    finished = sims.GetSimulation(
        pb.GetSimulationRequest(simulation_id=created.id), metadata=owner.metadata
    )
    assert finished.model_id == portfolio.id  # simulations keep their deleted model


def test_an_unset_seed_is_the_users_default_seed_else_random(
    sims, identity, owner: Account, model: pb.Model
):
    def seed_of_a_new_simulation() -> int:
        created = sims.CreateSimulation(
            pb.CreateSimulationRequest(model_id=model.id, trials=1000, bypass_cache=True),
            metadata=owner.metadata,
            timeout=30,
        )
        return created.seed

    random_seeds = {seed_of_a_new_simulation() for _ in range(2)}
    assert len(random_seeds) == 2  # no preference: a fresh random seed each time
    user = identity_pb2.User(
        id=owner.user_id, preferences=identity_pb2.Preferences(default_seed=424242)
    )
    identity.UpdateUser(
        identity_pb2.UpdateUserRequest(
            user=user, update_mask=field_mask_pb2.FieldMask(paths=["preferences.default_seed"])
        ),
        metadata=owner.metadata,
    )
    try:
        assert seed_of_a_new_simulation() == 424242
        explicit = sims.CreateSimulation(
            pb.CreateSimulationRequest(model_id=model.id, trials=1000, seed=5),
            metadata=owner.metadata,
            timeout=30,
        )
        assert explicit.seed == 5  # a seed in the request always wins
    finally:
        identity.UpdateUser(
            identity_pb2.UpdateUserRequest(
                user=identity_pb2.User(id=owner.user_id),
                update_mask=field_mask_pb2.FieldMask(paths=["preferences.default_seed"]),
            ),
            metadata=owner.metadata,
        )


def test_quota_names_the_limit(sims, owner: Account, model):
    with pytest.raises(grpc.RpcError) as error:
        sims.CreateSimulation(
            pb.CreateSimulationRequest(model_id=model.id, trials=10**9), metadata=owner.metadata
        )
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    (failure,) = details(error.value, error_details_pb2.QuotaFailure)
    assert failure.violations[0].quota_id == "trials_per_simulation"


def test_queue_status_shows_the_worker(sims, owner: Account):
    status = sims.GetQueueStatus(pb.GetQueueStatusRequest(), metadata=owner.metadata)
    assert status.workers and status.workers[0].backend in (
        pb.BACKEND_CPU,
        pb.BACKEND_GPU,
        pb.BACKEND_NATIVE,
    )


def test_queue_status_hides_other_tenants_simulation_ids(sims, identity, stranger: Account):
    """While a tenant's simulation runs, its owner sees its id on the worker; others do not."""
    owner = register(identity, "queue-owner")
    book = sims.CreateModel(
        pb.CreateModelRequest(
            # 50 inputs: a run long enough to be seen on a worker between two polls (a
            # million trials of the 3-input model can end in a tenth of a second)
            display_name="portfolio",
            workbook=workbook_bytes(models.portfolio()),
            request_id=str(uuid.uuid4()),
        ),
        metadata=owner.metadata,
        timeout=60,
    )
    running = sims.CreateSimulation(
        pb.CreateSimulationRequest(
            model_id=book.id,
            trials=1_000_000,
            seed=3,
            request_id=str(uuid.uuid4()),
            bypass_cache=True,
        ),
        metadata=owner.metadata,
        timeout=30,
    )
    seen_by_owner = seen_by_stranger = False
    for _ in range(2000):  # bounded: the run lasts well under a minute
        ids = {
            w.current_simulation_id
            for w in sims.GetQueueStatus(
                pb.GetQueueStatusRequest(), metadata=owner.metadata
            ).workers
        }
        if running.id in ids:
            seen_by_owner = True
            others = {
                w.current_simulation_id
                for w in sims.GetQueueStatus(
                    pb.GetQueueStatusRequest(), metadata=stranger.metadata
                ).workers
            }
            seen_by_stranger |= running.id in others
        state = sims.GetSimulation(
            pb.GetSimulationRequest(simulation_id=running.id), metadata=owner.metadata
        ).state
        if state in (pb.Simulation.STATE_SUCCEEDED, pb.Simulation.STATE_FAILED):
            break
    assert seen_by_owner, "the owner never saw its running simulation on a worker"
    assert not seen_by_stranger


def test_other_tenant_gets_not_found_everywhere(sims, stranger: Account, model, finished):
    created, _ = finished
    calls = [
        (sims.GetModel, pb.GetModelRequest(model_id=model.id)),
        (sims.DeleteModel, pb.DeleteModelRequest(model_id=model.id)),
        (sims.CreateSimulation, pb.CreateSimulationRequest(model_id=model.id, trials=10)),
        (sims.GetSimulation, pb.GetSimulationRequest(simulation_id=created.id)),
        (sims.CancelSimulation, pb.CancelSimulationRequest(simulation_id=created.id)),
        (sims.GetResults, pb.GetResultsRequest(simulation_id=created.id)),
    ]
    for call, request in calls:
        with pytest.raises(grpc.RpcError) as error:
            call(request, metadata=stranger.metadata, timeout=30)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND, call
    with pytest.raises(grpc.RpcError) as error:
        watch = pb.WatchSimulationRequest(simulation_id=created.id)
        list(sims.WatchSimulation(watch, metadata=stranger.metadata, timeout=30))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    mine = pb.ListModelsRequest(page_size=100)
    assert not sims.ListModels(mine, metadata=stranger.metadata).models
    assert not sims.ListSimulations(
        pb.ListSimulationsRequest(), metadata=stranger.metadata
    ).simulations


async def test_two_hundred_concurrent_watchers(mesh: Mesh, sims, owner: Account, model):
    created = sims.CreateSimulation(
        pb.CreateSimulationRequest(
            model_id=model.id,
            trials=1_000_000,
            seed=99,
            bypass_cache=True,
        ),
        metadata=owner.metadata,
    )
    pki = mesh.pki
    credentials = grpc.ssl_channel_credentials(
        (pki / "ca.crt").read_bytes(),
        (pki / "client.key").read_bytes(),
        (pki / "client.crt").read_bytes(),
    )
    async with grpc.aio.secure_channel(mesh.edge_address, credentials) as channel:
        stub = simulation_pb2_grpc.SimulationServiceStub(channel)

        async def watch() -> list:
            call = stub.WatchSimulation(
                pb.WatchSimulationRequest(simulation_id=created.id),
                metadata=owner.metadata,
                timeout=300,
            )
            return [event async for event in call]

        seen = await asyncio.gather(*(watch() for _ in range(200)))
    for events in seen:
        assert events[-1].simulation.state == State.STATE_SUCCEEDED
    final = sims.GetSimulation(
        pb.GetSimulationRequest(simulation_id=created.id), metadata=owner.metadata
    )
    assert final.trials_done == 1_000_000


def test_model_from_a_stored_file(edge: grpc.Channel, sims, owner: Account, stranger: Account):
    from alea.files.v1 import files_pb2, files_pb2_grpc

    data = workbook_bytes(models.small())

    def messages():
        yield files_pb2.UploadRequest(
            metadata=files_pb2.FileMetadata(file_name="small.xlsx", size_bytes=len(data))
        )
        yield files_pb2.UploadRequest(chunk=data)

    stored = files_pb2_grpc.FilesServiceStub(edge).Upload(
        messages(), metadata=owner.metadata, timeout=60
    )
    model = sims.CreateModel(
        pb.CreateModelRequest(display_name="from file", file_id=stored.id),
        metadata=owner.metadata,
        timeout=60,
    )
    assert model.file_id == stored.id and [o.name for o in model.outputs] == ["Profit"]
    with pytest.raises(grpc.RpcError) as error:  # another tenant's file does not exist for them
        sims.CreateModel(
            pb.CreateModelRequest(display_name="theirs", file_id=stored.id),
            metadata=stranger.metadata,
            timeout=60,
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_stored_file_over_the_workbook_limit_is_refused_naming_the_file(
    edge: grpc.Channel, sims, owner: Account
):
    from alea.files.v1 import files_pb2, files_pb2_grpc

    from services.engine.guard import MAX_WORKBOOK_BYTES

    size = MAX_WORKBOOK_BYTES + 1

    def messages():
        yield files_pb2.UploadRequest(
            metadata=files_pb2.FileMetadata(file_name="large.csv", size_bytes=size)
        )
        for _ in range(MAX_WORKBOOK_BYTES // (1 << 20)):
            yield files_pb2.UploadRequest(chunk=b"1\n" * (1 << 19))
        yield files_pb2.UploadRequest(chunk=b"\n")  # one byte past the limit

    stored = files_pb2_grpc.FilesServiceStub(edge).Upload(
        messages(), metadata=owner.metadata, timeout=120
    )
    assert stored.size_bytes == size
    with pytest.raises(grpc.RpcError) as error:
        sims.CreateModel(
            pb.CreateModelRequest(display_name="large", file_id=stored.id),
            metadata=owner.metadata,
            timeout=60,
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "file_id" in error.value.details(), error.value.details()
