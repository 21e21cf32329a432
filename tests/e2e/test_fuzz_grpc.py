"""Hypothesis over native gRPC: every routed RPC of every running service, through the edge.

Requests are generated from each request message's descriptor: every field drawn from its
type (odd but valid values: empty, huge and non-ASCII strings, extreme numbers, NaN,
unknown enum numbers, nested messages), then sent as they are or spoiled on the wire:
invalid UTF-8 in a string field, a field with the wrong wire type, random bytes, a 4 MiB
string, 150 levels of nesting. Each call carries a tenant admin's token. Every answer must
be a deliberate status (never INTERNAL, UNKNOWN, or a deadline hit, i.e. a hang) with no
internals in its message. Fixed example counts and derandomised generation keep CI in budget.
"""

from __future__ import annotations

import math
from typing import Any

import grpc
import pytest
from alea.access.v1 import access_pb2
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.internal import encoder
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st

from services.cli.mesh_envoy import edge_rpcs
from services.cli.mesh_procs import implemented_services
from services.runtime.reflection import _load_contracts
from tests.e2e.conftest import Tenants
from tests.support.fuzz import CASES, fixed_budget, leaked
from tests.support.mesh import Mesh

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES = 20  # per RPC and database
TIMEOUT = 20  # seconds: a hang fails the case
FAILURES = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED}

_load_contracts()
POOL = descriptor_pool.Default()
FD = FieldDescriptor
_INTS = {
    FD.TYPE_INT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FD.TYPE_UINT32: (0, 2**32 - 1),
    FD.TYPE_FIXED32: (0, 2**32 - 1),
    FD.TYPE_INT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FD.TYPE_UINT64: (0, 2**64 - 1),
    FD.TYPE_FIXED64: (0, 2**64 - 1),
}
_ODD_STRINGS = ["", " ", "\x00", "é🎲", "x" * 10_000, "00000000-0000-0000-0000-000000000000"]


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type == FD.TYPE_STRING:
        return st.one_of(st.text(max_size=40), st.uuids().map(str), st.sampled_from(_ODD_STRINGS))
    if field.type == FD.TYPE_BYTES:
        return st.binary(max_size=64)
    if field.type == FD.TYPE_BOOL:
        return st.booleans()
    if field.type in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        return st.floats(width=64 if field.type == FD.TYPE_DOUBLE else 32)
    if field.type == FD.TYPE_ENUM:
        known = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(-3, 10_000))  # unknown numbers too
    low, high = _INTS[field.type]
    return st.one_of(st.integers(low, high), st.sampled_from([low, high, 0, -1 if low else 1]))


def _value(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.type == FD.TYPE_MESSAGE:
        return messages(field.message_type, depth + 1) if depth < 3 else st.none()
    return _scalar(field)


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of ``descriptor`` with any subset of fields set to drawn values."""
    optional = {}
    for field in descriptor.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key, value = field.message_type.fields
            optional[field.name] = st.dictionaries(_scalar(key), _value(value, depth), max_size=3)
        elif field.is_repeated:
            optional[field.name] = st.lists(_value(field, depth), max_size=3)
        else:
            optional[field.name] = _value(field, depth)
    return st.fixed_dictionaries({}, optional=optional).map(lambda v: _build(descriptor, v))


def _build(descriptor: Descriptor, values: dict[str, Any]) -> Message:
    message = message_factory.GetMessageClass(descriptor)()
    for name, value in values.items():
        field, target = descriptor.fields_by_name[name], getattr(message, name)
        if value is None:
            continue
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, Message):
                    target[k].CopyFrom(v)
                elif v is not None:
                    target[k] = v
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, Message):
                    target.add().CopyFrom(item)
                elif item is not None:
                    target.append(item)
        elif isinstance(value, Message):
            target.CopyFrom(value)
        elif field.type in (FD.TYPE_FLOAT,) and math.isfinite(value) and abs(value) > 3e38:
            continue
        else:
            setattr(message, name, value)
    return message


def _length_delimited(number: int, payload: bytes) -> bytes:
    return encoder.TagBytes(number, 2) + encoder._VarintBytes(len(payload)) + payload


def spoiled(descriptor: Descriptor) -> st.SearchStrategy[bytes]:
    """Bytes of a drawn message, as they are or broken on the wire in one of several ways."""
    valid = messages(descriptor).map(lambda m: m.SerializeToString())
    strings = [f for f in descriptor.fields if f.type == FD.TYPE_STRING]
    ways = [valid, st.binary(max_size=128)]
    if strings:
        field = st.sampled_from(strings)
        ways.append(  # invalid UTF-8 in a string field (the last occurrence wins)
            st.tuples(valid, field, st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"])).map(
                lambda t: t[0] + _length_delimited(t[1].number, t[2])
            )
        )
        ways.append(  # a 4 MiB string
            st.tuples(valid, field).map(
                lambda t: t[0] + _length_delimited(t[1].number, b"y" * (4 << 20))
            )
        )
        ways.append(  # a varint where a string belongs
            st.tuples(valid, field).map(lambda t: t[0] + encoder.TagBytes(t[1].number, 0) + b"\x01")
        )
    nested = b"\x08\x01"
    for _ in range(150):
        nested = _length_delimited(1, nested)
    ways.append(st.just(nested))
    return st.one_of(ways)


def _routed() -> list[tuple[str, MethodDescriptor]]:
    methods = []
    for service in implemented_services():
        _, rpcs = edge_rpcs(service)
        for rpc in rpcs:
            full = rpc.path.lstrip("/").replace("/", ".")
            methods.append((rpc.path, POOL.FindMethodByName(full)))
    return methods


METHODS = dict(_routed())


def _call(channel: grpc.Channel, path: str, method: MethodDescriptor, data: bytes, metadata):
    """Send ``data`` as the request (a one-message stream for client streams); of a server
    stream wait only for its headers (a live feed answers them and then waits for events),
    so a healthy long stream is not mistaken for a hang."""
    if method.client_streaming:
        call = channel.stream_unary(path, None, None)
        return call(iter([data]), metadata=metadata, timeout=TIMEOUT)
    if method.server_streaming:
        stream = channel.unary_stream(path, None, None)(data, metadata=metadata, timeout=TIMEOUT)
        stream.initial_metadata()
        if stream.done():
            next(stream, None)  # raises the error it ended with, if any
        stream.cancel()
        return None
    return channel.unary_unary(path, None, None)(data, metadata=metadata, timeout=TIMEOUT)


@pytest.mark.parametrize("path", sorted(METHODS))
def test_every_grpc_method_survives_generated_input(
    path: str, mesh: Mesh, edge: grpc.Channel, tenants: Tenants
) -> None:
    method = METHODS[path]
    public = method.GetOptions().Extensions[access_pb2.rule].public
    metadata = () if public else tenants.a.metadata

    @given(data=spoiled(method.input_type))
    @fixed_budget(EXAMPLES)
    def survives(data: bytes) -> None:
        CASES[f"gRPC {method.containing_service.name}"] += 1
        try:
            _call(edge, path, method, data, metadata)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.CANCELLED:  # our own cancel of a stream
                return
            assert error.code() not in FAILURES, (error.code(), error.details(), data[:200])
            assert leaked(error.details() or "") is None, error.details()

    survives()
