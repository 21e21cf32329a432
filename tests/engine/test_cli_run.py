"""``alea run`` as a user runs it: a subprocess on a workbook, table or JSON, clear refusals."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import Workbook

from tests.engine import models

ROOT = Path(__file__).parents[2]


def alea(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", "run", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return models.save(models.small("risk"), tmp_path_factory.mktemp("cli"), "small")


def test_json_summary_is_one_object_and_chunking_does_not_change_it(
    small: Path, backend: str
) -> None:
    runs = [
        alea(small, "--trials", "20000", "--seed", "5", "--backend", backend, "--json", *extra)
        for extra in ((), ("--chunk-size", "3000"))
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr
    first, second = (json.loads(r.stdout) for r in runs)
    assert first["trials"] == 20000 and first["seed"] == 5 and first["backend"] == backend
    assert first["trials_per_second"] > 0 and first["elapsed_seconds"] > 0
    profit = first["outputs"]["Profit"]
    assert set(profit["percentiles"]) == {"1", "5", "10", "25", "50", "75", "90", "95", "99"}
    assert abs(profit["mean"] - models.SMALL_MEAN) < 4 * profit["std"] / math.sqrt(20000)
    assert [s["input"] for s in profit["sensitivity"]] == ["Revenue", "Cost", "Tax"]
    assert profit["var_95"] == profit["percentiles"]["5"]
    assert second["outputs"] == first["outputs"]  # bit-identical statistics


def test_readable_table(small: Path) -> None:
    run = alea(small, "--trials", "5000", "--seed", "1", "--sampling", "lhs", "--backend", "numpy")
    assert run.returncode == 0, run.stderr
    assert "5,000 trials, seed 1, lhs, numpy" in run.stdout
    row = next(line for line in run.stdout.splitlines() if line.startswith("Profit "))
    assert float(row.split()[1]) == pytest.approx(models.SMALL_MEAN, rel=0.01)


def test_refused_model_exits_2_naming_the_cell(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws.title = "Model"
    ws["B1"] = "=RiskNormal(0,-1)"
    ws["B2"] = '=RiskOutput("Y")+B1*2'
    bad = tmp_path / "bad.xlsx"
    wb.save(bad)
    run = alea(bad, "--trials", "10")
    assert run.returncode == 2
    assert run.stderr.startswith("Model!B1: ")
    assert "sd" in run.stderr and run.stdout == ""


def test_not_a_workbook_exits_2(tmp_path: Path) -> None:
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(b"this is not a zip file")
    run = alea(junk, "--json")
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.strip()
