"""Settings parse the environment once and name the variable when it is wrong."""

from pathlib import Path

import pytest

from services.runtime.config import ConfigError, Environment, load_settings


def test_defaults_follow_the_runtime_contract(tmp_path: Path) -> None:
    settings = load_settings("simulation", {"ALEA_HOME": str(tmp_path)})
    assert (settings.port, settings.health_port) == (50053, 51053)
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path}/data/simulation.db"
    assert settings.address("identity") == "localhost:50051"
    assert settings.address("files") == "localhost:50052"
    assert settings.pki_dir == tmp_path / "pki"
    assert settings.otel_exporter == "none"
    assert settings.listen_address == "localhost"  # nothing off the machine reaches it
    assert settings.direct_client_calls is False  # the client certificate: edge only


def test_listen_address_and_the_direct_calls_switch() -> None:
    env = {"ALEA_LISTEN_ADDRESS": "[::]", "ALEA_DEV_DIRECT_CALLS": "yes"}
    settings = load_settings("files", env)
    assert (settings.listen_address, settings.direct_client_calls) == ("::", True)


def test_port_zero_keeps_health_on_a_free_port_too() -> None:
    settings = load_settings("identity", {"ALEA_PORT": "0"})
    assert (settings.port, settings.health_port) == (0, 0)


def test_otlp_endpoint_selects_the_otlp_exporter() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}
    assert load_settings("files", env).otel_exporter == "otlp"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ALEA_PORT", "http"),
        ("ALEA_PORT", "70000"),
        ("ALEA_HEALTH_PORT", "-1"),
        ("ALEA_DATABASE_URL", "mysql://db/x"),
        ("ALEA_LOG_LEVEL", "LOUD"),
        ("ALEA_OTEL_EXPORTER", "zipkin"),
        ("ALEA_SHUTDOWN_GRACE", "soon"),
        ("ALEA_DEV_DIRECT_CALLS", "maybe"),
    ],
)
def test_malformed_setting_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings("identity", {variable: value})


def test_settings_are_frozen() -> None:
    settings = load_settings("identity", {})
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


def test_every_peer_address_comes_from_its_variable() -> None:
    settings = load_settings("files", {"ALEA_SIMULATION_ADDRESS": "simulation:50053"})
    assert settings.address("simulation") == "simulation:50053"
    assert settings.address("admin") == "localhost:50055"


@pytest.mark.parametrize(
    ("read", "value", "message"),
    [
        (lambda e: e.integer("X", 1, minimum=0), "1.5", "X must be an integer"),
        (lambda e: e.integer("X", 1, minimum=0), "-1", "X must be >= 0"),
        (lambda e: e.integer("X", 1, maximum=9), "10", "X must be <= 9"),
        (lambda e: e.number("X", 1.0, minimum=0.5), "0.1", "X must be >= 0.5"),
        (lambda e: e.number("X", 1.0), "fast", "X must be a number"),
        (lambda e: e.port("X", 1), "65536", "X must be <= 65535"),
        (lambda e: e.choice("X", "a", ("a", "b")), "c", "X must be one of a, b"),
    ],
)
def test_the_environment_parser_names_the_variable_and_the_rule(read, value, message) -> None:
    with pytest.raises(ConfigError, match=message):
        read(Environment({"X": value}))


def test_the_environment_parser_treats_empty_as_unset_and_parses_values() -> None:
    env = Environment({"E": "", "I": "7", "N": "0.25", "C": "Warning"})
    assert env.integer("E", 3) == 3
    assert env.integer("I", 3, minimum=7, maximum=7) == 7
    assert env.number("N", 1.0, minimum=0.0) == 0.25
    assert env.choice("C", "INFO", ("INFO", "WARNING")) == "WARNING"
    assert env.text("E", "default") == "default"
