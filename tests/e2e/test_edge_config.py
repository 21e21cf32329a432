"""The rendered edge configuration, read back as data: routes follow the contracts.

No processes: the behaviour these settings produce is exercised through a running Envoy in
the other tests of this folder; this checks the choices that are hard to provoke there
(retries only for reads, unlimited streams, every public RPC routed, no internal one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alea.access.v1 import access_pb2
from google.protobuf import descriptor_pb2
from ruamel.yaml import YAML

from services.cli.mesh_envoy import DESCRIPTOR_SET, EdgeSettings, render, upstream
from services.runtime.config import DEFAULT_PORTS


def _config(tmp_path: Path) -> dict[str, Any]:
    settings = EdgeSettings(edge_port=8443, admin_port=9901, pki=tmp_path, access_log=tmp_path)
    upstreams = [upstream(name, port) for name, port in DEFAULT_PORTS.items()]
    loaded: dict[str, Any] = YAML(typ="safe").load(
        render(settings, upstreams, tmp_path / "envoy.yaml").read_text()
    )
    return loaded


def _methods() -> dict[str, descriptor_pb2.MethodDescriptorProto]:
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes()).file
    return {
        f"/{f.package}.{s.name}/{m.name}": m
        for f in files
        if f.package.startswith("alea.") and f.package != "alea.access.v1"
        for s in f.service
        for m in s.method
    }


def _routes(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    routes = hcm["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    return {r["match"]["path"]: r for r in routes if "path" in r["match"]}


def test_every_public_rpc_is_routed_and_no_internal_one(tmp_path: Path) -> None:
    routes = _routes(_config(tmp_path))
    for path, method in _methods().items():
        internal = method.options.Extensions[access_pb2.rule].internal  # type: ignore[index]
        assert (path in routes) is not internal, path
        if not internal:
            assert routes[path]["route"]["cluster"] == path.split(".")[1], path


def test_only_reads_are_retried_and_only_streams_are_unlimited(tmp_path: Path) -> None:
    methods = _methods()
    for path, route in _routes(_config(tmp_path)).items():
        method, action = methods[path], route["route"]
        streaming = method.server_streaming or method.client_streaming
        assert (action["timeout"] == "0s") is streaming, path
        if "retry_policy" in action:
            assert method.name.startswith(("Get", "List", "Search", "Verify")), path
        if method.name.startswith(("Create", "Update", "Delete", "Upload", "Register")):
            assert "retry_policy" not in action, path


def test_edge_demands_client_certificates_and_enforces_its_rate_limit(tmp_path: Path) -> None:
    config = _config(tmp_path)
    chain = config["static_resources"]["listeners"][0]["filter_chains"][0]
    assert chain["transport_socket"]["typed_config"]["require_client_certificate"] is True
    filters = chain["filters"][0]["typed_config"]["http_filters"]
    (limit,) = [f for f in filters if f["name"] == "envoy.filters.http.local_ratelimit"]
    for knob in ("filter_enabled", "filter_enforced"):
        assert limit["typed_config"][knob]["default_value"]["numerator"] == 100
    for cluster in config["static_resources"]["clusters"]:
        tls = cluster["transport_socket"]["typed_config"]["common_tls_context"]
        (san,) = tls["validation_context"]["match_typed_subject_alt_names"]
        assert san["matcher"]["exact"] == f"spiffe://alea/{cluster['name']}"
