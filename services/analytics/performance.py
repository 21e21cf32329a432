"""Performance from the same simulation facts: throughput per back end and model size,
queue wait and run time percentiles, and the result cache's hit rate.

A simulation counts once it succeeded (ran by a worker, not answered from the cache):
its trials over its engine seconds give the trials per worker-second; its wait is start
minus creation, its run end minus start. The cache's hit rate is over every simulation
created in the period. Sizes are bands of the model's uncertain inputs: ``small`` (up
to 10), ``medium`` (up to 100) and ``large``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from services.analytics.store import SimulationFact

__all__ = ["BackendPerformance", "Performance", "band", "performance"]


def band(inputs: int) -> str:
    """The size band of a model with ``inputs`` uncertain inputs."""
    if inputs <= 10:
        return "small"
    return "medium" if inputs <= 100 else "large"


@dataclass(frozen=True)
class BackendPerformance:
    """One back end (``cpu`` or ``gpu``) on one size band."""

    backend: str
    size_band: str
    simulations: int
    trials: float
    trials_per_second: float
    queue_wait_p50: float
    queue_wait_p95: float
    run_p50: float
    run_p95: float


@dataclass(frozen=True)
class Performance:
    """Every back end and band, and the cache."""

    backends: list[BackendPerformance]
    cache_hits: int
    cache_hit_ratio: float


def _percentiles(values: Sequence[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 0.0
    p50, p95 = np.percentile(np.asarray(values, dtype=float), [50, 95])
    return float(p50), float(p95)


def performance(simulations: Iterable[SimulationFact], start: float, end: float) -> Performance:
    """Performance of the simulations created or finished in ``[start, end)``."""
    groups: dict[tuple[str, str], list[SimulationFact]] = defaultdict(list)
    created = hits = 0
    for sim in simulations:
        if start <= sim.create_time < end:
            created += 1
            hits += sim.cached
        ended = sim.end_time is not None and start <= sim.end_time < end
        if ended and sim.state == "SUCCEEDED" and not sim.cached and sim.start_time is not None:
            backend = "gpu" if sim.backend in ("gpu", "cuda") else "cpu"
            groups[(backend, band(sim.model_inputs))].append(sim)
    backends = []
    for (backend, size), sims in sorted(groups.items()):
        seconds = sum(s.cpu_seconds + s.gpu_seconds for s in sims)
        trials = sum(s.trials_done for s in sims)
        wait = _percentiles([(s.start_time or s.create_time) - s.create_time for s in sims])
        run = _percentiles([(s.end_time or 0.0) - (s.start_time or 0.0) for s in sims])
        backends.append(
            BackendPerformance(
                backend,
                size,
                len(sims),
                trials,
                trials / seconds if seconds > 0 else 0.0,
                *wait,
                *run,
            )
        )
    return Performance(backends, hits, hits / created if created else 0.0)
