"""``alea sip``: a SIPmath library (here one ``alea run --sipmath`` wrote) as model inputs."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from openpyxl import load_workbook as open_workbook

from services import engine
from services.engine import sipmath

ROOT = Path(__file__).parents[2]
SCENARIOS = ROOT / "tests/data/workbooks/scenarios.xlsx"


def alea(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sip") / "scenarios.json"
    done = alea("run", SCENARIOS, "--trials", "20000", "--sipmath", path)
    assert done.returncode == 0, done.stderr
    return path


def test_a_model_of_the_inputs_runs_the_librarys_trials_in_order(
    library: Path, tmp_path: Path
) -> None:
    out = tmp_path / "inputs.xlsx"
    done = alea("sip", library, out, "--trials", "3000")
    assert done.returncode == 0, done.stderr
    names = [s["name"] for s in json.loads(library.read_text())["sips"]]
    assert f"{len(names)} SIPs of 3,000 trials" in done.stdout
    book = open_workbook(out)
    inputs = book["Inputs"]
    assert [inputs.cell(r, 1).value for r in range(2, len(names) + 2)] == names
    # A model over the inputs: the difference of two coherent variables, and all of them.
    at = {name: f"Inputs!B{r}" for r, name in enumerate(names, start=2)}
    inputs["D1"] = f'=RiskOutput("Margin")+{at["Price"]}-{at["Unit cost"]}'
    inputs["D2"] = f'=RiskOutput("All")+SUM(Inputs!B2:B{len(names) + 1})'
    book.save(out)
    model = engine.load_workbook(out)
    run = engine.simulate(model, trials=6000, seed=5, backend="numpy")
    kept = run.kept_trials()
    want = sipmath.expand(json.loads(library.read_text()), 3000)
    # Trial t is the library's trial t + 1, whatever the seed, twice over (to the 15
    # significant digits the workbook stores).
    for name in names:
        np.testing.assert_allclose(kept[f"i:{name}"], np.tile(want[name], 2), rtol=1e-14)
    np.testing.assert_allclose(
        kept["o:Margin"], np.tile(want["Price"] - want["Unit cost"], 2), rtol=1e-12
    )


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (b"{not json", (), "not JSON"),
        (json.dumps({"U01": {"rng": []}, "sips": []}).encode(), (), "sips: the library has none"),
        (json.dumps({"sips": []}).encode(), (), "U01: missing"),
        (b"{}", ("--trials", "0"), "--trials: must be an integer in 1..1,000,000"),
    ],
)
def test_a_library_it_cannot_use_exits_2_saying_why(
    tmp_path: Path, content: bytes, args: tuple[str, ...], message: str
) -> None:
    path = tmp_path / "library.json"
    path.write_bytes(content)
    done = alea("sip", path, tmp_path / "out.xlsx", *args)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not (tmp_path / "out.xlsx").exists()


def test_sips_that_would_not_fit_one_workbook_are_refused_before_writing(
    library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """What the engine's workbook guard would refuse to read is refused here, naming it."""
    from services.cli import sip
    from services.engine import guard

    monkeypatch.setattr(guard, "MAX_CELLS", 1_000)
    out = tmp_path / "inputs.xlsx"
    args = argparse.Namespace(library=library, workbook=out, trials=500)
    assert sip.sip(args) == 2
    err = capsys.readouterr().err
    assert "SIPs of 500 trials do not fit one workbook" in err and "fewer --trials" in err
    assert not out.exists()
