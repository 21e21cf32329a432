"""Settings of the simulation service beyond the shared runtime ones (ALEA_SIMULATION_*).

Parsed once at start-up; a malformed value fails naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from services.engine import memory
from services.runtime.config import ConfigError


@dataclass(frozen=True)
class SimulationConfig:
    """Queue, worker and cache tuning; tests shorten the lease and the chunks."""

    workers: int = 1
    lease_seconds: float = 30.0
    chunk_trials: int = 1 << 18  # a multiple of the engine's 2**16 Latin Hypercube blocks
    checkpoint_seconds: float = 1.0
    max_segments: int = 16
    min_segment_trials: int = 1 << 20  # a segment's fixed costs stay small beside its work
    engine_threads: int = 0  # 0: the engine's default (one per CPU)
    poll_seconds: float = 0.5
    cache_ttl_seconds: float = 24 * 3600.0
    exact_limit: int = 100_000
    files_address: str = "localhost:50052"
    max_attempts: int = 3  # leases of a segment without progress before it fails


_VARIABLES = {
    "workers": ("ALEA_SIMULATION_WORKERS", int, 0),
    "lease_seconds": ("ALEA_SIMULATION_LEASE_SECONDS", float, 0.5),
    "chunk_trials": ("ALEA_SIMULATION_CHUNK_TRIALS", int, 1),
    "checkpoint_seconds": ("ALEA_SIMULATION_CHECKPOINT_SECONDS", float, 0.0),
    "max_segments": ("ALEA_SIMULATION_MAX_SEGMENTS", int, 1),
    "min_segment_trials": ("ALEA_SIMULATION_MIN_SEGMENT_TRIALS", int, 1),
    "engine_threads": ("ALEA_SIMULATION_ENGINE_THREADS", int, 0),
    "poll_seconds": ("ALEA_SIMULATION_POLL_SECONDS", float, 0.01),
    "cache_ttl_seconds": ("ALEA_SIMULATION_CACHE_TTL", float, 0.0),
    "exact_limit": ("ALEA_SIMULATION_EXACT_LIMIT", int, 1),
    "max_attempts": ("ALEA_SIMULATION_MAX_ATTEMPTS", int, 1),
}


def load_config(env: Mapping[str, str] | None = None) -> SimulationConfig:
    """Read every ``ALEA_SIMULATION_*`` variable (defaults in :class:`SimulationConfig`).

    ``exact_limit`` bounds the trials whose samples are kept for exact percentiles; past
    it the statistics switch to a sketch, which keeps every checkpoint small.
    """
    env = os.environ if env is None else env
    values: dict[str, float | int] = {}
    # ALEA_FILES_ADDRESS: where workbooks given by file id are downloaded from.
    for field, (name, kind, minimum) in _VARIABLES.items():
        raw = env.get(name)
        if not raw:
            continue
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a {kind.__name__}, got {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {value}")
        values[field] = value
    try:  # the engine reads its own setting; a bad one stops the service here, not a job
        memory.budget(env)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    files_address = env.get("ALEA_FILES_ADDRESS") or SimulationConfig.files_address
    return SimulationConfig(**values, files_address=files_address)  # type: ignore[arg-type]
