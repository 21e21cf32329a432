"""IR models for the back ends' tests: every distribution, every function, random parameters.

``HAND_MODELS`` are built as IR directly; ``WORKBOOKS`` are the shared test workbooks
(tests/engine/models.py), and ``model(key, tmp_path)`` gives either as an ``ir.Model``.
``assert_close`` compares two back ends' values: the same NaNs, and the rest within ``rtol``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from services.engine import load_workbook
from services.engine.distributions import FAMILIES
from services.engine.ir import Apply, Const, Correlation, Model, Node, Output, Sample, Table
from services.engine.stats import Partial
from tests.engine import models as wb
from tests.engine.test_distributions import TABLE

RTOL = 1e-9


def _c(*values: float) -> tuple[Const, ...]:
    return tuple(Const(float(v)) for v in values)


def _t(*values: float) -> Table:
    return Table(tuple(float(v) for v in values), len(values), 1)


_PARAMS = {
    "normal": _c(10, 2),
    "triang": _c(1, 2, 6),
    "trigen": _c(2, 5, 8, 10, 90),
    "pert": _c(0, 3, 10),
    "uniform": _c(5, 15),
    "lognorm": _c(10, 3),
    "lognorm2": _c(1, 0.5),
    "discrete": (_t(3, 1, 2), _t(1, 1, 2)),
    "binomial": _c(10, 0.3),
    "poisson": _c(4),
    "expon": _c(5),
    "gamma": _c(2, 3),
    "beta": _c(2, 5),
    "betageneral": _c(2, 5, 10, 20),
    "weibull": _c(2, 10),
    "cumul": (*_c(0, 10), _t(2, 5, 8), _t(0.2, 0.5, 0.9)),
    **{  # the families of services.engine.distributions, as tests/engine/test_distributions.py
        name: tuple(p if isinstance(p, Table) else Const(float(p)) for p in ref.params)
        for name, ref in TABLE.items()
        if name in FAMILIES
    },
}
_TRUNCATE = {
    "normal": (8.0, 13.0),
    "gamma": (1.0, None),
    "poisson": (2.0, 6.0),
    "discrete": (2.0, None),
    "weibull": (None, 12.0),
    "beta": (0.1, 0.5),
    "triang": (1.5, 5.0),
    "expon": (None, 3.0),
    "student": (-1.0, 2.0),
    "invgauss": (1.0, None),
    "negbin": (1.0, 6.0),
    "general": (3.0, 8.0),
    "cumuld": (None, 6.0),
    "hypergeo": (2.0, None),
}


def distributions() -> Model:
    """One input and one output per distribution, then truncated copies of some."""
    inputs = [Sample(i, d, p, d, f"Dist!B{i + 1}") for i, (d, p) in enumerate(_PARAMS.items())]
    for d, bounds in _TRUNCATE.items():
        i = len(inputs)
        inputs.append(Sample(i, d, _PARAMS[d], f"{d} truncated", f"Dist!B{i + 1}", truncate=bounds))
    return Model(tuple(inputs), tuple(Output(s.name, s.address, s) for s in inputs))


def random_parameters() -> Model:
    """Parameters drawn from other inputs, some of them invalid in some trials (→ NaN)."""
    mean = Sample(0, "uniform", _c(-1, 3), "mean", "P!B1")
    sd = Sample(1, "uniform", _c(-0.5, 2), "sd", "P!B2")  # sd <= 0 in 20% of trials
    n = Sample(2, "discrete", (_t(0, 5, 7.5, 40), _t(1, 1, 1, 1)), "n", "P!B3")
    inputs = [
        mean,
        sd,
        n,
        Sample(3, "normal", (mean, sd), "x", "P!B4"),
        Sample(4, "gamma", (Apply("add", (Const(0.5), sd)), mean), "g", "P!B5"),
        Sample(5, "binomial", (n, Const(0.4)), "b", "P!B6"),
        Sample(6, "poisson", (Apply("mul", (mean, Const(100.0))),), "p", "P!B7"),
        Sample(7, "pert", (mean, Const(3.0), Const(5.0)), "pert", "P!B8"),
        Sample(
            8, "trigen", (mean, Const(3.0), Const(5.0), Const(10.0), Const(90.0)), "trigen", "P!B9"
        ),
        Sample(9, "cumul", (mean, Const(12.0), _t(4, 6), _t(0.3, 0.8)), "cumul", "P!B10"),
    ]
    return Model(tuple(inputs), tuple(Output(s.name, s.address, s) for s in inputs[3:]))


def functions() -> Model:
    """Every ``Apply.fn`` of the backend protocol over random arguments, with a copula."""
    a = Sample(0, "normal", _c(0, 3), "a", "F!B1")
    b = Sample(1, "uniform", _c(-2, 4), "b", "F!B2")
    k = Sample(2, "discrete", (_t(0, 1, 2, 3, 4), _t(1, 1, 1, 1, 1)), "k", "F!B3")
    grid = Table((1, 10, 100, 2, 20, 200, 3, 30, 300), 3, 3)
    keys = _t(-5, -1, 0, 2, 3.5)
    calls = {
        "add": (a, b),
        "sub": (a, b),
        "mul": (a, b),
        "div": (a, k),
        "pow": (b, a),
        "neg": (a,),
        "percent": (b,),
        "eq": (k, Const(2)),
        "ne": (k, Const(2)),
        "lt": (a, b),
        "le": (a, k),
        "gt": (a, b),
        "ge": (b, k),
        "concat": (a, b),
        "if": (Apply("gt", (a, b)), a, b),
        "and": (a, k, b),
        "or": (k, Const(0)),
        "not": (k,),
        "iferror": (Apply("div", (a, k)), Const(-1)),
        "sum": (a, b, keys, k),
        "sumproduct": (a, b, k, Const(2.0)),
        "average": (a, keys, b),
        "min": (a, b, keys),
        "max": (a, b, Const(1.0)),
        "abs": (a,),
        "exp": (b,),
        "ln": (b,),
        "log": (b, Const(2)),
        "log10": (b,),
        "sqrt": (b,),
        "power": (b, Const(0.5)),
        "round": (Apply("mul", (a, Const(1000))), Const(-1)),
        "roundup": (a, Const(1)),
        "rounddown": (a, Const(2)),
        "int": (a,),
        "mod": (a, k),
        "sign": (b,),
        "npv": (Const(0.08), a, b, keys, k),
        "pv": (Const(0.05), k, a),
        "fv": (Apply("div", (b, Const(100))), Const(10), a, b, Const(1)),
        "pmt": (Apply("div", (k, Const(100))), Const(12), Const(1000)),
        "choose": (Apply("add", (k, Const(0.5))), a, b, Const(7)),
        "index": (grid, Apply("add", (k, Const(0.2))), Const(2)),
        "match": (a, keys, Const(1)),
        "vlookup": (Apply("abs", (b,)), grid, Const(3)),
    }
    outputs = [
        Output(fn, f"F!D{i + 1}", Apply(fn, args, f"F!D{i + 1}"))
        for i, (fn, args) in enumerate(calls.items())
    ]
    outputs += [
        Output("index1", "F!E1", Apply("index", (keys, k))),
        Output("match0", "F!E2", Apply("match", (k, keys, Const(0)))),
        Output("match-1", "F!E3", Apply("match", (b, _t(4, 3, 1, 0, -1), Const(-1)))),
        Output("vlookup0", "F!E4", Apply("vlookup", (k, grid, Const(2), Const(0)))),
        Output("if2", "F!E5", Apply("if", (Apply("lt", (a, b)), a))),
    ]
    corr = Correlation("C", (0, 1), ((1.0, 0.7), (0.7, 1.0)))
    return Model((a, b, k), tuple(outputs), (corr,))


def huge_counts() -> Model:
    """Counts of huge variance (the normal approximation), constant and per trial."""
    lam = Sample(0, "uniform", _c(5e6, 6e6), "lambda", "H!A1")
    inputs = [
        lam,
        Sample(1, "poisson", _c(4e6), "poisson", "H!A2"),
        Sample(2, "binomial", _c(1e9, 0.01), "binomial", "H!A3"),
        Sample(3, "poisson", (lam,), "poisson of lambda", "H!A4"),
        Sample(4, "poisson", _c(4e6), "truncated", "H!A5", truncate=(3.999e6, 4.001e6)),
    ]
    return Model(tuple(inputs), tuple(Output(s.name, s.address, s) for s in inputs[1:]))


def long_model() -> Model:
    """A trial function long enough to be cut into pieces (cuda.pieces): correlated inputs
    first, 600 distinct ones summed across the cuts, early values read at the end; then
    sums too long for one statement (a running total and a first-error flag over several
    statements) beside a variadic primitive (its arguments a local array), as many as
    make cuts fall after a flag and after an array (test_pieces checks the first)."""
    corr = tuple(Sample(i, "normal", _c(i, 1), f"c{i}", f"L!A{i + 1}") for i in range(3))
    xs = tuple(Sample(3 + i, "uniform", _c(i, i + 1.5), f"x{i}", f"L!B{i + 1}") for i in range(600))
    total = Apply("sum", xs)
    chain: Node = corr[0]
    for x in xs[::3]:
        chain = Apply("add", (Apply("mul", (chain, Const(0.5))), Apply("sqrt", (x,))))
    late = Apply("mul", (corr[2], Apply("add", (chain, xs[0]))))
    spans: list[Node] = []
    for k in range(144):
        spans.append(Apply("sum", tuple(xs[(k + 7 * j) % 600] for j in range(70))))
        small = (Apply("int", (Apply("sqrt", (xs[(5 * k + j) % 600],)),)) for j in range(3))
        spans.append(Apply("multinomial", tuple(small)))
    outputs = (
        Output("total", "L!C1", total),
        Output("late", "L!C2", late),
        Output("spans", "L!C3", Apply("sum", tuple(spans))),
    )
    matrix = ((1.0, 0.5, 0.2), (0.5, 1.0, 0.3), (0.2, 0.3, 1.0))
    return Model((*corr, *xs), outputs, (Correlation("C", (0, 1, 2), matrix),))


HAND_MODELS = {
    "distributions": distributions,
    "huge_counts": huge_counts,
    "long": long_model,
    "random_parameters": random_parameters,
    "functions": functions,
}


WORKBOOKS = {
    **{name: build for name, build in wb.MODELS.items()},
    **{f"dist_{d}": (lambda d=d: wb.distribution(d)) for d in wb.DISTRIBUTIONS},
}


def model(key: str, tmp_path: Path) -> Model:
    """A hand-built model, or a shared test workbook through the front end."""
    if key in HAND_MODELS:
        return HAND_MODELS[key]()
    return load_workbook(wb.save(WORKBOOKS[key](), tmp_path, key))


def assert_close(actual: dict, expected: dict, rtol: float = RTOL) -> None:
    assert actual.keys() == expected.keys()
    for name, want in expected.items():
        got = actual[name]
        assert got.shape == want.shape, name
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=name)
        ok = ~np.isnan(want)
        np.testing.assert_allclose(got[ok], want[ok], rtol=rtol, atol=1e-300, err_msg=name)


MERGED_MOMENTS = ("mean", "std", "skewness", "kurtosis", "convergence")


def same_statistics(a: Partial, b: Partial) -> None:
    """Equal to the bit but for moments, merged in another order (within 1e-11)."""
    ra, rb = a.results(), b.results()
    assert ra.keys() == rb.keys()
    for name in ra:
        da, db = ra[name].to_dict(), rb[name].to_dict()
        for key in da.keys() - set(MERGED_MOMENTS):
            assert da[key] == db[key], (name, key)
        for key in MERGED_MOMENTS:
            np.testing.assert_allclose(
                np.array(da[key], dtype=float), np.array(db[key], dtype=float), rtol=1e-11
            )
