"""Simulation settings: every ALEA_SIMULATION_* variable read once, a bad one named."""

from __future__ import annotations

import pytest

from services.runtime.config import ConfigError
from services.simulation.config import SimulationConfig, load_config

# Each setting, a value unlike its default, and the field it lands in.
SETTINGS = [
    ("ALEA_SIMULATION_WORKERS", "0", "workers", 0),
    ("ALEA_SIMULATION_LEASE_SECONDS", "2.5", "lease_seconds", 2.5),
    ("ALEA_SIMULATION_CHUNK_TRIALS", "4096", "chunk_trials", 4096),
    ("ALEA_SIMULATION_CHECKPOINT_SECONDS", "0", "checkpoint_seconds", 0.0),
    ("ALEA_SIMULATION_MAX_SEGMENTS", "3", "max_segments", 3),
    ("ALEA_SIMULATION_MIN_SEGMENT_TRIALS", "7", "min_segment_trials", 7),
    ("ALEA_SIMULATION_ENGINE_THREADS", "2", "engine_threads", 2),
    ("ALEA_SIMULATION_POLL_SECONDS", "0.05", "poll_seconds", 0.05),
    ("ALEA_SIMULATION_EXACT_LIMIT", "10", "exact_limit", 10),
    ("ALEA_SIMULATION_MAX_ATTEMPTS", "9", "max_attempts", 9),
]


def test_an_empty_environment_gives_the_documented_defaults() -> None:
    config = load_config({})
    assert config == SimulationConfig()
    assert config.chunk_trials % (1 << 16) == 0  # whole Latin Hypercube blocks
    assert (config.lease_seconds, config.poll_seconds) == (30.0, 0.5)


@pytest.mark.parametrize(("variable", "raw", "field", "value"), SETTINGS)
def test_each_variable_sets_its_field_alone(
    variable: str, raw: str, field: str, value: float
) -> None:
    config = load_config({variable: raw})
    assert getattr(config, field) == value
    assert getattr(SimulationConfig(), field) != value  # the test sees a change
    others = {name: getattr(config, name) for name in vars(config) if name != field}
    assert others == {name: getattr(SimulationConfig(), name) for name in others}


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("ALEA_SIMULATION_WORKERS", "-1"),
        ("ALEA_SIMULATION_WORKERS", "two"),
        ("ALEA_SIMULATION_LEASE_SECONDS", "0.1"),  # below the half-second minimum
        ("ALEA_SIMULATION_CHUNK_TRIALS", "0"),
        ("ALEA_SIMULATION_CHUNK_TRIALS", "1.5"),
        ("ALEA_SIMULATION_MAX_SEGMENTS", "0"),
        ("ALEA_SIMULATION_POLL_SECONDS", "0"),
        ("ALEA_SIMULATION_MAX_ATTEMPTS", "0"),
        ("ALEA_SIMULATION_CHECKPOINT_SECONDS", "soon"),
    ],
)
def test_a_malformed_value_names_its_variable(variable: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_config({variable: raw})


@pytest.mark.parametrize("raw", ["lots", "1024"])
def test_the_engine_memory_budget_is_checked_at_start_up(raw: str) -> None:
    # The engine reads it per job; a bad value must stop the service, not fail every job.
    with pytest.raises(ConfigError, match="ALEA_ENGINE_MEMORY_BYTES"):
        load_config({"ALEA_ENGINE_MEMORY_BYTES": raw})
    assert load_config({"ALEA_ENGINE_MEMORY_BYTES": str(64 << 20)}) == SimulationConfig()
