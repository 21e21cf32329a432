"""gRPC server reflection, v1 and v1alpha, for one service and for the edge in front of the mesh.

grpcio-reflection implements only ``grpc.reflection.v1alpha``. ``grpc.reflection.v1`` has the
same messages in another package, so they are identical on the wire: one servicer answers
both, and the v1 file (v1alpha's, renamed) joins the descriptor pool so clients can describe it.

A direct caller sees the services of this process. Through the edge the answer is the edge's:
Envoy names every service it routes in ``x-alea-edge-services`` on its reflection route
(overwriting anything a client sent) and sends the stream to any healthy service, which then
answers for all of them — every process can load the descriptors of the whole contract set.
The header counts only when the mTLS peer is the edge.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import AsyncIterator, Sequence

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha._async import ReflectionServicer

from services.runtime.access import peer_identity
from services.runtime.context import ServicerContext

__all__ = ["EDGE_SERVICES_HEADER", "REFLECTION_SERVICES", "add_reflection"]

EDGE_SERVICES_HEADER = "x-alea-edge-services"
_V1 = "grpc.reflection.v1"
REFLECTION_SERVICES = (
    f"{_V1}.ServerReflection",
    reflection_pb2.DESCRIPTOR.package + ".ServerReflection",
)


@functools.cache
def _register_v1() -> None:
    """Add ``grpc/reflection/v1/reflection.proto`` to the default pool, made from v1alpha's."""
    alpha = reflection_pb2.DESCRIPTOR.package
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name, proto.package = "grpc/reflection/v1/reflection.proto", _V1
    proto.ClearField("options")
    for message in proto.message_type:
        for field in message.field:
            if field.HasField("type_name"):
                field.type_name = field.type_name.replace(f".{alpha}.", f".{_V1}.")
    for method in proto.service[0].method:
        method.input_type = method.input_type.replace(f".{alpha}.", f".{_V1}.")
        method.output_type = method.output_type.replace(f".{alpha}.", f".{_V1}.")
    descriptor_pool.Default().AddSerializedFile(proto.SerializeToString())


@functools.cache
def _load_contracts() -> None:
    """Import every generated ``alea`` module, so the pool describes every service."""
    import alea

    for module in pkgutil.walk_packages(alea.__path__, "alea."):
        if module.name.endswith("_pb2"):
            importlib.import_module(module.name)


@functools.cache
def _edge_view(names: str) -> ReflectionServicer:
    _load_contracts()
    return ReflectionServicer([*names.split(","), *REFLECTION_SERVICES])


# grpcio-reflection ships without type information: its servicer base class is Any.
class _Reflection(reflection_pb2_grpc.ServerReflectionServicer):  # type: ignore[misc]
    """Reflection of this process's services, or of the edge's for the edge."""

    def __init__(self, own_services: Sequence[str]) -> None:
        self._own = ReflectionServicer([*own_services, *REFLECTION_SERVICES])

    async def ServerReflectionInfo(
        self,
        request_iterator: AsyncIterator[reflection_pb2.ServerReflectionRequest],
        context: ServicerContext,
    ) -> AsyncIterator[reflection_pb2.ServerReflectionResponse]:
        async for response in self._view(context).ServerReflectionInfo(request_iterator, context):
            yield response

    def _view(self, context: ServicerContext) -> ReflectionServicer:
        edge_names = dict(context.invocation_metadata() or ()).get(EDGE_SERVICES_HEADER)
        if edge_names and peer_identity(context.auth_context()) == "edge":
            return _edge_view(edge_names)
        return self._own


def add_reflection(server: grpc.aio.Server, own_services: Sequence[str]) -> None:
    """Serve reflection v1 and v1alpha on ``server`` for ``own_services`` (and the edge)."""
    _register_v1()
    servicer = _Reflection(own_services)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                f"{_V1}.ServerReflection", {"ServerReflectionInfo": v1}
            ),
        )
    )
