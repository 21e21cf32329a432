"""``python -m bench.simulation``: the simulation service against the engine alone.

Side by side in one run, on a workbook of tests/engine/models.py (default: the 50-input
portfolio, heavy enough per trial that a 1,000,000-trial run, the FREE tier's most, is
not dominated by a job's fixed costs):

1. trials/s end to end through the service (CreateSimulation through Envoy until the
   final WatchSimulation event) vs the engine's ``simulate`` in this process; target ≥ 0.9×;
2. the same with 100 more concurrent watchers vs none; target ≥ 0.95×;
3. one simulation shared by two worker processes vs one (one engine thread each, one
   SQLite queue); target ≥ 1.7× on 2 cores.

Also: GetQueueStatus latency through the edge while a simulation runs vs idle (the
engine runs in a worker thread, so the service's event loop should stay responsive).
Every figure is the best of ``--repeats`` runs, the sides interleaved.
"""

from __future__ import annotations

import argparse
import os
import time

from bench.simulation.service import Mesh, p50_ms, workbook_bytes, worker_processes
from services.engine import StatsOptions, simulate
from services.engine.ir import Model
from services.engine.workbook import load_workbook
from tests.engine import models


def engine_rate(model: Model, trials: int) -> float:
    """The engine alone, to the same statistics the service stores (``results()``)."""
    started = time.perf_counter()
    simulate(model, trials=trials, seed=1, options=StatsOptions(exact_limit=100_000)).results()
    return trials / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.simulation", description=__doc__)
    parser.add_argument(
        "--trials",
        type=int,
        default=1_000_000,
        help="trials per service run (the FREE tier allows 1,000,000)",
    )
    parser.add_argument(
        "--worker-trials",
        type=int,
        default=1 << 21,
        help="trials of the shared run: two segments of 2**20",
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--model",
        choices=("small", "project_npv", "portfolio"),
        default="portfolio",
        help="a model of tests/engine/models.py",
    )
    args = parser.parse_args()
    workbook = workbook_bytes(getattr(models, args.model)())
    model = load_workbook(workbook)
    print(
        f"model: {args.model} ({len(model.inputs)} inputs); {os.cpu_count()} CPUs; "
        f"mesh, Envoy and this client share them (no pinning); "
        f"load average before: {os.getloadavg()[0]:.1f}"
    )

    rows = []
    with Mesh() as mesh:
        idle = mesh.idle_latencies()
        engine, alone, watched = [], [], []
        for _ in range(args.repeats):
            engine.append(engine_rate(model, args.trials))
            alone.append(mesh.run(workbook, args.trials))
            watched.append(mesh.run(workbook, args.trials, watchers=100))
        busy = mesh.run(workbook, args.trials, probe=True).latencies
    best = max(alone, key=lambda r: r.client_rate)
    crowded = max(watched, key=lambda r: r.client_rate)
    rows.append(("service vs engine alone", best.client_rate, max(engine), 0.9))
    rows.append(("  (start to end, no queue)", best.service_rate, max(engine), 0.9))
    rows.append(("100 watchers vs none", crowded.client_rate, best.client_rate, 0.95))
    rows.append(("  (start to end, no queue)", crowded.service_rate, best.service_rate, 0.95))

    one, two = [], []
    for _ in range(args.repeats):
        one.append(worker_processes(model, args.worker_trials, processes=1, threads=1))
        two.append(worker_processes(model, args.worker_trials, processes=2, threads=1))
    rows.append(("2 worker processes vs 1", max(two), max(one), 1.7))

    print(f"{'comparison':<28}{'trials/s':>14}{'reference':>14}{'ratio':>8}{'target':>8}")
    for name, value, reference, target in rows:
        ratio = value / reference
        mark = "ok" if ratio >= target else "MISSED"
        print(f"{name:<28}{value:>14,.0f}{reference:>14,.0f}{ratio:>8.2f}{target:>7.2f}  {mark}")
    print(
        f"GetQueueStatus p50 through the edge: idle {p50_ms(idle):.2f} ms, "
        f"while simulating {p50_ms(busy):.2f} ms ({len(busy)} calls)"
    )
    print(
        f"progress events per second per watcher: {best.events_per_second:.1f} alone, "
        f"{crowded.events_per_second:.1f} among 101 watchers"
    )
    print(f"load average after the run: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
