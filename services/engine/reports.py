"""Reporting cells: formulas over statistics of the simulation, evaluated once it is done.

A cell that calls an @RISK statistics function (``=RiskMean(B7)/1000``,
``=RiskPercentile(NPV, 0.95)``, ``=RiskTarget(B7, 0)``...) is a *report* of the model
(``ir.Report``): its expression holds ``ir.Statistic`` leaves, constants and Excel functions
of them, never an uncertain input. :func:`evaluate` computes each from the merged
statistics of the run (:meth:`.stats.Partial.statistic`), with the NumPy back end's own
functions, so an Excel error (``#DIV/0!``...) comes out as it would in the cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from services.engine import catalog, xlerror
from services.engine.ir import Apply, Const, Model, Statistic, Table, postorder
from services.engine.stats import Partial

__all__ = ["ReportValue", "evaluate"]


@dataclass(frozen=True)
class ReportValue:
    """The value of a reporting cell: a number, or an Excel error (``error`` is its name)."""

    name: str
    address: str
    value: float

    @property
    def error(self) -> str:
        return xlerror.name(self.value) if math.isnan(self.value) else ""

    def to_dict(self) -> dict[str, object]:
        """JSON-able: ``value`` None where the cell is an error."""
        ok = math.isfinite(self.value)
        return {
            "name": self.name,
            "address": self.address,
            "value": self.value if ok else None,
            "error": "" if ok else self.error or "#NUM!",
        }


def evaluate(model: Model, partial: Partial) -> list[ReportValue]:
    """Every report of ``model`` from the statistics of a finished run."""
    values: dict[int, float] = {}
    for node in postorder([r.node for r in model.reports]):
        if isinstance(node, Const):
            value = node.value
        elif isinstance(node, Statistic):
            value = partial.statistic(node.output, node.kind, node.argument)
        elif isinstance(node, Apply):
            args = [a if isinstance(a, Table) else values[id(a)] for a in node.args]
            value = catalog.evaluate(node.fn, args)
        else:  # the builder refuses uncertain inputs in reports
            raise TypeError(f"a report cannot hold {type(node).__name__}")
        values[id(node)] = value if not math.isinf(value) else xlerror.NUM
    return [ReportValue(r.name, r.address, values[id(r.node)]) for r in model.reports]
