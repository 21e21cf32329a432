"""The model IR: a typed DAG of per-trial numeric nodes shared by every front end and backend.

Front ends (workbook reader, protobuf spec) build a :class:`Model`; backends (NumPy, CUDA)
compile it. Nodes are frozen dataclasses, so equal sub-expressions compare and hash equal
and a backend can evaluate each distinct node once per trial.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class Const:
    """A number that is the same in every trial (folded constants, constant cells)."""

    value: float


@dataclass(frozen=True, slots=True)
class Table:
    """A constant rectangular range, row-major; only ever an argument, never a value."""

    values: tuple[float, ...]
    rows: int
    cols: int


@dataclass(frozen=True, slots=True)
class Sample:
    """One uncertain input: a distribution drawn once per trial from its own random stream.

    ``stream`` is the input's index in ``Model.inputs``; the Philox key is derived from
    (simulation seed, stream), or (``seed``, stream) when ``RiskSeed`` fixed one.
    ``distribution`` is the @RISK name without the ``Risk`` prefix, lower-case
    (``"normal"``, ``"triang"``, ``"lognorm2"``...); ``params`` keep @RISK's order.
    ``draws_from``: the stream whose uniforms this input transforms instead of its own (the
    copy of an input that one RiskSimtable simulation gives other parameters, see
    :mod:`.simtable`), with that stream's key and copula; None for every stored model.
    """

    stream: int
    distribution: str
    params: tuple[Node | Table, ...]
    name: str
    address: str
    truncate: tuple[float | None, float | None] | None = None
    seed: int | None = None
    draws_from: int | None = None


@dataclass(frozen=True, slots=True)
class Apply:
    """An Excel operator or function applied element-wise over the trials of a chunk.

    ``fn`` is lower-case: operators are ``add sub mul div pow neg percent eq ne lt le gt
    ge``; functions keep their Excel name (``if``, ``iferror``, ``sum``, ``npv``...).
    ``address`` is the cell the expression came from, for errors.
    """

    fn: str
    args: tuple[Node | Table, ...]
    address: str = ""


Node: TypeAlias = Const | Sample | Apply


@dataclass(frozen=True, slots=True)
class Convergence:
    """When an output's statistics are known well enough to stop (``RiskConvergence``).

    Each statistic monitored (the mean, the standard deviation, each of ``percentiles``, as
    probabilities in (0, 1)) must have a confidence interval at level ``confidence`` whose
    half-width is at most ``tolerance`` (``relative``: times the statistic's absolute
    value). :mod:`.convergence` says how each interval is computed.
    """

    tolerance: float = 0.03
    relative: bool = True
    confidence: float = 0.95
    mean: bool = True
    stddev: bool = False
    percentiles: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Output:
    """A value the user asked to see (``RiskOutput``), with its distribution reported;
    ``convergence``: its own stopping test (``RiskConvergence``), else the run's."""

    name: str
    address: str
    node: Node
    convergence: Convergence | None = None


@dataclass(frozen=True, slots=True)
class Statistic(Apply):
    """A statistic of an output over the whole simulation, known once the trials are done.

    ``kind`` is one of :data:`STATISTICS`; ``argument`` is the probability of a
    ``percentile`` (0 to 1) or the value of a ``target`` (the probability of an output at
    or below it), None otherwise. An ``Apply`` without arguments to the front end (so
    formulas combine it like any value); it never reaches a back end: only reports use it.
    Make one with :func:`statistic`.
    """

    kind: str = "mean"
    output: str = ""
    argument: float | None = None


def statistic(kind: str, output: str, argument: float | None = None) -> Statistic:
    """``Statistic(kind, output, argument)``."""
    return Statistic("statistic", (), "", kind, output, argument)


#: Statistics a report may use (``RiskMean``... in a cell; kurtosis is not excess: normal is 3).
STATISTICS = (
    "mean",
    "stddev",
    "variance",
    "min",
    "max",
    "range",
    "skewness",
    "kurtosis",
    "percentile",
    "target",
    "target_above",
    "count",
    "errors",
)


@dataclass(frozen=True, slots=True)
class Report:
    """A reporting cell (``=RiskMean(B7)/1000``): an expression of Const, Apply and
    :class:`Statistic` nodes, evaluated with the simulation's results."""

    name: str
    address: str
    node: Node


@dataclass(frozen=True, slots=True)
class Correlation:
    """A rank-correlation matrix over some inputs (``RiskCorrmat``), realised by a copula."""

    name: str
    streams: tuple[int, ...]
    matrix: tuple[tuple[float, ...], ...]


@dataclass(frozen=True, slots=True)
class Model:
    """A compiled model: inputs ordered by stream, outputs, correlations, warnings, reports."""

    inputs: tuple[Sample, ...]
    outputs: tuple[Output, ...]
    correlations: tuple[Correlation, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    reports: tuple[Report, ...] = field(default=())


def children(node: Node) -> tuple[Node | Table, ...]:
    """The operands of a node: arguments of an Apply, parameters of a Sample."""
    if isinstance(node, Apply):
        return node.args
    if isinstance(node, Sample):
        return node.params
    return ()


def postorder(roots: Sequence[Node]) -> list[Node]:
    """Distinct nodes (by identity) reachable from ``roots``, children before parents.

    Iterative, so a chain of any depth (a 100,000-cell dependency chain) is fine.
    """
    order: list[Node] = []
    seen: set[int] = set()
    stack: list[tuple[Node, bool]] = [(r, False) for r in reversed(roots)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend(
            (k, False)
            for k in reversed(children(node))
            if not isinstance(k, Table) and id(k) not in seen
        )
    return order
