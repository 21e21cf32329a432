"""``alea fit`` as a user runs it: a subprocess on the worked example's CSV, the table, JSON,
the plot, and refusals with exit status 2 naming the problem."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
CLAIMS = ROOT / "tests" / "data" / "datasets" / "claims.csv"


def alea(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", "fit", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_table_and_plot_of_a_column_by_name(tmp_path: Path) -> None:
    plot = tmp_path / "fit.png"
    done = alea(CLAIMS, "--column", "claims", "--replicates", "10", "--plot", plot)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("claims: 500 values (counts)")
    assert lines[1].split()[:2] == ["rank", "formula"]
    assert lines[2].split()[:2] == ["1", "=RiskNegbin(4,"]
    assert "p-values: parametric bootstrap, 10 replicates per fit" in done.stdout
    assert "not fitted: RiskBinomial" in done.stdout
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_json_of_a_column_by_position() -> None:
    done = alea(CLAIMS, "--column", "2", "--replicates", "0", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["column"] == "loss" and report["count"] == 500 and not report["discrete"]
    lognorm = next(f for f in report["fits"] if f["function"] == "RiskLognorm")
    assert 11_000 < lognorm["parameters"]["mean"] < 13_000
    assert [f["aic_rank"] for f in report["fits"]] == list(range(1, len(report["fits"]) + 1))


def test_refusals_exit_2_naming_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("x\n1\n2\nthree\n")
    cases = [
        ((CLAIMS, "--column", "premium"), "column_name: no column 'premium'"),
        ((bad,), "column_index: row 4: 'three' is not a finite number"),
        ((tmp_path / "missing.csv",), "No such file"),
    ]
    for args, words in cases:
        done = alea(*args)
        assert done.returncode == 2 and words in done.stderr, (args, done.stderr)
