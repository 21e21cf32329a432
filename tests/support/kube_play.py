"""Run rendered Kubernetes manifests as pods on this machine with ``podman kube play``.

There is no API server here, so podman stands in for the cluster. What podman 4.3 cannot
play is adapted, and nothing else is touched:

- Services become ``hostAliases``: every pod gets a static IP on a network of its own and
  each Service name resolves to the pod its selector picks (podman has no cluster DNS).
- A StatefulSet plays as a Deployment (its volume claims as below), and a Job
  as a Pod that restarts on failure (podman plays Pods and Deployments only).
- Secrets are podman secrets (for ``secretKeyRef``) and read-only host directories (for
  secret and projected volumes, which podman 4.3 cannot mount). Empty directories and
  volume claims are host directories of mode 1777: podman's own are root-owned 0755,
  which a non-root container cannot write, where Kubernetes' emptyDir is 0777.
- Kinds that change nothing on one machine are left out: Namespace, ServiceAccount, HPA,
  PodDisruptionBudget, NetworkPolicy, KEDA objects. Probes are left out too: podman runs
  them only under systemd, and :meth:`KubePlay.wait_ready` evaluates the gRPC and HTTP
  readiness probes itself, inside each container.
- Ports listed in ``publish`` are published on 127.0.0.1 only; no other port is declared
  (podman would publish every declared port on all addresses).

The Kubernetes objects, images, commands, environment, security contexts and mounts are
played as rendered.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import random
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

__all__ = ["CONTAINERS_CONF", "KubePlay", "podman"]

# runc (crun fails on this host's cgroups) and ulimits within the host's hard limits.
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=4096:4096"]
[engine]
runtime = "runc"
"""
_DROPPED = {
    "Namespace",
    "ServiceAccount",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
    "ScaledObject",
    "TriggerAuthentication",
    "PersistentVolumeClaim",
}


def podman(*args: str, check: bool = True, timeout: float = 300, **kwargs: Any):
    """``podman ARGS`` with the settings above (``containers.conf`` in a cache directory)."""
    conf = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "alea-build"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "containers.conf").write_text(CONTAINERS_CONF)
    env = {**os.environ, "CONTAINERS_CONF": str(conf / "containers.conf")}
    return subprocess.run(
        ["podman", *args],
        check=check,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        **kwargs,
    )


@dataclass
class KubePlay:
    """One play: its network, secrets, host directories and the adapted manifests."""

    manifests: list[dict[str, Any]]
    secrets: dict[str, dict[str, bytes]]  # Secret name -> key -> value
    workdir: Path
    images: dict[str, str] = field(default_factory=dict)  # rendered image -> local image
    publish: dict[tuple[str, int], int] = field(default_factory=dict)  # (pod, port) -> host
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    pods: dict[str, str] = field(default_factory=dict)  # workload name -> static IP
    _created_secrets: list[str] = field(default_factory=list)

    @property
    def network(self) -> str:
        return f"alea-kube-{self.run_id}"

    @property
    def file(self) -> Path:
        return self.workdir / "play.yaml"

    def start(self) -> None:
        """Create the network and secrets, write the adapted manifests, play them."""
        subnet = self._create_network()
        workloads = [self._workload(m) for m in self.manifests if m["kind"] in _WORKLOADS]
        for index, workload in enumerate(workloads):
            self.pods[workload["metadata"]["name"]] = f"{subnet}.{10 + index}"
        aliases = self._service_aliases()
        for workload in workloads:
            self._adapt_pod(_pod_spec(workload), workload["metadata"]["name"], aliases)
        others = [
            m for m in self.manifests if m["kind"] not in _DROPPED | set(_WORKLOADS) | {"Service"}
        ]
        with self.file.open("w") as out:
            YAML().dump_all([*others, *workloads], out)
        ips = [arg for ip in self.pods.values() for arg in ("--ip", ip)]
        # --replace: pods a killed earlier run left behind are replaced, not in the way.
        play = podman(
            "kube",
            "play",
            "--replace",
            "--network",
            self.network,
            *ips,
            str(self.file),
            check=False,
        )
        if play.returncode != 0:
            raise RuntimeError(f"podman kube play failed:\n{play.stdout}\n{play.stderr}")

    def stop(self) -> None:
        """Remove the pods, secrets and network (whatever was created)."""
        if self.file.exists():
            podman("kube", "down", str(self.file), check=False)
        for name in self._created_secrets:
            podman("secret", "rm", name, check=False)
        podman("network", "rm", "-f", self.network, check=False)

    def container(self, workload: str, container: str) -> str:
        """The podman name of ``container`` in ``workload``'s pod."""
        return f"{workload}-pod-0-{container}"

    def exec(self, workload: str, container: str, *argv: str, timeout: float = 30):
        return podman(
            "exec", self.container(workload, container), *argv, check=False, timeout=timeout
        )

    def logs(self, workload: str, container: str, tail: int = 40) -> str:
        out = podman("logs", "--tail", str(tail), self.container(workload, container), check=False)
        return out.stdout + out.stderr

    def wait_ready(self, timeout: float = 300) -> dict[str, float]:
        """Until every readiness probe passes, evaluated in its container; seconds to ready."""
        pending = {
            (m["metadata"]["name"], c["name"]): c["readinessProbe"]
            for m in self.manifests
            if m["kind"] in _WORKLOADS
            for c in _pod_spec(m)["containers"]
            if "readinessProbe" in c
        }
        ports = {
            (m["metadata"]["name"], c["name"]): {
                p.get("name"): p["containerPort"] for p in c.get("ports", [])
            }
            for m in self.manifests
            if m["kind"] in _WORKLOADS
            for c in _pod_spec(m)["containers"]
        }
        ready: dict[str, float] = {}
        started = time.monotonic()
        while pending and time.monotonic() - started < timeout:
            for (workload, container), probe in list(pending.items()):
                argv = _probe_argv(probe, ports[(workload, container)])
                if self.exec(workload, container, *argv).returncode == 0:
                    ready[f"{workload}/{container}"] = time.monotonic() - started
                    del pending[(workload, container)]
            time.sleep(1)
        if pending:
            details = "\n".join(
                f"--- {w}/{c} not ready:\n{self.logs(w, c)}" for w, c in sorted(pending)
            )
            raise TimeoutError(f"not ready after {timeout:.0f}s:\n{details}")
        return ready

    # -- adaptation -----------------------------------------------------------------------

    def _create_network(self) -> str:
        taken = podman("network", "ls", "--format", "{{range .Subnets}}{{.Subnet}} {{end}}").stdout
        for _ in range(100):
            subnet = f"10.{random.randint(90, 250)}.{random.randint(0, 255)}"
            if f"{subnet}.0/" not in taken:
                podman("network", "create", "--subnet", f"{subnet}.0/24", self.network)
                return subnet
        raise RuntimeError("no free 10.x.y.0/24 subnet for the play's network")

    def _workload(self, manifest: dict[str, Any]) -> dict[str, Any]:
        manifest = copy.deepcopy(manifest)
        kind = manifest["kind"]
        if kind == "StatefulSet":
            spec = manifest["spec"]
            claims = spec.pop("volumeClaimTemplates", [])
            pod = spec["template"]["spec"]
            pod.setdefault("volumes", []).extend(
                {"name": c["metadata"]["name"], "persistentVolumeClaim": {}} for c in claims
            )
            for key in ("serviceName", "podManagementPolicy", "updateStrategy"):
                spec.pop(key, None)
            manifest["kind"] = "Deployment"
        elif kind == "Job":
            template = manifest["spec"]["template"]
            name = manifest["metadata"]["name"]
            manifest = {
                "apiVersion": "v1",
                "kind": "Pod",
                # podman names a Pod as given; the Deployment naming is kept for exec/logs.
                "metadata": {"name": f"{name}-pod-0", "labels": template["metadata"]["labels"]},
                "spec": template["spec"],
            }
            manifest["metadata"]["labels"]["alea-kube-play/workload"] = name
        return manifest

    def _service_aliases(self) -> list[dict[str, Any]]:
        aliases = []
        for service in (m for m in self.manifests if m["kind"] == "Service"):
            selector = service["spec"]["selector"]
            for workload in (m for m in self.manifests if m["kind"] in _WORKLOADS):
                labels = _pod_template(workload)["metadata"]["labels"]
                if all(labels.get(k) == v for k, v in selector.items()):
                    ip = self.pods[workload["metadata"]["name"]]
                    aliases.append({"ip": ip, "hostnames": [service["metadata"]["name"]]})
        return aliases

    def _adapt_pod(self, pod: dict[str, Any], workload: str, aliases: list[dict]) -> None:
        pod["hostAliases"] = aliases
        for volume in pod.get("volumes", []):
            if "persistentVolumeClaim" in volume or "emptyDir" in volume:
                directory = self.workdir / "volumes" / workload / volume["name"]
                directory.mkdir(parents=True)
                directory.chmod(0o1777)
                volume.pop("persistentVolumeClaim", None)
                volume.pop("emptyDir", None)
                volume["hostPath"] = {"path": str(directory), "type": "Directory"}
            items = _secret_items(volume, self.secrets)
            if items is not None:
                directory = self.workdir / "volumes" / workload / volume["name"]
                directory.mkdir(parents=True, exist_ok=True)
                for secret, key, path in items:
                    target = directory / path
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(self.secrets[secret][key])
                    target.chmod(0o444)
                for key in ("secret", "projected"):
                    volume.pop(key, None)
                volume["hostPath"] = {"path": str(directory), "type": "Directory"}
        for container in pod["containers"] + pod.get("initContainers", []):
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                container.pop(probe, None)
            if container.get("image") in self.images:
                container["image"] = self.images[container["image"]]
            kept = []
            for variable in container.get("env", []):
                reference = variable.get("valueFrom", {}).get("secretKeyRef")
                if (
                    reference
                    and reference.get("optional")
                    and reference["name"] not in self.secrets
                ):
                    continue  # an optional Secret not generated (notification's SMTP): unset
                if reference:
                    reference["name"] = self._podman_secret(reference["name"])
                kept.append(variable)
            if "env" in container:
                container["env"] = kept
            # podman publishes every declared port on 0.0.0.0 (a cluster publishes none):
            # only the ports asked for are kept, published on loopback.
            container["ports"] = [
                {
                    **port,
                    "hostPort": self.publish[(workload, port["containerPort"])],
                    "hostIP": "127.0.0.1",
                }
                for port in container.get("ports", [])
                if (workload, port["containerPort"]) in self.publish
            ]

    def _podman_secret(self, name: str) -> str:
        """The podman secret holding Secret ``name`` (podman 4.3 reads a JSON map)."""
        podman_name = f"{self.run_id}-{name}"
        if podman_name not in self._created_secrets:
            data = {k: base64.b64encode(v).decode() for k, v in self.secrets[name].items()}
            podman("secret", "create", podman_name, "-", input=json.dumps(data))
            self._created_secrets.append(podman_name)
        return podman_name


_WORKLOADS = ("Deployment", "StatefulSet", "Job")


def _pod_template(manifest: dict[str, Any]) -> dict[str, Any]:
    return manifest["spec"]["template"]


def _pod_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    return manifest["spec"] if manifest["kind"] == "Pod" else manifest["spec"]["template"]["spec"]


def _secret_items(
    volume: dict[str, Any], secrets: dict[str, dict[str, bytes]]
) -> list[tuple[str, str, str]] | None:
    """(Secret, key, file) of a secret or projected-secrets volume; None for other volumes."""
    if "secret" in volume:
        name = volume["secret"]["secretName"]
        if volume["secret"].get("optional") and name not in secrets:
            return []  # an optional Secret not generated (notification's SMTP): empty
        items = volume["secret"].get("items") or [{"key": k, "path": k} for k in secrets[name]]
        return [(name, i["key"], i["path"]) for i in items]
    if "projected" in volume:
        return [
            (s["secret"]["name"], i["key"], i["path"])
            for s in volume["projected"]["sources"]
            for i in s["secret"]["items"]
        ]
    return None


def _probe_argv(probe: dict[str, Any], ports: dict[str | None, int]) -> list[str]:
    """A command run in the container that passes when the probe would."""
    if "grpc" in probe:
        code = (
            "import grpc, sys; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; "
            f"c = grpc.insecure_channel('127.0.0.1:{probe['grpc']['port']}'); "
            "s = g.HealthStub(c).Check(h.HealthCheckRequest(), timeout=2).status; "
            "sys.exit(0 if s == h.HealthCheckResponse.SERVING else 1)"
        )
        return ["python", "-c", code]
    if "httpGet" in probe:
        port = probe["httpGet"]["port"]
        port = ports[port] if isinstance(port, str) else port
        url = f"http://127.0.0.1:{port}{probe['httpGet']['path']}"
        return [
            "python",
            "-c",
            f"import urllib.request; urllib.request.urlopen({url!r}, timeout=2)",
        ]
    if "exec" in probe:
        return list(probe["exec"]["command"])
    raise ValueError(f"unsupported probe {probe}")
