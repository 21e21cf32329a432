"""The function catalogue: distribution parameter checks and Excel semantics on constants."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.engine import catalog, numpy_backend
from services.engine.errors import FormulaError, ParameterError
from services.engine.ir import Table
from tests.engine import models

WHERE = "Sheet1!B2"


def _params(call: str) -> list[object]:
    """Parameters of a models.DISTRIBUTIONS call like ``RiskDiscrete({1,2},{1,1})``."""
    inner = call[call.index("(") + 1 : -1]
    out: list[object] = []
    for part in inner.replace("},{", "};{").split(";") if "{" in inner else [inner]:
        out.extend(_split(part))
    return out


def _split(text: str) -> list[object]:
    items: list[object] = []
    depth, start = 0, 0
    for i, ch in enumerate(text + ","):
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            token = text[start:i].strip()
            if token.startswith("{"):
                items.append(tuple(float(x) for x in token[1:-1].split(",")))
            elif token:
                items.append(float(token))
            start = i + 1
    return items


@pytest.mark.parametrize("name", sorted(models.DISTRIBUTIONS))
def test_every_shared_test_distribution_is_valid(name: str) -> None:
    dist = catalog.distribution(models.DISTRIBUTIONS[name][0].split("(")[0])
    assert dist is not None and dist.name == name
    catalog.validate(dist, _params(models.DISTRIBUTIONS[name][0]), WHERE)  # type: ignore[arg-type]


def test_names_follow_risk_spelling() -> None:
    assert catalog.distribution("RiskBetaGeneral") is catalog.DISTRIBUTIONS["betageneral"]
    assert catalog.DISTRIBUTIONS["lognorm2"].risk_name == "RiskLognorm2"
    assert catalog.distribution("RiskNope") is None
    assert catalog.distribution("RiskExtValueMin") is catalog.DISTRIBUTIONS["extvaluemin"]
    assert catalog.DISTRIBUTIONS["intuniform"].risk_name == "RiskIntUniform"
    assert len(catalog.DISTRIBUTIONS) >= 40
    assert set(catalog.DISTRIBUTIONS) >= {
        "normal",
        "triang",
        "trigen",
        "pert",
        "uniform",
        "lognorm",
        "lognorm2",
        "discrete",
        "binomial",
        "poisson",
        "expon",
        "gamma",
        "beta",
        "betageneral",
        "weibull",
        "cumul",
    }


INVALID = [
    ("normal", (0, -1), "sd must be > 0"),
    ("normal", (0, 0), "sd must be > 0"),
    ("triang", (3, 2, 1), "min (3) must be < max (1)"),
    ("triang", (1, 5, 3), "mode (5) must be <= max (3)"),
    ("triang", (1, 0, 3), "mode (0) must be >= min (1)"),
    ("trigen", (1, 2, 3, 90, 10), "bottom_pct (90) must be < top_pct (10)"),
    ("trigen", (1, 2, 3, 10, 101), "top_pct must be in (0, 100]"),
    ("pert", (5, 5, 5), "min (5) must be < max (5)"),
    ("uniform", (2, 1), "min (2) must be < max (1)"),
    ("lognorm", (-1, 1), "mean must be > 0"),
    ("lognorm2", (0, -0.5), "sigma must be > 0"),
    ("discrete", ((1, 2, 3), (1, 1)), "values has 3 entries but probabilities has 2"),
    ("discrete", ((1, 2), (0, 0)), "must sum to a positive number"),
    ("discrete", ((1, 2), (1, -1)), "must all be >= 0"),
    ("binomial", (2.5, 0.5), "n must be a whole number"),
    ("binomial", (3, 1.5), "p must be in [0, 1]"),
    ("poisson", (0,), "lambda must be > 0"),
    ("expon", (-2,), "beta must be > 0"),
    ("gamma", (1, 0), "beta must be > 0"),
    ("beta", (0, 1), "alpha1 must be > 0"),
    ("betageneral", (2, 2, 5, 1), "min (5) must be < max (1)"),
    ("weibull", (-1, 1), "alpha must be > 0"),
    ("cumul", (0, 10, (5, 2), (0.2, 0.5)), "x must be strictly increasing"),
    ("cumul", (0, 10, (2, 5), (0.5, 0.2)), "p must be non-decreasing"),
    ("cumul", (0, 10, (2, 50), (0.2, 0.5)), "x must lie within [min, max]"),
    ("cumul", (0, 10, (2, 5), (0.2,)), "x has 2 entries but p has 1"),
    ("normal", (math.inf, 1), "mean must be a finite number"),
]


@pytest.mark.parametrize(("name", "params", "reason"), INVALID)
def test_invalid_parameters_are_refused_naming_cell_and_function(
    name: str, params: tuple[object, ...], reason: str
) -> None:
    dist = catalog.DISTRIBUTIONS[name]
    with pytest.raises(ParameterError) as err:
        catalog.validate(dist, params, WHERE)  # type: ignore[arg-type]
    assert reason in err.value.reason
    assert err.value.location == WHERE
    assert err.value.function == dist.risk_name
    assert str(err.value).startswith(f"{WHERE}: {dist.risk_name}: ")


def test_non_constant_parameters_are_left_to_the_backend() -> None:
    catalog.validate(catalog.DISTRIBUTIONS["triang"], (None, 1, 2), WHERE)
    with pytest.raises(ParameterError):
        catalog.validate(catalog.DISTRIBUTIONS["triang"], (None, 5, 1), WHERE)


def test_wrong_number_of_parameters_is_a_formula_error() -> None:
    with pytest.raises(FormulaError, match="takes 2 arguments, got 3"):
        catalog.validate(catalog.DISTRIBUTIONS["normal"], (1, 2, 3), WHERE)


T = Table((1.0, 10.0, 2.0, 20.0, 3.0, 30.0), rows=3, cols=2)
COLUMN = Table((1.0, 2.0, 3.0), rows=3, cols=1)

FOLDS = [
    ("round", (2.5, 0), 3.0),
    ("round", (-2.5, 0), -3.0),
    ("round", (1234.5678, -2), 1200.0),
    ("round", (-1.25, 1), -1.3),
    ("roundup", (3.21, 1), 3.3),
    ("roundup", (-3.21, 1), -3.3),
    ("rounddown", (-3.29, 1), -3.2),
    ("int", (-2.5,), -3.0),
    ("mod", (-3, 2), 1.0),
    ("mod", (3, -2), -1.0),
    ("mod", (1, 0), math.nan),
    ("div", (1, 0), math.nan),
    ("pow", (-8, 1 / 3), math.nan),
    ("pow", (0, -1), math.nan),
    ("pow", (0, 0), math.nan),
    ("pow", (-2, 2), 4.0),
    ("pow", (10, 400), math.nan),
    ("ln", (0,), math.nan),
    ("sqrt", (-1,), math.nan),
    ("log", (8, 2), 3.0),
    ("log", (100, 10), 2.0),
    ("log", (5, 1), math.nan),
    ("sign", (-0.5,), -1.0),
    ("percent", (50,), 0.5),
    ("if", (math.nan, 1, 2), math.nan),
    ("if", (0, 1, 2), 2.0),
    ("iferror", (math.nan, 7), 7.0),
    ("iferror", (3, 7), 3.0),
    ("choose", (2, 10, 20, 30), 20.0),
    ("choose", (4, 10, 20, 30), math.nan),
    ("and", (1, 0), 0.0),
    ("or", (1, 0), 1.0),
    ("not", (0,), 1.0),
    ("eq", (1, math.nan), math.nan),
    ("sum", (1, 2, math.nan), math.nan),
    ("average", (1, 2, 6), 3.0),
    ("npv", (0.1, 110, 121), 200.0),
    ("pv", (0, 10, -5, 0, 0), 50.0),
    ("fv", (0.1, 2, 0, -100, 0), 121.0),
    ("pmt", (0, 10, 1000, 0, 0), -100.0),
    ("index", (T, 2, 2), 20.0),
    ("index", (T, math.nan, 1), math.nan),
    ("min", (2.5,), 2.5),
    ("max", (-1, 3), 3.0),
    ("index", (T, 4, 1), math.nan),
    ("match", (2.5, COLUMN, 1), 2.0),
    ("match", (0.5, COLUMN, 1), math.nan),
    ("match", (3, COLUMN, 0), 3.0),
    ("vlookup", (2.5, T, 2, 1), 20.0),
    ("vlookup", (2.5, T, 2, 0), math.nan),
    ("vlookup", (3, T, 3, 0), math.nan),
]


@pytest.mark.parametrize(("fn", "args", "expected"), FOLDS)
def test_excel_semantics_on_constants(fn: str, args: tuple[object, ...], expected: float) -> None:
    got = catalog.evaluate(fn, args)  # type: ignore[arg-type]
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(expected, rel=1e-12)


def test_pmt_matches_a_known_mortgage_payment() -> None:
    # 10,000 over 10 years at 8% a year, monthly: Excel gives -121.33.
    assert catalog.evaluate("pmt", (0.08 / 12, 120, 10000, 0, 0)) == pytest.approx(
        -121.3276, abs=1e-4
    )


@pytest.mark.parametrize(("fn", "args", "expected"), FOLDS)
def test_folding_agrees_with_the_numpy_backend(
    fn: str, args: tuple[object, ...], expected: float
) -> None:
    vector = [a if isinstance(a, Table) else np.full(3, float(a)) for a in args]  # type: ignore[arg-type]
    with np.errstate(all="ignore"):
        got = np.broadcast_to(np.asarray(numpy_backend.FUNCTIONS[fn](*vector), dtype=float), (3,))
    folded = catalog.evaluate(fn, args)  # type: ignore[arg-type]
    np.testing.assert_array_equal(got, np.full(3, folded))
