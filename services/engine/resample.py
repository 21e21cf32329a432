"""``RiskResample``: a model samples a dataset directly (the bootstrap).

``=RiskResample(2, Data!A2:A501)`` is, in every trial, one of the range's numbers, each equally
likely: random sampling with replacement, @RISK's method 2. Blank cells of the range are
skipped (a dataset's column ends where its data end); text, errors and uncertain cells are
refused naming the cell. It lowers to ``RiskDUniform`` of those numbers, so it runs on every
back end, Latin Hypercube stratifies it, and property functions follow the data as after any
distribution (``RiskResample(2, A2:A501, RiskName("Loss"), RiskSeed(7))``); a refused property
names ``RiskDUniform``. @RISK's methods 1 (the data in order, trial by trial) and 3 (without
replacement) are refused: they tie a trial's value to the trial's position in the run.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .formula import Array, Call, Expr, Number
from .ir import Const, Node
from .values import EMPTY

if TYPE_CHECKING:
    from .lowering import Lowerer

__all__ = ["FUNCTION", "lower"]

FUNCTION = "riskresample"
_WITH_REPLACEMENT = 2.0


def lower(lw: Lowerer, expr: Call, sheet: str) -> Node:
    """One uncertain input drawing the data's values with replacement."""
    from . import catalog  # lowering has it loaded; the services import this module without

    catalog.check_arity("RiskResample", len(expr.args), 2, catalog.MAX_ARGS, lw.where)
    method = lw.scalar(expr.args[0], sheet, "RiskResample")
    if not isinstance(method, Const) or method.value != _WITH_REPLACEMENT:
        raise lw.fail(
            "the method must be 2 (random, with replacement); methods 1 and 3 are not supported",
            "RiskResample",
        )
    data = Array(tuple((Number(v),) for v in _numbers(lw, expr.args[1], sheet)))
    duniform = Call("RiskDUniform", (data, *expr.args[2:]))
    return lw.risk.sample(catalog.DISTRIBUTIONS["duniform"], duniform, sheet)


def _numbers(lw: Lowerer, expr: Expr, sheet: str) -> list[float]:
    area = lw.area(expr, sheet)
    grid = lw.grid(lw.lower(expr, sheet) if area is None else area)
    values = []
    for item in grid.items:
        if item is EMPTY:
            continue
        if not isinstance(item, Const):
            what = "text" if isinstance(item, str) else "uncertain values"
            raise lw.fail(f"the data must be numbers, not {what}", "RiskResample")
        if not math.isfinite(item.value):
            raise lw.fail("the data hold an error value", "RiskResample")
        values.append(item.value)
    if not values:
        raise lw.fail("the data hold no numbers", "RiskResample")
    return values
