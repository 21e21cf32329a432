"""Settings parse the environment once and name the variable when it is wrong."""

from pathlib import Path

import pytest

from services.runtime.config import ConfigError, load_settings


def test_defaults_follow_the_runtime_contract(tmp_path: Path) -> None:
    settings = load_settings("simulation", {"ALEA_HOME": str(tmp_path)})
    assert (settings.port, settings.health_port) == (50053, 51053)
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path}/data/simulation.db"
    assert settings.identity_address == "localhost:50051"
    assert settings.pki_dir == tmp_path / "pki"
    assert settings.otel_exporter == "none"


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
    ],
)
def test_malformed_setting_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings("identity", {variable: value})


def test_settings_are_frozen() -> None:
    settings = load_settings("identity", {})
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]
