"""Every RPC declares who may call it; user RPCs have REST mappings; everything is documented."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from alea.access.v1 import access_pb2
from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor

from services.runtime.access import DEV_CLIENT, PEERS, admitted_peers
from tests.contracts.protos import SERVICES, descriptor_set, methods, services

METHODS = sorted(methods(), key=lambda m: m.full_name)
# Credentials are unavailable on these by design: signing up, signing in, key discovery.
PUBLIC = {
    "alea.identity.v1.IdentityService.Register",
    "alea.identity.v1.IdentityService.Login",
    "alea.identity.v1.IdentityService.Refresh",
    "alea.identity.v1.IdentityService.Logout",
    "alea.identity.v1.IdentityService.GetJwks",
}


def rule(method: MethodDescriptor) -> access_pb2.AccessRule:
    # protoc's stubs type extensions as plain FieldDescriptors, which types-protobuf rejects.
    return method.GetOptions().Extensions[access_pb2.rule]  # type: ignore[index]


def has_http(method: MethodDescriptor) -> bool:
    return method.GetOptions().HasExtension(annotations_pb2.http)


# Served by the shared runtime on every service rather than by a service of its own.
RUNTIME_PACKAGES = ("status",)


def test_one_service_per_package() -> None:
    packages = sorted(s.full_name.split(".")[1] for s in services())
    assert packages == sorted((*SERVICES, *RUNTIME_PACKAGES))


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.full_name)
def test_rpc_declares_exactly_one_kind_of_access(method: MethodDescriptor) -> None:
    declared = method.GetOptions().HasExtension(access_pb2.rule)  # type: ignore[arg-type]
    assert declared, "no (alea.access.v1.rule)"
    r = rule(method)
    kinds = [r.public, r.internal, r.role != access_pb2.ROLE_UNSPECIFIED]
    assert kinds.count(True) == 1, f"public/internal/role must be exactly one: {r}"
    assert set(r.peers) <= set(SERVICES), f"unknown peers {set(r.peers) - set(SERVICES)}"
    assert not (r.public and r.peers), "a public RPC needs no peers"


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.full_name)
def test_the_mtls_peer_table_admits_every_peer_a_rule_names(method: MethodDescriptor) -> None:
    # A peer a rule names must get past the table; an internal rule naming none admits
    # every service of the table's row. A runtime package is served by every service.
    package = method.full_name.split(".")[1]
    named = set(rule(method).peers)
    for service in SERVICES if package in RUNTIME_PACKAGES else (package,):
        assert named <= PEERS[service], f"add {named - PEERS[service]} to PEERS[{service!r}]"
        assert DEV_CLIENT not in admitted_peers(service)  # the client certificate: edge only


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.full_name)
def test_user_rpcs_have_rest_and_internal_rpcs_have_none(method: MethodDescriptor) -> None:
    assert has_http(method) != rule(method).internal


def bindings(method: MethodDescriptor) -> Iterator[tuple[str, str, http_pb2.HttpRule]]:
    """(verb, path template, rule) of the RPC's http rule and its additional bindings."""
    if not has_http(method):
        return
    primary = method.GetOptions().Extensions[annotations_pb2.http]
    for binding in (primary, *primary.additional_bindings):
        verb = binding.WhichOneof("pattern")
        assert verb is not None, f"{method.full_name}: http rule without a pattern"
        path = binding.custom.path if verb == "custom" else getattr(binding, verb)
        yield verb, path, binding


def field(message: Descriptor, dotted: str) -> FieldDescriptor | None:
    """The field a dotted path names inside ``message``, or None."""
    *parents, last = dotted.split(".")
    for name in parents:
        parent = message.fields_by_name.get(name)
        if parent is None or parent.message_type is None:
            return None
        message = parent.message_type
    return message.fields_by_name.get(last)


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.full_name)
def test_http_templates_and_bodies_name_request_fields(method: MethodDescriptor) -> None:
    for verb, path, binding in bindings(method):
        assert path.startswith("/"), path
        for variable in re.findall(r"\{([^}=]+)", path):
            target = field(method.input_type, variable)
            assert target is not None, f"{path}: no field {variable}"
            assert target.type == FieldDescriptor.TYPE_STRING, f"{path}: {variable} not a string"
        if verb in ("get", "delete"):
            assert not binding.body, f"{verb} {path} cannot carry a body"
        elif binding.body != "*":
            assert binding.body in method.input_type.fields_by_name, f"body {binding.body}"


def test_no_two_rpcs_share_a_rest_route() -> None:
    routes = [(verb, path) for m in METHODS for verb, path, _ in bindings(m)]
    assert len(routes) == len(set(routes))


def test_public_rpcs_are_exactly_the_sign_in_ones() -> None:
    assert {m.full_name for m in METHODS if rule(m).public} == PUBLIC


def test_rule_of_a_known_rpc_reads_back() -> None:
    by_name = {m.full_name: rule(m) for m in METHODS}
    assert by_name["alea.identity.v1.IdentityService.CreateUser"].role == access_pb2.ROLE_ADMIN
    assert by_name["alea.identity.v1.IdentityService.VerifyApiKey"].internal
    quota = by_name["alea.identity.v1.IdentityService.GetQuota"]
    assert quota.role == access_pb2.ROLE_VIEWER
    assert list(quota.peers) == ["files", "simulation"]


def test_streaming_rpcs_have_rest_forms() -> None:
    by_name = {m.full_name: m for m in METHODS}
    watch = by_name["alea.simulation.v1.SimulationService.WatchSimulation"]
    assert watch.server_streaming
    assert watch.GetOptions().Extensions[annotations_pb2.http].get.endswith(":watch")
    download = by_name["alea.files.v1.FilesService.Download"]
    assert download.output_type.full_name == "google.api.HttpBody"
    upload_body = by_name["alea.files.v1.FilesService.UploadBody"]
    assert upload_body.GetOptions().Extensions[annotations_pb2.http].body == "body"


# SourceCodeInfo paths: FileDescriptorProto field numbers, then the element's index.
_MESSAGE, _ENUM, _SERVICE = 4, 5, 6
_FIELD, _NESTED_MESSAGE, _NESTED_ENUM, _ONEOF = 2, 3, 4, 8
_ENUM_VALUE, _METHOD = 2, 2


def _elements(proto, path: tuple[int, ...], name: str, kind: int):
    """Yield (path, name) of a message or enum and everything declared inside it."""
    yield path, name
    if kind == _ENUM:
        for i, value in enumerate(proto.value):
            yield (*path, _ENUM_VALUE, i), f"{name}.{value.name}"
        return
    for i, field in enumerate(proto.field):
        yield (*path, _FIELD, i), f"{name}.{field.name}"
    for i, oneof in enumerate(proto.oneof_decl):
        if not any(f.proto3_optional for f in proto.field if f.oneof_index == i):
            yield (*path, _ONEOF, i), f"{name}.{oneof.name}"
    for i, nested in enumerate(proto.nested_type):
        if not nested.options.map_entry:
            yield from _elements(nested, (*path, _NESTED_MESSAGE, i), nested.name, _MESSAGE)
    for i, nested in enumerate(proto.enum_type):
        yield from _elements(nested, (*path, _NESTED_ENUM, i), nested.name, _ENUM)


def undocumented() -> list[str]:
    missing = []
    for file in descriptor_set().file:
        if not file.name.startswith("alea/"):
            continue
        comments = {
            tuple(loc.path): loc.leading_comments.strip() for loc in file.source_code_info.location
        }
        elements = []
        for i, message in enumerate(file.message_type):
            elements += _elements(message, (_MESSAGE, i), message.name, _MESSAGE)
        for i, enum in enumerate(file.enum_type):
            elements += _elements(enum, (_ENUM, i), enum.name, _ENUM)
        for i, service in enumerate(file.service):
            elements.append(((_SERVICE, i), service.name))
            for j, method in enumerate(service.method):
                elements.append(((_SERVICE, i, _METHOD, j), f"{service.name}.{method.name}"))
        missing += [f"{file.name}: {name}" for path, name in elements if not comments.get(path)]
    return missing


def test_every_element_has_a_leading_comment() -> None:
    assert undocumented() == []
