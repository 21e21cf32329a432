"""The gRPC servicer: request → domain call → response, nothing else."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from alea.simulation.v1 import fitting_pb2, simulation_pb2_grpc
from alea.simulation.v1 import simulation_pb2 as pb
from google.api import httpbody_pb2
from google.protobuf import empty_pb2

from services.engine.outcome import RunOptions
from services.runtime.context import ServicerContext, current_principal, forwarded_credentials
from services.runtime.convert import timestamp_of_seconds
from services.runtime.listing import ListRequest
from services.simulation import convert
from services.simulation.domain import ModelSource, SimulationRequest, Simulations
from services.simulation.fitting import FitRequest, Fitting
from services.simulation.hub import Progress
from services.simulation.store import SimulationRecord


def _list_request(request: pb.ListModelsRequest | pb.ListSimulationsRequest) -> ListRequest:
    return ListRequest(request.page_size, request.page_token, request.filter, request.order_by)


class SimulationServicer(simulation_pb2_grpc.SimulationServiceServicer):
    """SimulationService over :class:`Simulations`; the runtime interceptor maps errors."""

    def __init__(self, domain: Simulations, fitting: Fitting | None = None) -> None:
        self.domain = domain
        self.fitting = fitting or Fitting(None)
        self._last_event: tuple[object, pb.SimulationEvent] | None = None

    async def CreateModel(
        self, request: pb.CreateModelRequest, context: ServicerContext
    ) -> pb.Model:
        principal = current_principal()
        which = request.WhichOneof("source")
        if which == "workbook":
            source = ModelSource(workbook=request.workbook)
        elif which == "file_id":
            credentials = forwarded_credentials(context)
            source = ModelSource(file_id=request.file_id, credentials=credentials)
        else:
            spec_bytes = request.spec.SerializeToString(deterministic=True)
            source = ModelSource(spec=request.spec, spec_bytes=spec_bytes)
        record = await self.domain.create_model(
            principal.tenant_id,
            principal.user_id,
            request.display_name,
            source,
            request.request_id,
        )
        return convert.model(record)

    async def GetModel(self, request: pb.GetModelRequest, context: ServicerContext) -> pb.Model:
        tenant = current_principal().tenant_id
        return convert.model(await self.domain.get_model(tenant, request.model_id))

    async def ListModels(
        self, request: pb.ListModelsRequest, context: ServicerContext
    ) -> pb.ListModelsResponse:
        tenant = current_principal().tenant_id
        page = await self.domain.list_models(tenant, _list_request(request))
        return pb.ListModelsResponse(
            models=[convert.model(m) for m in page.items], next_page_token=page.next_page_token
        )

    async def DeleteModel(
        self, request: pb.DeleteModelRequest, context: ServicerContext
    ) -> empty_pb2.Empty:
        await self.domain.delete_model(current_principal().tenant_id, request.model_id)
        return empty_pb2.Empty()

    async def CreateSimulation(
        self, request: pb.CreateSimulationRequest, context: ServicerContext
    ) -> pb.Simulation:
        principal = current_principal()
        wanted = SimulationRequest(
            model_id=request.model_id,
            trials=request.trials,
            seed=request.seed if request.HasField("seed") else None,
            sampling=convert.SAMPLING_FROM_PROTO[request.sampling],
            backend_preference=convert.PREFERENCE_FROM_PROTO[request.backend],
            priority=request.priority,
            request_id=request.request_id,
            bypass_cache=request.bypass_cache,
            options=RunOptions(
                vary_seeds=request.vary_simulation_seeds,
                scenarios=tuple(convert.scenario(t) for t in request.scenarios),
                convergence=(
                    convert.convergence_settings(request.convergence, request.trials)
                    if request.HasField("convergence")
                    else None
                ),
            ),
            credentials=forwarded_credentials(context),
        )
        record = await self.domain.create_simulation(principal.tenant_id, principal.user_id, wanted)
        return convert.simulation(record)

    async def GetSimulation(
        self, request: pb.GetSimulationRequest, context: ServicerContext
    ) -> pb.Simulation:
        tenant = current_principal().tenant_id
        return convert.simulation(await self.domain.get_simulation(tenant, request.simulation_id))

    async def ListSimulations(
        self, request: pb.ListSimulationsRequest, context: ServicerContext
    ) -> pb.ListSimulationsResponse:
        tenant = current_principal().tenant_id
        page = await self.domain.list_simulations(tenant, _list_request(request))
        return pb.ListSimulationsResponse(
            simulations=[convert.simulation(s) for s in page.items],
            next_page_token=page.next_page_token,
        )

    async def CancelSimulation(
        self, request: pb.CancelSimulationRequest, context: ServicerContext
    ) -> pb.Simulation:
        tenant = current_principal().tenant_id
        record = await self.domain.cancel_simulation(tenant, request.simulation_id)
        return convert.simulation(record)

    async def WatchSimulation(
        self, request: pb.WatchSimulationRequest, context: ServicerContext
    ) -> AsyncIterator[pb.SimulationEvent]:
        tenant = current_principal().tenant_id
        async for event in self.domain.watch(tenant, request.simulation_id):
            yield self._event_message(event)

    def _event_message(self, event: Progress | SimulationRecord) -> pb.SimulationEvent:
        """The message of an event, converted once however many watchers receive it."""
        if self._last_event is not None and self._last_event[0] is event:
            return self._last_event[1]
        stamp = timestamp_of_seconds(time.time())
        if isinstance(event, Progress):
            message = pb.SimulationEvent(event_time=stamp, progress=convert.progress(event))
        else:
            message = pb.SimulationEvent(event_time=stamp, simulation=convert.simulation(event))
        self._last_event = (event, message)
        return message

    async def GetResults(
        self, request: pb.GetResultsRequest, context: ServicerContext
    ) -> pb.Results:
        tenant = current_principal().tenant_id
        record, data = await self.domain.get_results(tenant, request.simulation_id)
        addresses = await self.domain.output_addresses(tenant, record.model_id)
        return convert.results(record, data, addresses)

    async def GetSimulationSipmath(
        self, request: pb.GetSimulationSipmathRequest, context: ServicerContext
    ) -> httpbody_pb2.HttpBody:
        tenant = current_principal().tenant_id
        terms = request.terms if request.HasField("terms") else None
        library = await self.domain.sipmath(tenant, request.simulation_id, terms)
        name = f"alea-sipmath-{request.simulation_id}.json"
        await context.send_initial_metadata(
            (("content-disposition", f'attachment; filename="{name}"'),)
        )
        return httpbody_pb2.HttpBody(content_type="application/json", data=library)

    async def GetQueueStatus(
        self, request: pb.GetQueueStatusRequest, context: ServicerContext
    ) -> pb.QueueStatus:
        caller = current_principal()
        counts, workers = await self.domain.queue_status()
        devices = [
            pb.GpuDevice(
                worker_id=w["id"],
                name=d.get("name", ""),
                memory_bytes=d.get("memory_bytes", 0),
                allocated_bytes=d.get("memory_bytes", 0) if w["current_job"] else 0,
            )
            for w in workers
            for d in w["devices"]
        ]
        return pb.QueueStatus(
            queued=counts.get("QUEUED", 0),
            running=counts.get("RUNNING", 0),
            workers=[
                pb.Worker(
                    id=w["id"],
                    backend=convert.BACKEND_TO_PROTO.get(w["backend"], pb.BACKEND_UNSPECIFIED),
                    # Another tenant's simulation id is not the caller's to see; a service
                    # peer (admin's overview) sees every id.
                    current_simulation_id=w["current_job"] or ""
                    if caller.is_service or w["job_tenant"] == caller.tenant_id
                    else "",
                    heartbeat_time=timestamp_of_seconds(w["heartbeat"]),
                )
                for w in workers
            ],
            gpu_devices=devices,
        )

    async def FitDistribution(
        self, request: fitting_pb2.FitDistributionRequest, context: ServicerContext
    ) -> fitting_pb2.FitDistributionResponse:
        wanted = FitRequest(
            file_id=request.file_id,
            values=tuple(request.values),
            column_name=request.column_name,
            column_index=request.column_index,
            sheet=request.sheet,
            kind=convert.FIT_KIND_FROM_PROTO[request.kind],
            replicates=request.bootstrap_replicates
            if request.HasField("bootstrap_replicates")
            else None,
            seed=request.seed,
            credentials=forwarded_credentials(context),
        )
        column, report = await self.fitting.fit(wanted)
        return convert.fit_response(column, report)
