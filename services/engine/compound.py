"""Compound distributions: ``RiskCompound(frequency, severity[, deductible, limit])``.

In every trial the value is the sum over ``N`` severity draws ``x`` of the layer
``min(max(x - deductible, 0), limit)``, ``N`` the frequency's value truncated to an integer
(as @RISK truncates a continuous frequency). The frequency is any value: a distribution (an
input of its own, correlated like any other), a number or a formula. The severity must be a
distribution function, written in the call or in a cell the call refers to: it is an input
(stream ``s``) whose value in the trial is the first draw ``x_1``, sampled like every input
(Monte Carlo, Latin Hypercube, RiskSeed); it cannot be correlated, as in @RISK, nor be a
``RiskResample`` in order or without replacement.

The other draws ``x_2 .. x_N`` of trial ``t`` (the reproducibility contract, the same on
every back end): with ``u_1`` the severity's uniform in trial ``t`` (the double that ``x_1``
is the quantile of, itself a pure function of the seed, ``s``, the sampling method and
``t``), draw ``k`` (``k = 2 .. N``, ``i = k - 2``) is the quantile of
``alea_unit(word i % 4 of Philox4x64-10(counter=(i // 4, 2, 0, 0), key=(bits(u_1), src)))``
where ``bits`` is the IEEE-754 bit pattern and ``src`` the stream ``s`` draws from (itself,
or the input a RiskSimtable simulation's copy draws from). The trial's own uniform keys its
extra draws because it is what the generated trial function sees of the trial: no trial
index or seed has to reach it. Two trials share their extra draws only if they share
``u_1`` (2^-52 apart at least), so the draws of distinct trials are independent streams.
Sums run in draw order (``x_1`` first) in every back end.

``N`` is at most :data:`MAX_FREQUENCY`: a constant frequency above it (or a frequency
distribution with constant parameters whose median is above it) is refused naming the
cell; a trial whose frequency is above it, negative, or whose deductible or limit is
negative is ``#NUM!`` in that trial. An error in the frequency, deductible or limit
propagates (in that order); with ``N = 0`` the value is 0.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from . import resample, rng, sampling, xlerror
from .errors import ParameterError
from .ir import Apply, Const, Node, Sample, Table

if TYPE_CHECKING:
    from .formula import Call
    from .lowering import Lowerer

__all__ = ["DOMAIN", "FUNCTION", "MAX_FREQUENCY", "evaluate", "lower", "severity"]

FUNCTION = "riskcompound"
MAX_FREQUENCY = 100_000
"""Most severity draws one trial may sum."""
DOMAIN = 2
"""The Philox counter domain of the extra severity draws (0: trial uniforms, 1: LHS keys)."""
_NUM = xlerror.error(xlerror.CODES["#NUM!"])


def lower(lw: Lowerer, expr: Call, sheet: str) -> Node:
    """``RiskCompound(frequency, severity[, deductible, limit])`` as ``Apply(FUNCTION,
    (frequency, severity, deductible, limit, *severity.params))``."""
    from . import catalog  # lowering has it loaded; the services import this module without

    fn = "RiskCompound"
    catalog.check_arity(fn, len(expr.args), 2, 4, lw.where)
    frequency = lw.scalar(expr.args[0], sheet, f"{fn} frequency")
    sev = lw.lower(expr.args[1], sheet)
    if not isinstance(sev, Sample):
        raise lw.fail(
            "the severity must be a distribution function (RiskLognorm(...)) or a cell holding "
            "one, without RiskShift",
            fn,
        )
    if sev.distribution == resample.DISTRIBUTION:  # its extra draws would have no position
        raise lw.fail("the severity cannot be RiskResample in order or without replacement", fn)
    if any(entry[4] is sev for entry in lw.risk.corr):
        raise lw.fail("the severity cannot be correlated (RiskCorrmat)", fn)
    if ("compound severity", id(sev)) in lw.nodes:
        raise lw.fail(f"the severity {sev.address} is already another RiskCompound's", fn)
    lw.nodes[("compound severity", id(sev))] = sev
    optional = expr.args[2:]
    deductible = _optional(lw, optional[0] if optional else None, sheet, 0.0, "deductible")
    limit = _optional(lw, optional[1] if len(optional) > 1 else None, sheet, math.inf, "limit")
    _check_frequency(lw, frequency)
    return Apply(FUNCTION, (frequency, sev, deductible, limit, *sev.params), lw.where)


def _optional(lw: Lowerer, arg: Any, sheet: str, default: float, what: str) -> Node:
    from .formula import Missing

    if arg is None or isinstance(arg, Missing):
        return lw.const(default)
    value = lw.scalar(arg, sheet, f"RiskCompound {what}")
    if isinstance(value, Const) and value.value < 0:
        raise ParameterError(f"the {what} must not be negative", lw.where, "RiskCompound")
    return value


def _check_frequency(lw: Lowerer, frequency: Node) -> None:
    """Refuse a frequency that is always (or mostly) more draws than a trial may make."""
    where, fn = lw.where, "RiskCompound"
    if isinstance(frequency, Const):
        n = frequency.value
        if n < 0:
            raise ParameterError("the frequency must not be negative", where, fn)
        if n >= MAX_FREQUENCY + 1:
            raise ParameterError(f"a frequency above {MAX_FREQUENCY:,} draws per trial", where, fn)
    elif isinstance(frequency, Sample) and frequency.distribution != resample.DISTRIBUTION:
        # (RiskResample in order or without replacement reads its data by position, not by
        # quantile: it is checked per trial)
        values: list[float | Table] = []
        for p in frequency.params:
            if not isinstance(p, Const | Table):
                return  # parameters that vary per trial are checked per trial
            values.append(p.value if isinstance(p, Const) else p)
        with np.errstate(all="ignore"):
            median = sampling.sample(
                frequency.distribution, np.array([0.5]), tuple(values), frequency.truncate
            )[0]
        if median >= MAX_FREQUENCY + 1:
            raise ParameterError(
                f"the frequency's median {median:.6g} is above {MAX_FREQUENCY:,} draws per trial",
                where,
                fn,
            )


def severity(node: Apply) -> Sample:
    """The severity input of a ``RiskCompound`` node."""
    sev = node.args[1]
    assert isinstance(sev, Sample)
    return sev


def evaluate(node: Apply, args: list[Any], u1: np.ndarray, source: int) -> np.ndarray:
    """The values of a ``RiskCompound`` node over a tile of trials (the NumPy back end).

    ``args`` are the node's argument values (float or float64 arrays over the tile, Tables as
    themselves), ``u1`` the severity's uniforms in the tile, ``source`` the stream it draws
    from. Follows the module's contract draw by draw.
    """
    frequency, x1, deductible, limit, *params = args
    sev = severity(node)
    count = u1.shape[0]
    n = np.broadcast_to(np.asarray(frequency, dtype=np.float64), (count,))
    d = np.broadcast_to(np.asarray(deductible, dtype=np.float64), (count,))
    cap = np.broadcast_to(np.asarray(limit, dtype=np.float64), (count,))
    x1 = np.broadcast_to(np.asarray(x1, dtype=np.float64), (count,))
    bad = (n < 0) | (n >= MAX_FREQUENCY + 1) | (d < 0) | (cap < 0)
    draws = np.where(bad | np.isnan(n), 0.0, np.floor(n)).astype(np.int64)
    total = np.where(draws > 0, np.minimum(np.maximum(x1 - d, 0.0), cap), 0.0)
    total = np.where((draws > 0) & np.isnan(x1), x1, total)
    keys = u1.view(np.uint64)
    extra = draws - 1
    for block in range((int(extra.max(initial=0)) + 3) // 4):
        rows = np.flatnonzero(extra > 4 * block)
        words = rng.blocks(np.full(rows.size, block, np.uint64), DOMAIN, keys[rows], source)
        for k in range(4):
            take = extra[rows] > 4 * block + k
            if not take.any():
                break
            at = rows[take]
            x = sampling.sample(
                sev.distribution, rng.to_unit(words[k][take]), _at(params, at), sev.truncate
            )
            total[at] += np.minimum(np.maximum(x - d[at], 0.0), cap[at])
    return _errors(total, n, d, cap, bad)


def _at(params: list[Any], rows: np.ndarray) -> tuple[Any, ...]:
    return tuple(p[rows] if isinstance(p, np.ndarray) and p.ndim else p for p in params)


def _errors(
    total: np.ndarray, n: np.ndarray, d: np.ndarray, cap: np.ndarray, bad: np.ndarray
) -> np.ndarray:
    """Errors in the frequency, deductible and limit propagate (in that order); out of their
    domain is ``#NUM!``."""
    out = np.where(bad, _NUM, total)
    for arg in (cap, d, n):
        out = np.where(np.isnan(arg), arg, out)
    return out
