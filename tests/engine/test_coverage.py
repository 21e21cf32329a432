"""The coverage tables of the READMEs are the engine's own (scripts/gen_coverage.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from services.engine import catalog, excel

SCRIPT = Path(__file__).parents[2] / "scripts" / "gen_coverage.py"


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_coverage", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readmes_are_current(gen: ModuleType) -> None:
    stale = [str(p) for p, text in gen.updates().items() if p.read_text() != text]
    assert not stale, f"{stale}: run {sys.executable} scripts/gen_coverage.py"


def test_every_function_and_distribution_has_a_row(gen: ModuleType) -> None:
    text = gen.ENGINE_README.read_text()
    rows = {line.split("|")[1].strip().strip("`") for line in text.splitlines() if "| `" in line}
    assert set(excel.FUNCTIONS) <= rows
    assert {d.risk_name for d in catalog.DISTRIBUTIONS.values()} <= rows
    assert len(excel.FUNCTIONS) >= 150 and len(catalog.DISTRIBUTIONS) >= 40


def test_a_function_the_table_lacks_makes_it_stale(
    gen: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = excel.registry.XlFunction("NEWFUNC", "Math and trigonometry", 1, 1, lambda *a: None)
    monkeypatch.setitem(excel.FUNCTIONS, "NEWFUNC", extra)
    assert any(p.read_text() != text for p, text in gen.updates().items())
