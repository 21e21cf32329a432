"""``alea run`` as a user runs it: a subprocess on a workbook, table or JSON, clear refusals."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import Workbook

from tests.engine import examples, models

ROOT = Path(__file__).parents[2]


def alea(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", "run", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=None if env is None else {**os.environ, **env},
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


def test_risksimtable_prints_each_simulation(tmp_path: Path, backend: str) -> None:
    book = models.save(examples.simtable(), tmp_path, "simtable")
    args = ("--trials", "20000", "--seed", "3", "--backend", backend)
    run = alea(book, *args, "--json")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert [s["values"] for s in data["simulations"]] == [
        [{"address": "Model!B1", "value": r}, {"address": "Model!B2", "value": p}]
        for r, p in zip(examples.RATES, examples.PRICES, strict=True)
    ]
    for k in range(len(examples.RATES)):
        for name, mean in examples.simtable_means(k).items():
            out = data["outputs"][f"{name} [{k + 1}]"]
            assert out["simulation"] == k + 1
            assert abs(out["mean"] - mean) < 4 * out["std"] / math.sqrt(20000)
    table = alea(book, *args)
    assert table.returncode == 0, table.stderr
    assert "simulation 3: Model!B1 = 0.1, Model!B2 = 60" in table.stdout
    rows = [line.split() for line in table.stdout.splitlines() if line[:2] in ("1 ", "2 ", "3 ")]
    assert [(r[0], r[1]) for r in rows] == [(k, n) for k in "123" for n in ("Profit", "Value")]
    varied = json.loads(alea(book, *args, "--json", "--vary-seeds").stdout)
    assert varied["outputs"]["Profit [2]"]["std"] != data["outputs"]["Profit [2]"]["std"]


def wide_outputs(path: Path, outputs: int) -> Path:
    """One input and ``outputs`` outputs of it: each output's statistics cost 64 KiB a trial."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Model"
    ws["A1"] = "=RiskNormal(0,1)"
    for r in range(1, outputs + 1):
        ws.cell(r, 2, f"=RiskOutput()+A1*{r}")
    wb.save(path)
    return path


def test_a_model_too_wide_for_the_memory_budget_exits_2_saying_both(tmp_path: Path) -> None:
    wide = wide_outputs(tmp_path / "wide.xlsx", 100)
    run = alea(wide, "--trials", "100", env={"ALEA_ENGINE_MEMORY_BYTES": str(16 << 20)})
    assert run.returncode == 2 and run.stdout == ""
    assert "one trial of this model needs 6.3 MiB" in run.stderr
    assert "the limit (ALEA_ENGINE_MEMORY_BYTES) is 16.0 MiB" in run.stderr
    assert alea(wide, "--trials", "100", "--backend", "numpy").returncode == 0  # 512 MiB


def test_scenarios_and_contribution_to_variance_are_printed() -> None:
    workbook = ROOT / "tests/data/workbooks/scenarios.xlsx"
    table = alea(workbook, "--trials", "20000", "--seed", "2", "--scenario", "Profit:<0")
    assert table.returncode == 0, table.stderr
    assert "Profit scenario <0 (" in table.stdout
    assert "Price -1." in table.stdout  # a loss comes with a low price
    assert "Cost contribution to variance (R² 1.000): Labour 6" in table.stdout
    assert "Cost scenario" not in table.stdout  # the scenario names Profit alone
    run = alea(workbook, "--trials", "20000", "--seed", "2", "--scenario", "<5%", "--json")
    cost = json.loads(run.stdout)["outputs"]["Cost"]
    assert [s["label"] for s in cost["scenarios"]] == ["<5%"]
    assert cost["scenarios"][0]["trials"] == 1000
    assert {c["input"] for c in cost["contribution_to_variance"][:2]} == {"Labour", "Materials"}
    assert cost["regression_r_squared"] == pytest.approx(1.0)
    refused = alea(workbook, "--scenario", ">150%")
    assert refused.returncode == 2 and "the percent must be in (0, 100)" in refused.stderr


def test_sipmath_library_is_written(tmp_path: Path) -> None:
    workbook = ROOT / "tests/data/workbooks/scenarios.xlsx"
    out = tmp_path / "library.json"
    run = alea(workbook, "--trials", "20000", "--sipmath", out, "--sipmath-terms", "5")
    assert run.returncode == 0, run.stderr
    library = json.loads(out.read_text())
    assert library["libraryType"] == "SIPmath_3_0" and library["name"] == "scenarios"
    assert {s["name"] for s in library["sips"]} >= {"Profit", "Cost", "Price"}
    assert all(len(s["arguments"]["aCoefficients"]) <= 5 for s in library["sips"])
    # Refused before a trial runs: a trillion trials would otherwise outlast the test's timeout.
    endless = ("--trials", str(10**12))
    refused = alea(workbook, *endless, "--sipmath", tmp_path / "x.json", "--sipmath-terms", "31")
    assert refused.returncode == 2 and "--sipmath-terms must be within 2..30" in refused.stderr
    unwritable = alea(workbook, *endless, "--sipmath", tmp_path / "no" / "x.json")
    assert unwritable.returncode == 2, unwritable.stderr
    assert f"no such directory {tmp_path / 'no'}" in unwritable.stderr


def test_sobol_sampling_of_the_worked_example(backend: str) -> None:
    book = ROOT / "tests" / "data" / "workbooks" / "sobol.xlsx"
    args = ("--trials", "4096", "--seed", "2", "--backend", backend, "--json")
    runs = [
        alea(book, *args, "--sampling", "sobol", *extra) for extra in ((), ("--chunk-size", "1000"))
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr
    first, second = (json.loads(r.stdout) for r in runs)
    assert first["sampling"] == "sobol" and second["outputs"] == first["outputs"]
    value = first["outputs"]["Value"]
    assert abs(value["mean"] - examples.sobol_mean()) < 0.05 * value["std"] / math.sqrt(4096)
