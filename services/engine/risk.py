"""@RISK functions in formulas: distributions with their property functions, and statistics.

A distribution call becomes an ``ir.Sample`` (an input with its own random stream), its
constant parameters validated naming the cell. Property functions may follow the
parameters, in any order:

- ``RiskName(text)``; ``RiskSeed(n)``; ``RiskCorrmat(matrix, position[, instance])``;
- ``RiskTruncate(min, max)`` (either may be omitted) bounds the value as @RISK shows it, so
  after ``RiskShift``; ``RiskTruncateP(pmin, pmax)`` bounds it at percentiles of the
  distribution (constant parameters only);
- ``RiskShift(s)`` adds ``s`` to every draw (the input is the unshifted draw, ``s`` added in
  the cell, so truncation and sensitivity are unchanged by it);
- ``RiskLock()`` stops sampling: the cell holds its static value, ``RiskStatic(v)`` if given,
  else the distribution's mean (its median where the mean does not exist), plus any shift;
- ``RiskStatic``, ``RiskUnits``, ``RiskCategory``, ``RiskCollect``... only describe the input
  for reports and are accepted with a warning.

Statistics functions (``RiskMean(B7)``, ``RiskPercentile(B7, 0.95)``...) become
``ir.Statistic`` values: known only after the simulation, they may feed reporting cells but
never a per-trial value (see :mod:`.build`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from services.engine import catalog, distributions, sampling
from services.engine.errors import ParameterError
from services.engine.formula import Call, Expr, Formula, Name, Ref, Text
from services.engine.ir import Apply, Const, Node, Sample, Statistic, Table, statistic
from services.engine.values import EMPTY

if TYPE_CHECKING:
    from services.engine.build import Key, Range
    from services.engine.lowering import Lowerer

_SEED_LIMIT = 2**64

#: Statistics functions: spreadsheet name → (Statistic kind, takes a second argument).
STATISTICS: dict[str, tuple[str, bool]] = {
    "riskmean": ("mean", False),
    "riskstddev": ("stddev", False),
    "riskvariance": ("variance", False),
    "riskmin": ("min", False),
    "riskmax": ("max", False),
    "riskrange": ("range", False),
    "riskskewness": ("skewness", False),
    "riskkurtosis": ("kurtosis", False),
    "riskpercentile": ("percentile", True),
    "riskptox": ("percentile", True),
    "risktarget": ("target", True),
    "riskxtop": ("target", True),
    "riskpercentiled": ("percentile_d", True),
    "risktargetd": ("target_d", True),
}


@dataclass
class _Properties:
    name: str | None = None
    truncate: tuple[float | None, float | None] | None = None
    truncate_p: tuple[float | None, float | None] | None = None
    shift: float = 0.0
    seed: int | None = None
    corrmat: tuple[Range, str, str, int] | None = None
    lock: bool = False
    static: float | None = None


class Risk:
    """The @RISK half of a :class:`.lowering.Lowerer`: the inputs it creates (with their
    address order), correlations and statistics' targets, for :func:`.build.build_model`."""

    def __init__(self, lw: Lowerer) -> None:
        self.lw = lw
        self.pending: dict[int, tuple[tuple[int, ...], Key]] = {}  # id(Sample) → sort key, cell
        self.corr: list[tuple[Range, str, str, int, Sample, str]] = []
        self.statistic_targets: dict[str, Key] = {}  # target address → its cell

    def call(self, lname: str, expr: Call, sheet: str) -> Any:
        """A distribution's value, a statistic, or None when ``lname`` is no @RISK function."""
        dist = catalog.distribution(lname)
        if dist is not None:
            return self.sample(dist, expr, sheet)
        if lname in catalog.PROPERTIES or lname in catalog.IGNORED_PROPERTIES:
            raise self.lw.fail("allowed only as an argument of a distribution", expr.name)
        if lname == "riskconvergence":
            raise self.lw.fail("allowed only as an argument of RiskOutput", expr.name)
        if lname in STATISTICS:
            return self.statistic(lname, expr, sheet)
        return None

    # --- inputs ------------------------------------------------------------------------------

    def new_input(
        self,
        distribution: str,
        params: tuple[Node | Table, ...],
        name: str,
        truncate: tuple[float | None, float | None] | None = None,
        seed: int | None = None,
    ) -> Sample:
        """A new uncertain input of the current cell, ordered by address then position."""
        self.lw.occurrence += 1
        node = Sample(
            stream=len(self.pending),
            distribution=distribution,
            params=params,
            name=name,
            address=self.lw.where,
            truncate=truncate,
            seed=seed,
        )
        self.pending[id(node)] = (
            (*self.lw.graph.order(self.lw.cell), self.lw.occurrence),
            self.lw.cell,
        )
        self.lw.nodes[("sample", id(node))] = node  # keeps the object (and its id) alive
        return node

    def sample(self, dist: catalog.Distribution, expr: Call, sheet: str) -> Node:
        """One uncertain input: parameters (validated when constant) and property functions."""
        fn = dist.risk_name
        n = len(dist.params)
        if len(expr.args) < n:
            catalog.check_arity(fn, len(expr.args), n, n, self.lw.where)
        params: list[Node | Table] = []
        for i, arg in enumerate(expr.args[:n]):
            if i in dist.tables:
                params.append(self.lw.table_arg(arg, sheet, f"{fn} {dist.params[i]}"))
            else:
                params.append(self.lw.scalar(arg, sheet, fn))
        catalog.validate(dist, [_constant(p) for p in params], self.lw.where)
        family = distributions.FAMILIES.get(dist.name)
        if family is not None and family.constant and any(_constant(p) is None for p in params):
            raise self.lw.fail("needs constant parameters", fn)
        props = self.properties(fn, expr.args[n:], sheet)
        shift = self.lw.const(props.shift)
        if props.lock:
            return self.locked(dist, params, props)
        truncate = props.truncate
        if truncate is not None and props.shift:
            truncate = tuple(None if b is None else b - props.shift for b in truncate)  # type: ignore[assignment]
        if props.truncate_p is not None:
            truncate = self.percentile_bounds(dist, params, props.truncate_p)
        catalog.check_domain(dist, params, truncate, self.lw.where)
        node = self.new_input(
            dist.name, tuple(params), props.name or self.label(), truncate, props.seed
        )
        if props.corrmat is not None:
            self.corr.append((*props.corrmat, node, self.lw.where))
        return self.lw.apply("add", [node, shift]) if props.shift else node

    def locked(
        self, dist: catalog.Distribution, params: list[Node | Table], props: _Properties
    ) -> Const:
        """The static value of a RiskLock'ed distribution (no input is sampled)."""
        fn = dist.risk_name
        if props.static is not None:
            value = props.static
        else:
            constants = [_constant(p) for p in params]
            if any(c is None for c in constants):
                raise self.lw.fail("RiskLock needs constant parameters or a RiskStatic value", fn)
            value = distributions.static_value(dist.name, params)
        value += props.shift
        self.lw.warn(f"{fn} is locked at its static value {value:.10g}")
        return self.lw.const(value)

    def percentile_bounds(
        self,
        dist: catalog.Distribution,
        params: list[Node | Table],
        bounds: tuple[float | None, float | None],
    ) -> tuple[float | None, float | None]:
        """RiskTruncateP's percentiles as value bounds of the (unshifted) distribution."""
        fn = dist.risk_name
        if any(_constant(p) is None for p in params):
            raise self.lw.fail("RiskTruncateP needs constant parameters", fn)
        values = [p if isinstance(p, Table) else p.value for p in params]  # type: ignore[union-attr]
        out: list[float | None] = []
        for p, edge in zip(bounds, (0.0, 1.0), strict=True):
            if p is None or p == edge:
                out.append(None)
                continue
            with np.errstate(all="ignore"):
                x = sampling.sample(dist.name, np.array([p]), tuple(values))[0]
            out.append(float(x))
        if out[0] is not None and out[1] is not None and not out[0] < out[1]:
            raise ParameterError(
                "RiskTruncateP percentiles leave nothing to sample", self.lw.where, fn
            )
        return out[0], out[1]

    def properties(self, fn: str, args: tuple[Expr, ...], sheet: str) -> _Properties:
        """The property functions after a distribution's parameters."""
        props = _Properties()
        for arg in args:
            pname = arg.name.lower() if isinstance(arg, Call) else ""
            if pname in catalog.IGNORED_PROPERTIES:
                self.lw.warn(f"{arg.name} ignored")  # type: ignore[union-attr]
                continue
            spec = catalog.PROPERTIES.get(pname)
            if spec is None or not isinstance(arg, Call):
                raise self.lw.fail("only property functions may follow the parameters", fn)
            catalog.check_arity(
                arg.name, len(arg.args), spec.min_args, spec.max_args, self.lw.where
            )
            values = [self.lw.lower(a, sheet) for a in arg.args] if pname != "riskcorrmat" else []
            if pname == "riskname":
                if not isinstance(values[0], str):
                    raise self.lw.fail("RiskName needs text", fn)
                props.name = values[0]
            elif pname == "risktruncate":
                props.truncate = self.bounds(fn, "RiskTruncate", values)
            elif pname == "risktruncatep":
                props.truncate_p = self.bounds(fn, "RiskTruncateP", values)
                if any(b is not None and not 0 <= b <= 1 for b in props.truncate_p):
                    raise ParameterError(
                        "RiskTruncateP needs percentiles in [0, 1]", self.lw.where, fn
                    )
            elif pname == "riskshift":
                props.shift = self.constant_number(fn, "RiskShift", values[0])
            elif pname == "riskstatic":
                props.static = self.constant_number(fn, "RiskStatic", values[0])
            elif pname == "risklock":
                props.lock = True
            elif pname == "riskseed":
                props.seed = self.seed(fn, values[0])
            else:
                props.corrmat = self.corrmat(fn, arg.args, sheet)
        if props.truncate is not None and props.truncate_p is not None:
            raise self.lw.fail("RiskTruncate and RiskTruncateP cannot both be used", fn)
        return props

    def constant_number(self, fn: str, prop: str, value: object) -> float:
        if isinstance(value, Const) and math.isfinite(value.value):
            return value.value
        raise self.lw.fail(f"{prop} needs a constant number", fn)

    def bounds(
        self, fn: str, prop: str, values: Sequence[object]
    ) -> tuple[float | None, float | None]:
        found: list[float | None] = []
        for v in [*values, EMPTY, EMPTY][:2]:
            if v is EMPTY:
                found.append(None)
            elif isinstance(v, Const) and not math.isnan(v.value):
                found.append(v.value)
            else:
                raise self.lw.fail(f"{prop} bounds must be constant numbers", fn)
        lo, hi = found
        if lo is not None and hi is not None and not lo < hi:
            raise ParameterError(f"{prop} min ({lo:g}) must be < max ({hi:g})", self.lw.where, fn)
        return lo, hi

    def seed(self, fn: str, value: object) -> int:
        """A constant whole number, or digits as text (exact beyond 2^53, as specs need)."""
        if isinstance(value, str) and value.strip().isdigit():
            seed = int(value)
        elif isinstance(value, Const) and math.isfinite(value.value):
            seed = int(value.value) if value.value == int(value.value) else -1
        else:
            seed = -1
        if not 0 <= seed < _SEED_LIMIT:
            raise ParameterError("RiskSeed needs a whole number in [0, 2^64)", self.lw.where, fn)
        return seed

    def corrmat(self, fn: str, args: tuple[Expr, ...], sheet: str) -> tuple[Range, str, str, int]:
        """(matrix range, instance, label, position): one matrix is one range and instance."""
        rng = self.lw.area(args[0], sheet)
        if rng is None:
            raise self.lw.fail("RiskCorrmat needs the matrix as a range or a defined name", fn)
        position = self.lw.lower(args[1], sheet)
        if not isinstance(position, Const) or position.value != int(position.value):
            raise self.lw.fail("RiskCorrmat position must be a whole number", fn)
        label = args[0].name if isinstance(args[0], Name) else self.lw.graph.range_label(rng)
        instance = ""
        if len(args) > 2:
            value = self.lw.lower(args[2], sheet)
            instance = value if isinstance(value, str) else f"{_constant(value)}"
            label += f" ({instance})"
        return rng, instance, label, int(position.value)

    def label(self) -> str:
        """Default input name: the nearest text to the left on the same row, else the cell."""
        sheet, row, col = self.lw.cell
        for c in range(col - 1, 0, -1):
            content = self.lw.graph.content(sheet, row, c)
            if isinstance(content, str) and content.strip():
                return content.strip()
        return self.lw.where

    # --- statistics ----------------------------------------------------------------------------

    def statistic(self, lname: str, expr: Call, sheet: str) -> Statistic:
        """``RiskMean(B7)``, ``RiskPercentile("NPV", 0.95)``: a statistic of a cell or an
        output named by text; its target becomes an output of the model if it is not one."""
        kind, takes_argument = STATISTICS[lname]
        n = 2 if takes_argument else 1
        if len(expr.args) == n + 1:  # @RISK's optional Sim#
            raise self.lw.fail(
                "the Sim# argument is not supported: a statistic is of the simulation it is "
                "reported in (with RiskSimtable, one value per simulation)",
                expr.name,
            )
        catalog.check_arity(expr.name, len(expr.args), n, n, self.lw.where)
        target, argument = expr.args[0], None
        rng = self.lw.area(target, sheet) if isinstance(target, (Ref, Name)) else None
        if rng is not None:  # a cell, or a defined name of one
            if rng.rows != 1 or rng.cols != 1:
                raise self.lw.fail("needs one cell, not a range", expr.name)
            key = (rng.sheet, rng.top, rng.left)
            output = self.lw.graph.locate(key)
            if not isinstance(self.lw.graph.content(*key), Formula):
                raise self.lw.fail(
                    f"{output} holds no formula: a statistic needs an input or a computed cell",
                    expr.name,
                )
            self.statistic_targets[output] = key
        elif isinstance(target, Text):
            output = "name:" + target.value
        else:
            raise self.lw.fail("needs a cell reference or an output name", expr.name)
        if takes_argument:
            value = self.lw.scalar(expr.args[1], sheet, expr.name)
            if not isinstance(value, Const) or math.isnan(value.value):
                raise self.lw.fail("the second argument must be a constant number", expr.name)
            argument = value.value
            if kind.startswith("percentile") and not 0 <= argument <= 1:
                raise self.lw.fail("the percentile must be in [0, 1]", expr.name)
        if kind.endswith("_d"):  # descending: P(X > x), or the value exceeded with prob. p
            kind = kind[:-2]
            if kind == "percentile":
                return statistic(kind, output, 1.0 - argument)  # type: ignore[operator]
            return statistic("target_above", output, argument)
        return statistic(kind, output, argument)


def _constant(value: object) -> float | tuple[float, ...] | None:
    if isinstance(value, Const):
        return value.value
    if isinstance(value, Table):
        return value.values
    return None


def is_random(value: object) -> bool:
    """Per-trial (or post-simulation) values: never folded to constants."""
    return isinstance(value, (Apply, Sample))
