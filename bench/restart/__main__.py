"""``python -m bench.restart``: SIGKILL → serving again, per process of the supervised mesh.

One run starts the mesh as ``alea up`` does (the supervisor, every implemented service and
the Envoy edge, SQLite, loopback, free ports, a temporary ALEA_HOME), then, ``--rounds``
times, SIGKILLs each process in turn and measures:

- ``respawn``: until the supervisor has started its replacement (a new pid recorded);
- ``serving``: until the replacement answers SERVING on its health port (the edge: Envoy's
  ``/ready``), the moment Kubernetes' readiness probe or the edge would send it traffic.

Beside each kill, the same loop times ``python -c "import grpc"`` (``floor``): an
interpreter that loads only the gRPC runtime, the least any service's start could cost on
this machine at that moment. ``serving / floor`` is the figure that barely depends on what
else the machine runs; the target is a service back within 5 s on an idle machine, which
the median must meet. Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from services.cli.mesh_procs import (
    MeshLayout,
    envoy_ready,
    implemented_services,
    read_pid,
    service_health,
    start_mesh,
    stop_mesh,
)
from tests.support.services import free_port

EDGE = "envoy"
TARGET_S = 5.0
GIVE_UP_S = 60.0  # a process not back by then is reported as such, not waited for


@dataclass(frozen=True)
class Restart:
    process: str
    respawn_s: float
    serving_s: float
    floor_s: float


def _floor() -> float:
    """Seconds for a bare interpreter that imports grpc to start and exit."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import grpc"], check=True)
    return time.perf_counter() - started


def _ready(layout: MeshLayout, name: str) -> bool:
    if name == EDGE:
        return envoy_ready(layout.admin_port)
    return service_health(layout.health_port(name)) == "SERVING"


def kill_and_wait(layout: MeshLayout, name: str) -> tuple[float, float]:
    """SIGKILL ``name``; (seconds until a new pid is recorded, seconds until it serves)."""
    pid = read_pid(layout, name)
    if pid is None:
        raise RuntimeError(f"{name} has no recorded pid")
    os.kill(pid, signal.SIGKILL)
    killed = time.perf_counter()
    respawn = None
    while time.perf_counter() - killed < GIVE_UP_S:
        new = read_pid(layout, name)
        if respawn is None and new not in (None, pid):
            respawn = time.perf_counter() - killed
        if respawn is not None and _ready(layout, name):
            return respawn, time.perf_counter() - killed
        time.sleep(0.02)
    raise RuntimeError(f"{name} was not serving {GIVE_UP_S:.0f} s after SIGKILL")


def run(rounds: int, home: Path) -> list[Restart]:
    """Start the mesh, kill every process ``rounds`` times, stop the mesh."""
    names = implemented_services()
    layout = MeshLayout(
        home=home,
        services={name: free_port() for name in names},
        health_ports={name: free_port() for name in names},
        edge_port=free_port(),
        admin_port=free_port(),
        owner_pid=os.getpid(),
    )
    start_mesh(layout)
    results = []
    try:
        for _ in range(rounds):
            for name in [*names, EDGE]:
                respawn, serving = kill_and_wait(layout, name)
                results.append(Restart(name, respawn, serving, _floor()))
    finally:
        stop_mesh(layout)
    return results


def report(results: list[Restart]) -> str:
    lines = [
        f"{'process':<14}{'kills':>6}{'respawn s':>11}{'serving s':>11}{'max s':>8}"
        f"{'floor s':>9}{'serving/floor':>15}"
    ]
    medians = {}
    for name in dict.fromkeys(r.process for r in results):
        mine = [r for r in results if r.process == name]
        medians[name] = serving = statistics.median(r.serving_s for r in mine)
        floor = statistics.median(r.floor_s for r in mine)
        lines.append(
            f"{name:<14}{len(mine):>6}{statistics.median(r.respawn_s for r in mine):>11.2f}"
            f"{serving:>11.2f}{max(r.serving_s for r in mine):>8.2f}{floor:>9.2f}"
            f"{serving / floor:>15.1f}"
        )
    slowest = max(medians, key=medians.__getitem__)
    verdict = "meets" if medians[slowest] <= TARGET_S else "misses"
    lines.append(
        f"slowest median: {slowest} {medians[slowest]:.2f} s "
        f"({verdict} the {TARGET_S:.0f} s target)"
    )
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    lines.append(f"load average (1, 5, 15 min) at the end: {load} on {os.cpu_count()} CPUs")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.restart",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=3, help="kills per process")
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="alea-bench-restart-"))
    try:
        results = run(args.rounds, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
