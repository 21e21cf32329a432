"""GetSimulationSipmath's conversion: a simulation's segment statistics, as the workers stored
them, to the SIPmath library ``alea run --sipmath`` writes of the same trials."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services import engine
from services.engine import metalog, sipmath
from services.engine.stats import StatsOptions
from services.simulation.domain import _sipmath
from tests.engine import examples
from tests.engine import models as wb


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> engine.Model:
    path = wb.save(examples.scenarios(), tmp_path_factory.mktemp("sipmath"), "scenarios")
    return engine.load_workbook(path)


def _segments(model: engine.Model, options: StatsOptions) -> list[bytes]:
    """Three segments of 1,000 trials, checkpointed as a worker writes them."""
    return [
        engine.simulate(
            model, trials=1000, seed=7, first_trial=first, backend="numpy", options=options
        ).to_bytes()
        for first in (0, 1000, 2000)
    ]


@pytest.mark.parametrize(
    "options",
    [StatsOptions(), StatsOptions(exact_limit=2000, reservoir_size=500)],
    ids=["every-trial", "reservoir"],
)
def test_segments_give_the_library_of_the_whole_run(model, options: StatsOptions) -> None:
    whole = engine.simulate(model, trials=3000, seed=7, backend="numpy", options=options)
    expected = sipmath.library_of_run("scenarios", whole, seed=7, terms=9, created="2026-12-04")
    got = json.loads(_sipmath(_segments(model, options), "scenarios", 7, 9, "2026-12-04"))
    assert got == json.loads(json.dumps(expected))
    assert got["sips"][0]["metadata"]["count"] == (3000 if options.exact_limit > 3000 else 500)
    names = [s["name"] for s in got["sips"]]
    assert names[-2:] == ["Profit", "Cost"]  # inputs first, then outputs
    for sip in got["sips"]:
        assert 2 <= sip["metadata"]["terms"] <= 9
        assert metalog.Metalog(tuple(sip["arguments"]["aCoefficients"])).feasible()


def test_unset_terms_is_the_default(model) -> None:
    got = json.loads(_sipmath(_segments(model, StatsOptions()), "m", 7, None, "2026-12-04"))
    assert max(s["metadata"]["terms"] for s in got["sips"]) == sipmath.DEFAULT_TERMS


def test_alea_run_writes_the_same_library(model, tmp_path: Path) -> None:
    """The CLI's export goes through the same conversion (``library_of_run``)."""
    from services.cli.main import main

    book = wb.save(examples.scenarios(), tmp_path, "scenarios")
    out = tmp_path / "library.json"
    args = ["run", str(book), "--trials", "3000", "--seed", "7", "--backend", "numpy"]
    assert main([*args, "--sipmath", str(out), "--sipmath-terms", "9", "--json"]) == 0
    written = json.loads(out.read_text())
    served = json.loads(_sipmath(_segments(model, StatsOptions()), "scenarios", 7, 9, "x"))
    written["dateCreated"] = served["dateCreated"] = None
    assert written == served
