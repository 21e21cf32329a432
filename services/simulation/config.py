"""Settings of the simulation service beyond the shared runtime ones (ALEA_SIMULATION_*).

Parsed once at start-up through the runtime's :class:`Environment`; a malformed value
fails naming the variable (the process exits with status 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.engine import memory
from services.runtime.config import ConfigError, Environment

__all__ = ["SimulationConfig", "load_config"]


@dataclass(frozen=True)
class SimulationConfig:
    """Queue and worker tuning; tests shorten the lease and the chunks. (The result cache's
    lifetime is a tenant setting: ``simulation.result_cache_ttl_seconds``.)

    ``exact_limit`` bounds the trials whose samples are kept for exact percentiles; past
    it the statistics switch to a sketch, which keeps every checkpoint small.
    """

    workers: int = 1
    lease_seconds: float = 30.0
    chunk_trials: int = 1 << 18  # a multiple of the engine's 2**16 Latin Hypercube blocks
    checkpoint_seconds: float = 1.0
    max_segments: int = 16
    min_segment_trials: int = 1 << 20  # a segment's fixed costs stay small beside its work
    engine_threads: int = 0  # 0: the engine's default (one per CPU)
    poll_seconds: float = 0.5
    exact_limit: int = 100_000
    max_attempts: int = 3  # leases of a segment without progress before it fails


def load_config(env: Mapping[str, str] | None = None) -> SimulationConfig:
    """Read every ``ALEA_SIMULATION_*`` variable (defaults in :class:`SimulationConfig`)."""
    read = Environment(env)
    try:  # the engine reads its own setting; a bad one stops the service here, not a job
        memory.budget(env)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    default = SimulationConfig()
    return SimulationConfig(
        workers=read.integer("ALEA_SIMULATION_WORKERS", default.workers, minimum=0),
        lease_seconds=read.number(
            "ALEA_SIMULATION_LEASE_SECONDS", default.lease_seconds, minimum=0.5
        ),
        chunk_trials=read.integer("ALEA_SIMULATION_CHUNK_TRIALS", default.chunk_trials, minimum=1),
        checkpoint_seconds=read.number(
            "ALEA_SIMULATION_CHECKPOINT_SECONDS", default.checkpoint_seconds, minimum=0.0
        ),
        max_segments=read.integer("ALEA_SIMULATION_MAX_SEGMENTS", default.max_segments, minimum=1),
        min_segment_trials=read.integer(
            "ALEA_SIMULATION_MIN_SEGMENT_TRIALS", default.min_segment_trials, minimum=1
        ),
        engine_threads=read.integer(
            "ALEA_SIMULATION_ENGINE_THREADS", default.engine_threads, minimum=0
        ),
        poll_seconds=read.number(
            "ALEA_SIMULATION_POLL_SECONDS", default.poll_seconds, minimum=0.01
        ),
        exact_limit=read.integer("ALEA_SIMULATION_EXACT_LIMIT", default.exact_limit, minimum=1),
        max_attempts=read.integer("ALEA_SIMULATION_MAX_ATTEMPTS", default.max_attempts, minimum=1),
    )
