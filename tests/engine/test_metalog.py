"""Metalog fits (``services/engine/metalog.py``) and the SIPmath 3.0 export (``sipmath.py``).

The least-squares coefficients are checked against the reference package ``pymetalog``
(``tests/data/metalog_reference.json``, written by ``tests/data/make_metalog_reference.py``) for
every boundedness; feasibility against Keelin's exact condition for three terms (pymetalog's
own check samples the density and calls some infeasible fits valid); the library against the
run it came from.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from services import engine
from services.engine import metalog, sipmath
from tests.engine import examples
from tests.engine import models as wb

ROOT = Path(__file__).parents[2]
REFERENCE = json.loads((ROOT / "tests/data/metalog_reference.json").read_text())
KEELIN_3_TERMS = 1.66711  # a 3-term metalog is feasible iff a2 > 0 and |a3| / a2 < this


def _bounds(case: dict) -> tuple[float | None, float | None]:
    kind, bounds = case["boundedness"], case["bounds"]
    lower = float(bounds[0]) if kind in ("sl", "b") else None
    upper = float(bounds[-1]) if kind in ("su", "b") else None
    return lower, upper


@pytest.mark.parametrize(
    "case",
    REFERENCE["cases"],
    ids=[f"{c['boundedness']}-{c['terms']}" for c in REFERENCE["cases"]],
)
def test_coefficients_match_pymetalog(case: dict) -> None:
    x = np.array(REFERENCE["x"])
    y = (np.arange(x.size) + 0.5) / x.size  # pymetalog's probabilities below 100 values
    fitted = metalog.least_squares(x, y, case["terms"], *_bounds(case))
    reference = np.array(case["coefficients"])
    assert np.allclose(fitted.coefficients, reference, rtol=1e-8, atol=1e-10)
    # and it is the least-squares solution NumPy finds on its own
    design = np.column_stack([np.ones(x.size), np.log(y / (1 - y))])
    if case["terms"] == 2 and case["boundedness"] == "u":
        assert np.allclose(np.linalg.lstsq(design, x, rcond=None)[0], reference)
    if case["terms"] == 3:
        a = reference
        keelin = a[1] > 0 and abs(a[2]) / a[1] < KEELIN_3_TERMS
        assert fitted.feasible() == keelin


def test_fit_takes_the_most_feasible_terms_and_inverts_the_quantiles() -> None:
    x = np.array(REFERENCE["x"])
    y = (np.arange(x.size) + 0.5) / x.size
    lower, upper = 0.0, 60.0
    fitted = metalog.fit(x, y, 9, None, upper)
    assert fitted.feasible() and fitted.terms == 9
    fewer = metalog.fit(x, y, 3, None, upper)
    assert fewer.terms == 2  # 3 terms are infeasible for this semi-bounded fit (Keelin)
    for fitted in (metalog.fit(x, y, 9), metalog.fit(x, y, 9, lower, upper)):
        grid = np.linspace(0.001, 0.999, 999)
        q = fitted.quantile(grid)
        assert np.all(np.diff(q) > 0)
        residual = fitted.quantile(y) - x  # 80 noisy points: a smooth fit through them
        assert np.sqrt(np.mean(residual**2)) < 0.1 * x.std()
    bounded = metalog.fit(x, y, 9, lower, upper).quantile(np.array([1e-9, 1 - 1e-9]))
    assert lower < bounded[0] < bounded[1] < upper


@pytest.mark.parametrize(
    ("x", "y", "terms", "lower", "upper", "message"),
    [
        ([1.0, 2.0], [0.2, 0.8], 1, None, None, "terms"),
        ([1.0, 2.0], [0.0, 0.8], 2, None, None, "probabilities"),
        ([1.0, np.nan], [0.2, 0.8], 2, None, None, "finite"),
        ([1.0, 2.0], [0.2, 0.8], 2, 1.0, None, "inside the bounds"),
        ([1.0, 2.0], [0.2, 0.8], 2, 3.0, 0.0, "below the upper bound"),
        ([1.0], [0.5], 2, None, None, "at least 2"),
    ],
)
def test_bad_fits_are_refused_saying_why(x, y, terms, lower, upper, message) -> None:
    with pytest.raises(ValueError, match=message):
        metalog.fit(np.array(x), np.array(y), terms, lower, upper)


def test_a_run_exports_as_a_sipmath_library(tmp_path: Path) -> None:
    model = engine.load_workbook(wb.save(examples.scenarios(), tmp_path, "scenarios"))
    partial = engine.simulate(model, trials=40_000, seed=11, backend="numpy")
    kept = partial.kept_trials()
    variables = {k[2:]: v for k, v in kept.items()}
    variables["Flat"] = np.ones(40_000)
    library = sipmath.library("scenarios", variables, seed=11, terms=16, created="2026-12-04")
    assert (library["objectType"], library["libraryType"]) == ("sipModel", "SIPmath_3_0")
    assert library["metadata"]["omitted"] == ["Flat"]
    names = [s["name"] for s in library["sips"]]
    assert set(names) == {"Demand", "Price", "Unit cost", "Overhead", "Labour", "Materials"} | {
        "Profit",
        "Cost",
    }
    rngs = library["U01"]["rng"]
    assert [r["arguments"]["varId"] for r in rngs] == list(range(1, len(names) + 1))
    assert all(r["function"] == "HDR_2_0" and r["arguments"]["seed3"] == 11 for r in rngs)
    copula = library["U01"]["copula"][0]
    assert copula["arguments"]["rng"] == [r["name"] for r in rngs]
    for i, sip in enumerate(library["sips"]):
        assert sip["ref"] == {"source": "copula", "name": "Gaussian", "copulaLayer": f"c{i + 1}"}
        coefficients = sip["arguments"]["aCoefficients"]
        fitted = metalog.Metalog(tuple(coefficients))
        assert fitted.feasible() and len(coefficients) == sip["metadata"]["terms"]
        values = variables[sip["name"]]
        # the metalog reproduces the run's percentiles within 1 % of the spread
        probabilities = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
        error = fitted.quantile(probabilities) - np.quantile(values, probabilities)
        assert np.max(np.abs(error)) < 0.01 * values.std(), sip["name"]
    entries = library["globalVariables"][0]["value"]["matrix"]
    assert len(entries) == len(names) * (len(names) + 1) // 2  # the lower triangle
    matrix = {(e["row"], e["col"]): e["value"] for e in entries}
    matrix |= {(col, row): value for (row, col), value in matrix.items()}
    assert matrix[("Labour", "Labour")] == 1.0
    assert matrix[("Cost", "Labour")] == pytest.approx(
        np.corrcoef(variables["Cost"], variables["Labour"])[0, 1], abs=0.01
    )
    assert abs(matrix[("Cost", "Demand")]) < 0.03
    json.dumps(library)  # plain JSON


def _hdr_by_the_formula(t: int, var: int, entity: int, seed3: int, seed4: int) -> float:
    """HDR_2_0 in Python's integers, written out from Hubbard (WSC 2019)."""
    s1 = t * 2499997 + var * 1800451 + entity * 2000371 + seed3 * 1796777 + seed4 * 2299603
    s2 = t * 2246527 + var * 2399993 + entity * 2100869 + seed3 * 1918303 + seed4 * 1624729
    big = 10**15 - 11
    first = big % ((s1 % 7450589) * 4658 + 7450581) * 383 % 99991 * 7440893
    second = big % ((s2 % 7450987) * 7580 + 7560584) * 17669 % 7440893
    return ((first + second) * 1343 % 2**32 + 0.5) / 2**32


def test_hdr_is_the_published_formula_to_the_bit_over_its_whole_range() -> None:
    top = 99_999_999
    trials = np.array([1, 2, 3, 4096, top, top + 1])
    for ids in [(1, 1, 0, 0), (7, 3, 11, 0), (top, top, top, top)]:
        want = [_hdr_by_the_formula(int(t), *ids) for t in trials]
        np.testing.assert_array_equal(sipmath.hdr(trials, *ids), want)
    u = sipmath.hdr(np.arange(1, 100_001), 1, 1, 0, 0)
    assert u.min() > 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.005
    other = sipmath.hdr(np.arange(1, 100_001), 2, 1, 0, 0)
    assert abs(np.corrcoef(u, other)[0, 1]) < 0.01


def test_an_exported_library_expands_to_the_runs_distributions_and_dependence(
    tmp_path: Path,
) -> None:
    """Export a run, expand the library as a SIPmath tool would: each variable's quantiles
    are the run's, and the variables keep the run's rank correlations (coherence)."""
    model = engine.load_workbook(wb.save(examples.scenarios(), tmp_path, "scenarios"))
    partial = engine.simulate(model, trials=40_000, seed=11, backend="numpy")
    variables = {k[2:]: v for k, v in partial.kept_trials().items()}
    library = sipmath.library("scenarios", variables, seed=11, terms=16, created="2026-12-04")
    sips = sipmath.expand(json.loads(json.dumps(library)), 20_000)
    assert set(sips) == {s["name"] for s in library["sips"]}
    probabilities = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    for name, values in sips.items():
        original = variables[name]
        error = np.quantile(values, probabilities) - np.quantile(original, probabilities)
        assert np.max(np.abs(error)) < 0.05 * original.std(), name
    rank = {k: np.argsort(np.argsort(v)) for k, v in sips.items()}
    before = {k: np.argsort(np.argsort(variables[k])) for k in sips}
    for a, b in [("Cost", "Labour"), ("Profit", "Price"), ("Cost", "Demand")]:
        got, want = np.corrcoef(rank[a], rank[b])[0, 1], np.corrcoef(before[a], before[b])[0, 1]
        assert got == pytest.approx(want, abs=0.03), (a, b)
    again = sipmath.expand(library, 1_000)  # a prefix of the same trials
    for name, values in again.items():
        np.testing.assert_array_equal(values, sips[name][:1_000])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda lib: lib["U01"]["rng"][0].update(function="MT19937"), r"U01.rng\[0\].function"),
        (lambda lib: lib["sips"][1]["arguments"].update(aCoefficients=[]), r"sips\[1\].arguments"),
        (lambda lib: lib["sips"][0]["ref"].update(copulaLayer="nowhere"), r"sips\[0\].ref"),
        (lambda lib: lib["U01"]["rng"][1]["arguments"].update(varId=-3), r"U01.rng\[1\].arg"),
        (lambda lib: lib.pop("sips"), r"^sips: missing"),
        (
            lambda lib: lib["globalVariables"][0]["value"]["matrix"][1].update(value=7),
            r"globalVariables\[correlationMatrix\].value.matrix\[1\].value",
        ),
    ],
)
def test_a_library_it_cannot_expand_is_refused_naming_the_place(change, message) -> None:
    variables = {"a": np.random.default_rng(1).normal(size=500)}
    variables["b"] = variables["a"] + np.random.default_rng(2).normal(size=500)
    library = sipmath.library("x", variables, seed=1, terms=5, created="2026-12-04")
    change(library)
    with pytest.raises(sipmath.LibraryError, match=message):
        sipmath.expand(library, 100)


def test_a_diagonal_written_as_computed_is_one() -> None:
    """corrcoef's diagonal can be 0.9999999999999998: the export writes 1, and a library
    from another tool that writes it so still expands (and 1.1 does not)."""
    variables = {f"v{i}": np.random.default_rng(i).normal(size=2000) for i in range(60)}
    library = sipmath.library("wide", variables, seed=1, terms=5, created="2026-12-04")
    entries = library["globalVariables"][0]["value"]["matrix"]
    assert all(e["value"] == 1.0 for e in entries if e["row"] == e["col"])
    for e in entries:
        if e["row"] == e["col"]:
            e["value"] = 0.9999999999999998
    assert len(sipmath.expand(library, 10)) == 60
    entries[0]["value"] = 1.1
    with pytest.raises(sipmath.LibraryError, match=r"matrix\[0\].value"):
        sipmath.expand(library, 10)
