"""Excel functions of every category in ModelSpec expressions, per trial, against Python.

A ModelSpec has no cells, so a range argument is an array constant or ``HSTACK``/``VSTACK``
of names; each expression below is checked trial by trial against SciPy, numpy_financial or
Python over the inputs' own draws, on the NumPy and the native back end.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy_financial as npf
import pytest
from scipy import stats

from services.engine import native
from services.engine.ir import Model
from services.engine.numpy_backend import compile_numpy
from services.engine.spec import model_from_spec

TRIALS = 64
Draws = dict[str, float]


def _input(name: str, kind: str, *params: float) -> dict[str, Any]:
    return {
        "name": name,
        "distribution": {"kind": f"DISTRIBUTION_KIND_{kind}", "parameters": list(params)},
    }


INPUTS = [
    _input("rate", "UNIFORM", 0.02, 0.12),
    _input("a", "UNIFORM", 10, 50),
    _input("b", "NORMAL", 60, 5),
    _input("start", "INT_UNIFORM", 45000, 45400),
    _input("k", "INT_UNIFORM", 1, 5),
]


def _date(serial: float) -> datetime.date:
    return datetime.date(1899, 12, 30) + datetime.timedelta(days=serial)  # serials after 1900


def _eomonth(serial: float, months: int) -> datetime.date:
    d = _date(serial)
    y, m = divmod(d.month - 1 + months + 1, 12)  # the first day of the month after
    return datetime.date(d.year + y, m + 1, 1) - datetime.timedelta(days=1)


def _percentile_inc(values: list[float], q: float) -> float:
    return float(np.percentile(values, 100 * q))


def _round(x: float, digits: int) -> float:
    scaled = abs(x) * 10**digits
    return math.copysign(math.floor(scaled + 0.5) / 10**digits, x)


#: name → (formula, reference over one trial's draws).
EXPRESSIONS: dict[str, tuple[str, Callable[[Draws], float]]] = {
    "irr": ("IRR(HSTACK(-100, a, b))", lambda d: float(npf.irr([-100, d["a"], d["b"]]))),
    "npv": (
        "NPV(rate, a, b, a + b)",
        lambda d: sum(
            v / (1 + d["rate"]) ** i for i, v in enumerate((d["a"], d["b"], d["a"] + d["b"]), 1)
        ),
    ),
    "ipmt": (
        "IPMT(rate / 12, k, 360, -1000 * a)",
        lambda d: float(npf.ipmt(d["rate"] / 12, d["k"], 360, -1000 * d["a"])),
    ),
    "sumif": (
        'SUMIF(HSTACK(a, b, a - b), ">20")',
        lambda d: sum(v for v in (d["a"], d["b"], d["a"] - d["b"]) if v > 20),
    ),
    "countifs": (
        'COUNTIFS(HSTACK(a, b, a), ">20", HSTACK(b, a, b), "<60")',
        lambda d: (
            sum(x > 20 and y < 60 for x, y in ((d["a"], d["b"]), (d["b"], d["a"])))
            + (d["a"] > 20 and d["b"] < 60)
        ),
    ),
    "large": ("LARGE(VSTACK(a, b, 30), 2)", lambda d: sorted((d["a"], d["b"], 30.0))[1]),
    # a per-trial k or p over constants: the values are one column, k a row of trials
    "kth_of_constants": (
        "LARGE({5,1,9,7}, MIN(k, 4)) + 10 * SMALL(VSTACK(5, 1, 9, 7), MIN(k, 4))"
        " + 100 * PERCENTILE.INC({1,2,3,4}, k / 5) + 1000 * INDEX(VSTACK(5, 6, 7, 8, 9), k)",
        lambda d: (
            [9, 7, 5, 1][min(int(d["k"]), 4) - 1]
            + 10 * [1, 5, 7, 9][min(int(d["k"]), 4) - 1]
            + 100 * _percentile_inc([1, 2, 3, 4], d["k"] / 5)
            + 1000 * (4 + d["k"])
        ),
    ),
    "percentile": (
        "PERCENTILE.INC(HSTACK(a, b, 30, 40), 0.25)",
        lambda d: _percentile_inc([d["a"], d["b"], 30, 40], 0.25),
    ),
    "stdev": (
        "STDEV.S(VSTACK(a, b, rate * 100))",
        lambda d: float(np.std([d["a"], d["b"], d["rate"] * 100], ddof=1)),
    ),
    "normal": (
        "NORM.INV(NORM.S.DIST((a - 30) / 10, TRUE), 100, 10) + LOGNORM.DIST(b, 4, 0.5, FALSE)",
        lambda d: float(
            stats.norm(100, 10).ppf(stats.norm.cdf((d["a"] - 30) / 10))
            + stats.lognorm(0.5, scale=math.exp(4)).pdf(d["b"])
        ),
    ),
    "dates": (
        "YEAR(EOMONTH(start, k)) * 100 + MONTH(EOMONTH(start, k)) + DAY(start + k) / 100",
        lambda d: (
            _eomonth(d["start"], int(d["k"])).year * 100
            + _eomonth(d["start"], int(d["k"])).month
            + _date(d["start"] + d["k"]).day / 100
        ),
    ),
    "lookup": (
        "XLOOKUP(k, {1,2,3,4,5}, {10,20,30,40,50}) + INDEX({7,8,9,10,11}, k)"
        " + VLOOKUP(a, {0,1;20,2;40,3}, 2)",
        lambda d: 10 * d["k"] + 6 + d["k"] + (1 if d["a"] < 20 else 2 if d["a"] < 40 else 3),
    ),
    "logical": (
        "IFS(a > 30, 1, b > 60, 2, TRUE, 3) + AND(a > 20, b < 65) * 10"
        " + IFERROR(LN(a - 30), -1) + ISNUMBER(a) * 1000",
        lambda d: (
            (1 if d["a"] > 30 else 2 if d["b"] > 60 else 3)
            + 10 * (d["a"] > 20 and d["b"] < 65)
            + (math.log(d["a"] - 30) if d["a"] > 30 else -1)
            + 1000
        ),
    ),
    "math": (
        "ROUND(a, 1) + MOD(k, 3) + CEILING.MATH(b, 5) + GCD(12, k) + SUMSQ(a, k)",
        lambda d: (
            _round(d["a"], 1)
            + d["k"] % 3
            + 5 * math.ceil(d["b"] / 5)
            + math.gcd(12, int(d["k"]))
            + d["a"] ** 2
            + d["k"] ** 2
        ),
    ),
    "text": ('VALUE("1,234.5") + LEN("abc") + a', lambda d: 1237.5 + d["a"]),
}


@pytest.fixture(scope="module")
def model() -> Model:
    names = [i["name"] for i in INPUTS]
    return model_from_spec(
        {
            "inputs": INPUTS,
            "expressions": [{"name": n, "formula": f} for n, (f, _) in EXPRESSIONS.items()],
            "outputs": [{"name": n, "expression": n} for n in (*names, *EXPRESSIONS)],
        }
    )


def _check(outputs: dict[str, np.ndarray]) -> None:
    draws = [{i["name"]: float(outputs[i["name"]][t]) for i in INPUTS} for t in range(TRIALS)]
    problems = []
    for name, (formula, reference) in EXPRESSIONS.items():
        want = np.array([reference(d) for d in draws])
        got = outputs[name]
        if not np.allclose(got, want, rtol=1e-9, atol=1e-12):
            t = int(np.argmax(~np.isclose(got, want, rtol=1e-9, atol=1e-12)))
            problems.append(f"{name} = {formula}: {got[t]!r} != {want[t]!r} at {draws[t]}")
    assert not problems, "\n".join(problems)


def test_on_numpy(model: Model) -> None:
    outputs, _ = compile_numpy(model, seed=5).evaluate(0, TRIALS)
    _check(outputs)


@pytest.mark.skipif(native.available() is not None, reason="no C compiler")
def test_on_native(model: Model) -> None:
    outputs, _ = native.compile_native(model, seed=5).evaluate(0, TRIALS)
    _check(outputs)
