"""NumPy helpers of the primitives: Excel's error rule over arrays of trials.

Values are floats (constants) or float64 arrays of the trials of a tile; an Excel error is a
NaN (see :mod:`services.engine.xlerror`). Excel's rule for a function of several arguments:
the result is the first argument that is an error, whatever the function would compute.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from services.engine import xlerror
from services.engine.ir import Table

Value = Any  # a float or a float64 array over the trials of a tile

NA, NUM, DIV0, VALUE, REF = xlerror.NA, xlerror.NUM, xlerror.DIV0, xlerror.VALUE, xlerror.REF


def propagate(result: Value, *args: Value) -> Value:
    """``result`` where no argument is an error, else the first argument that is one."""
    out = result
    for a in reversed(args):
        if isinstance(a, Table):
            continue
        nan = np.isnan(a)
        if np.ndim(a) == 0:
            if nan:
                out = np.full(np.shape(out), a) if np.ndim(out) else a
        elif nan.any():
            out = np.where(nan, a, out)
    return out


def fail(mask: Value, error: float, result: Value) -> Value:
    """``error`` where ``mask``, else ``result``."""
    return np.where(mask, error, result)


def finite(result: Value) -> Value:
    """Infinities (overflow) are #NUM!, as Excel has none; NaNs keep their error."""
    return np.where(np.isinf(result), NUM, result)


def elementwise(fn: Callable[..., Value]) -> Callable[..., Value]:
    """``fn`` over its arguments with Excel's error rule and #NUM! for overflow."""

    def apply(*args: Value) -> Value:
        # NumPy scalars, not Python floats: a division by zero is inf, never an exception
        values = [a if isinstance(a, Table) else np.asarray(a, dtype=np.float64) for a in args]
        with np.errstate(all="ignore"):
            return propagate(finite(fn(*values)), *args)

    apply.__name__ = getattr(fn, "__name__", "elementwise")
    return apply


def stack(values: Sequence[Value]) -> np.ndarray:
    """Values as rows of one 2-D array (n values × trials); constants broadcast."""
    if not values:
        return np.zeros((0, 1))
    shape = np.broadcast_shapes(*(np.shape(v) for v in values))
    out = np.empty((len(values), *shape) if shape else (len(values), 1))
    for i, v in enumerate(values):
        out[i] = v
    return out


def first_error(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(any error per trial, the first error per trial) of a stacked array."""
    nan = np.isnan(rows)
    if rows.shape[0] == 0:
        return np.zeros(rows.shape[1:], dtype=bool), np.full(rows.shape[1:], np.nan)
    first = np.argmax(nan, axis=0)
    return nan.any(axis=0), np.take_along_axis(rows, first[None], axis=0)[0]


def row_at(rows: np.ndarray, index: Any) -> np.ndarray:
    """Row ``index`` of ``rows`` (n values × trials) in every trial. Either may vary by
    trial while the other is constant (a per-trial k over constant cells, or a fixed k over
    sampled ones): both are broadcast to the trials of the two."""
    index = np.asarray(index, dtype=np.intp)
    trials = np.broadcast_shapes(rows.shape[1:], index.shape)
    rows = np.broadcast_to(rows, (rows.shape[0], *trials))
    return np.take_along_axis(rows, np.broadcast_to(index, trials)[None], axis=0)[0]


def shaped(result: np.ndarray, values: Sequence[Value]) -> Value:
    """A per-trial result of stacked constants back to a scalar (folding), else as is."""
    if all(np.ndim(v) == 0 for v in values) and result.shape == (1,):
        return result[0]
    return result


def over_values(
    fixed: int, compute: Callable[..., Any], head_first: bool = True
) -> Callable[..., Value]:
    """A variadic primitive: ``compute(rows, *head)`` over the stacked values (rows ×
    trials) after ``fixed`` leading arguments, with Excel's error rule (an error among the
    leading arguments, then the values' first one; ``head_first=False`` the other way round)
    and #NUM! for overflow."""

    def apply(*args: Value) -> Value:
        head = [np.asarray(a, dtype=np.float64) for a in args[:fixed]]
        values = args[fixed:]
        rows = stack(values)
        anyerr, first = first_error(rows)
        with np.errstate(all="ignore"):
            result = np.asarray(compute(rows, *head), dtype=np.float64)
        if head_first:
            result = propagate(np.where(anyerr, first, finite(result)), *head)
        else:
            result = np.where(anyerr, first, propagate(finite(result), *head))
        return shaped(np.atleast_1d(result), [*head, *values])

    return apply
