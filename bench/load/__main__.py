"""``python -m bench.load``: the mesh under load, then under load with a fault.

``--clients`` users (default 50; half native gRPC, half REST, each with its own mTLS
connection to the Envoy edge, as the CLI connects) create, watch and read small
simulations back to back for ``--seconds`` (default 60), in three scenarios on one mesh
(``alea up``'s supervised mesh, every service and the edge, loopback only, a temporary
ALEA_HOME):

- ``none``: the load alone;
- ``kill``: the simulation service SIGKILLed half-way (the supervisor restarts it);
- ``postgres``: PostgreSQL restarted half-way (PostgreSQL meshes only).

Per scenario it prints sessions (one simulation created, watched to its end, its results
read) and their p50/p95 seconds, the retries clients made through the fault (UNAVAILABLE,
503, a watch broken and opened again), the errors (anything else: none expected), the
simulations listed afterwards and any lost (created but missing, or not SUCCEEDED with
results of their trials), the recovery times (fault → first call answered, fault → every
service SERVING again) and each process's resident memory (RSS) after a warm-up and after
the load. ``tests/e2e/test_load.py`` runs the same driver (``tests/support/load.py``) with 8
clients for 12 s per scenario, within CI's budget. Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import os
import statistics

from tests.support.load import FAULTS, LoadReport, load_mesh, run_load

MIB = 1024 * 1024


def report(database: str, run: LoadReport) -> str:
    latencies = sorted(run.session_latencies)
    p95 = latencies[int(len(latencies) * 0.95)] if latencies else float("nan")
    lines = [
        f"{database} / {run.fault}: {run.clients} clients x {run.seconds:.0f} s, "
        f"{run.tally.sessions} sessions, p50 {statistics.median(latencies):.2f} s, "
        f"p95 {p95:.2f} s; the last ended {run.settle_s:.1f} s after the load stopped",
        f"  retries: {dict(run.tally.retries) or 'none'}",
        f"  errors: {len(run.errors)} {run.errors[:5] if run.errors else ''}".rstrip(),
        f"  simulations listed afterwards: {run.simulations}, lost or not final: {len(run.lost)}",
        f"  error lines the services logged: {len(run.logged)} {run.logged[:3] or ''}".rstrip(),
    ]
    if run.recovery is not None:
        lines.append(
            f"  recovery: first call answered {run.recovery.first_success_s:.2f} s after the "
            f"fault, every service SERVING after {run.recovery.serving_s:.2f} s"
        )
    lines.append(f"  {'process':<14}{'RSS before MiB':>16}{'after MiB':>11}")
    for name, before in run.memory_before.items():
        after = run.memory_after.get(name)
        shown = f"{after / MIB:>11.1f}" if after is not None else f"{'gone':>11}"
        new = "  (a new process)" if name in run.restarted else ""
        lines.append(f"  {name:<14}{before / MIB:>16.1f}{shown}{new}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--clients", type=int, default=50, help="concurrent users")
    parser.add_argument("--seconds", type=float, default=60.0, help="load per scenario")
    parser.add_argument(
        "--databases",
        default="sqlite,postgresql",
        help="comma-separated: a mesh on each, in turn (postgresql needs its binaries)",
    )
    parser.add_argument(
        "--faults",
        default=",".join(FAULTS),
        help=f"comma-separated, of {', '.join(FAULTS)} (postgres: PostgreSQL meshes only)",
    )
    args = parser.parse_args(argv)
    failed = False
    for database in args.databases.split(","):
        with load_mesh(database) as (layout, postgres):
            for fault in args.faults.split(","):
                if fault == "postgres" and postgres is None:
                    continue
                run = run_load(layout, args.clients, args.seconds, fault, postgres)
                print(report(database, run), flush=True)
                failed |= bool(run.errors)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average (1, 5, 15 min) at the end: {load} on {os.cpu_count()} CPUs")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
