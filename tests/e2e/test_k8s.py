"""Kubernetes manifests: rendered with ``kubectl kustomize`` when kubectl is installed
(otherwise the base files are read as they are), then checked for what production needs:
probes, non-root read-only containers without capabilities, requests and limits, database
URLs from Secrets, a Service and ServiceAccount per workload, and GPU workers in prod.
No cluster and no network are used.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from services.cli.mesh_envoy import KUBERNETES_CONFIG, kubernetes_config
from services.runtime.config import DEFAULT_PORTS, HEALTH_PORT_OFFSET

K8S = Path(__file__).resolve().parents[2] / "k8s"
KUBECTL = shutil.which("kubectl")
TARGETS = ["base", "overlays/dev", "overlays/prod"] if KUBECTL else ["base"]


def _render(target: str) -> list[dict[str, Any]]:
    if KUBECTL:
        text = subprocess.run(
            [KUBECTL, "kustomize", str(K8S / target)],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        return [d for d in YAML(typ="safe").load_all(text) if d]
    return [
        d
        for f in sorted((K8S / target).glob("*.yaml"))
        if f.name != "kustomization.yaml"
        for d in YAML(typ="safe").load_all(f.read_text())
        if d
    ]


@pytest.fixture(scope="module", params=TARGETS)
def manifests(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return _render(request.param)


def _by_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def test_every_service_and_the_edge_are_deployed(manifests: list[dict[str, Any]]) -> None:
    deployments = _by_kind(manifests, "Deployment")
    services = _by_kind(manifests, "Service")
    accounts = _by_kind(manifests, "ServiceAccount")
    for name in [*DEFAULT_PORTS, "edge"]:
        assert name in deployments and name in services, name
    for name, deployment in deployments.items():
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] in accounts, name


def test_containers_are_locked_down_and_sized(manifests: list[dict[str, Any]]) -> None:
    for name, deployment in _by_kind(manifests, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), (name, bound)


def test_services_have_native_grpc_probes_on_the_health_port(
    manifests: list[dict[str, Any]],
) -> None:
    deployments = _by_kind(manifests, "Deployment")
    for name, port in DEFAULT_PORTS.items():
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert env["ALEA_HEALTH_PORT"]["value"] == str(port + HEALTH_PORT_OFFSET)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == port + HEALTH_PORT_OFFSET, (name, probe)
        # PostgreSQL credentials come from a Secret, never from the manifest.
        assert env["ALEA_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "alea-database"


def test_every_container_with_ports_is_probed(manifests: list[dict[str, Any]]) -> None:
    for name, deployment in _by_kind(manifests, "Deployment").items():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            if container.get("ports"):
                assert "readinessProbe" in container and "livenessProbe" in container, name


def test_prod_runs_gpu_workers_on_gpu_nodes() -> None:
    if not KUBECTL:
        pytest.skip("kubectl is not installed: overlays and components are not rendered")
    worker = _by_kind(_render("overlays/prod"), "Deployment")["simulation-gpu-worker"]
    pod = worker["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert "simulation-gpu-worker" not in _by_kind(_render("overlays/dev"), "Deployment")


def test_edge_config_is_rendered_from_the_current_template() -> None:
    assert KUBERNETES_CONFIG.read_text() == kubernetes_config(), (
        "k8s/base/edge/envoy.yaml is stale: run python -m services.cli.mesh_envoy"
    )


def test_prod_denies_ingress_except_to_the_edge_and_from_callers() -> None:
    if not KUBECTL:
        pytest.skip("kubectl is not installed: overlays and components are not rendered")
    policies = _by_kind(_render("overlays/prod"), "NetworkPolicy")
    assert policies["default-deny-ingress"]["spec"]["podSelector"] == {}
    for name, port in DEFAULT_PORTS.items():
        (rule,) = policies[f"{name}-callers"]["spec"]["ingress"]
        callers = {s["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for s in rule["from"]}
        assert "edge" in callers and rule["ports"] == [{"port": port, "protocol": "TCP"}], name
    assert "simulation" in {
        s["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for s in policies["files-callers"]["spec"]["ingress"][0]["from"]
    }
