"""Scenario tables: ``RiskSimtable`` makes one request run N simulations, one per value.

``=RiskSimtable({0.05,0.08,0.10})`` (or a row or column range of constants) is the first
value in simulation 1, the second in simulation 2...; every RiskSimtable of a model advances
together, and the number of simulations is the longest list (a shorter list is ``#N/A`` in
the simulations it has no value for, as @RISK shows ``ERR``).

The simulations run as one: :func:`expand` turns the model into a single model whose outputs
are every output of every simulation, and whose inputs are shared by all simulations except
where a simulation changes an input's parameters (``RiskNormal(RiskSimtable({1,2}), 1)``):
that input is simulation 1's, and simulations 2 to N get a copy that ``draws_from`` its
stream. So by
default every simulation sees the same uniforms trial by trial (the differences between
simulations come from the values, not from the noise); with ``vary_seeds`` every input is
copied for simulations 2 to N and draws from its own stream instead (inputs with a
``RiskSeed`` keep their draws, as in @RISK). One pass per trial evaluates every simulation,
on every back end; what the simulations share (sampling, formulas that do not depend on a
RiskSimtable) is computed once.

:func:`split` turns the expanded model's results back into per-simulation results named as
the model names its outputs and inputs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from . import xlerror
from .errors import ModelError
from .ir import (
    Apply,
    Const,
    Correlation,
    Model,
    Node,
    Output,
    Report,
    Sample,
    Statistic,
    Table,
    children,
    postorder,
)
from .stats import Results

if TYPE_CHECKING:
    from .formula import Call
    from .lowering import Lowerer

__all__ = [
    "FUNCTION",
    "MAX_COPIES",
    "MAX_SIMULATIONS",
    "Expansion",
    "expand",
    "lower",
    "simulations",
    "split",
]

FUNCTION = "risksimtable"
MAX_SIMULATIONS = 1000
"""Most values a RiskSimtable may list (each is a whole simulation)."""
MAX_COPIES = 1_000_000
"""Most nodes the simulations beyond the first may add (each is a node to compile and run per
trial: as many as the largest workbook's formulas give, a few times over)."""


def lower(lw: Lowerer, expr: Call, sheet: str) -> Node:
    """``RiskSimtable(values)``: a node whose value is the k-th value in simulation k."""
    from . import catalog  # lowering has it loaded; the services import this module without

    catalog.check_arity("RiskSimtable", len(expr.args), 1, 1, lw.where)
    table = lw.table_arg(expr.args[0], sheet, "RiskSimtable values")
    if table.rows > 1 and table.cols > 1:
        raise lw.fail("needs one row or one column of values", "RiskSimtable")
    if not all(math.isfinite(v) for v in table.values):
        raise lw.fail("the values must be numbers", "RiskSimtable")
    if len(table.values) > MAX_SIMULATIONS:
        raise lw.fail(f"at most {MAX_SIMULATIONS} simulations", "RiskSimtable")
    key = (FUNCTION, id(table), lw.where)
    if key not in lw.nodes:
        lw.nodes[key] = Apply(FUNCTION, (table,), lw.where)
    return lw.nodes[key]


def _tables(model: Model) -> list[Apply]:
    roots = [o.node for o in model.outputs] + list(model.inputs)
    found = [n for n in postorder(roots) if isinstance(n, Apply) and n.fn == FUNCTION]
    return sorted(found, key=lambda n: _address_order(n.address))


def _address_order(address: str) -> tuple[object, ...]:
    """Sheet, then column, then row (``B2`` before ``B10``, ``Z1`` before ``AA1``); a spec
    field path by its numbers (``expressions[2]`` before ``expressions[10]``)."""
    cell = re.fullmatch(r"(.*!)?\$?([A-Z]+)\$?(\d+)", address)
    if cell:
        sheet, column, row = cell.groups()
        return (0, sheet or "", len(column), column, int(row))
    parts = re.split(r"(\d+)", address)
    return (1, *((int(p), "") if p.isdigit() else (0, p) for p in parts))


def simulations(model: Model) -> int:
    """How many simulations one run of ``model`` is: its longest RiskSimtable, else 1."""
    return max((len(_values(n)) for n in _tables(model)), default=1)


def _values(node: Apply) -> tuple[float, ...]:
    table = node.args[0]
    assert isinstance(table, Table)
    return table.values


@dataclass(frozen=True)
class Expansion:
    """A model with every simulation of its RiskSimtables side by side.

    ``outputs`` maps each output of ``model`` to (simulation, 1-based; the output's own
    name); ``inputs[k]`` maps the inputs simulation ``k + 1`` uses to their own names;
    ``values[k]`` lists (cell, value or None where the list is too short) of every
    RiskSimtable in simulation ``k + 1``.
    """

    model: Model
    simulations: int
    outputs: dict[str, tuple[int, str]]
    inputs: list[dict[str, str]]
    values: list[list[tuple[str, float | None]]] = field(default_factory=list)


def expand(model: Model, vary_seeds: bool = False) -> Expansion:
    """The model of all simulations (see the module docstring); ``model`` itself when it has
    no RiskSimtable."""
    tables = _tables(model)
    count = max((len(_values(n)) for n in tables), default=1)
    if not tables:
        return Expansion(
            model,
            1,
            {o.name: (1, o.name) for o in model.outputs},
            [{s.name: s.name for s in model.inputs}],
        )
    _check_size(model, tables, count, vary_seeds)
    inputs = list(model.inputs)
    taken = {s.name for s in inputs} | {o.name for o in model.outputs}
    outputs: list[Output] = []
    correlations = list(model.correlations)
    layout_outputs: dict[str, tuple[int, str]] = {}
    layout_inputs: list[dict[str, str]] = []
    values: list[list[tuple[str, float | None]]] = []
    reports: list[Report] = []
    na = Const(xlerror.error(xlerror.CODES["#N/A"]))
    correlated = {s for c in model.correlations for s in c.streams}
    for k in range(count):
        taken_values = [(n, _values(n)[k] if k < len(_values(n)) else None) for n in tables]
        values.append([(n.address, v) for n, v in taken_values])
        seen: dict[int, Node] = {id(n): na if v is None else Const(v) for n, v in taken_values}
        fresh = vary_seeds and k > 0
        copies: dict[int, int] = {}  # original stream → its copy in this simulation
        for node in postorder([o.node for o in model.outputs] + list(model.inputs)):
            if id(node) in seen:
                continue
            if isinstance(node, Sample):
                params = tuple(p if isinstance(p, Table) else seen[id(p)] for p in node.params)
                changed = any(a is not b for a, b in zip(params, node.params, strict=True))
                independent = fresh and (node.seed is None or node.stream in correlated)
                if not (changed or independent):
                    seen[id(node)] = node
                    continue
                if k == 0:  # simulation 1 takes the input's own stream and name
                    inputs[node.stream] = seen[id(node)] = replace(node, params=params)
                    continue
                name = _unique(f"{node.name} [{k + 1}]", taken)
                copy = replace(
                    node,
                    stream=len(inputs),
                    params=params,
                    name=name,
                    draws_from=None if independent else node.stream,
                )
                copies[node.stream] = copy.stream
                inputs.append(copy)
                seen[id(node)] = copy
            elif isinstance(node, Apply):
                args = tuple(a if isinstance(a, Table) else seen[id(a)] for a in node.args)
                same = all(a is b for a, b in zip(args, node.args, strict=True))
                seen[id(node)] = node if same else Apply(node.fn, args, node.address)
            else:
                seen[id(node)] = node
        if fresh:
            correlations += _copied_correlations(model.correlations, copies, inputs, k)
        renamed: dict[str, str] = {}
        for o in model.outputs:
            name = renamed[o.name] = o.name if count == 1 else _unique(f"{o.name} [{k + 1}]", taken)
            outputs.append(replace(o, name=name, node=seen[id(o.node)]))
            layout_outputs[name] = (k + 1, o.name)
        reports += _simulation_reports(model.reports, renamed, k, count > 1)
        layout_inputs.append(
            {inputs[copies.get(s.stream, s.stream)].name: s.name for s in model.inputs}
        )
    expanded = replace(
        model,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        correlations=tuple(correlations),
        reports=tuple(reports),
    )
    return Expansion(expanded, count, layout_outputs, layout_inputs, values)


def _simulation_reports(
    reports: tuple[Report, ...], renamed: dict[str, str], k: int, several: bool
) -> list[Report]:
    """The reporting cells of simulation ``k`` (0-based): over its outputs' statistics and
    its RiskSimtable values, named ``"name [k + 1]"`` when there are several simulations."""
    out = []
    mapped: dict[int, Node | Statistic] = {}
    for node in postorder([r.node for r in reports]):
        new: Node | Statistic
        if isinstance(node, Apply) and node.fn == FUNCTION:  # this simulation's value
            listed = _values(node)
            new = Const(listed[k] if k < len(listed) else xlerror.error(xlerror.CODES["#N/A"]))
        elif isinstance(node, Statistic):
            new = replace(node, output=renamed.get(node.output, node.output))
        elif isinstance(node, Apply):
            args = tuple(a if isinstance(a, Table) else mapped[id(a)] for a in node.args)
            new = Apply(node.fn, args, node.address)
        else:
            new = node
        mapped[id(node)] = new
    for r in reports:
        name = f"{r.name} [{k + 1}]" if several else r.name
        out.append(Report(name, r.address, mapped[id(r.node)]))
    return out


def _check_size(model: Model, tables: list[Apply], count: int, vary_seeds: bool) -> None:
    """Refuse (before building anything) an expansion of more than MAX_COPIES new nodes."""
    varying = {id(n) for n in tables}
    roots = [o.node for o in model.outputs] + list(model.inputs)
    for node in postorder(roots):
        fresh = vary_seeds and isinstance(node, Sample)
        if fresh or any(id(c) in varying for c in children(node)):
            varying.add(id(node))
    copies = (len(varying) - len(tables)) * (count - 1)
    if copies > MAX_COPIES:
        raise ModelError(
            f"{count} simulations of the {len(varying) - len(tables):,} formulas and inputs "
            f"that depend on RiskSimtable make {copies:,} copies, more than {MAX_COPIES:,}: "
            "use fewer values or fewer cells that depend on them",
            tables[0].address,
            "RiskSimtable",
        )


def _copied_correlations(
    correlations: tuple[Correlation, ...], copies: dict[int, int], inputs: list[Sample], k: int
) -> list[Correlation]:
    """The correlation groups of a simulation whose inputs all draw afresh."""
    out = []
    for c in correlations:
        streams = tuple(copies.get(s, s) for s in c.streams)
        if streams != c.streams:
            out.append(replace(c, name=f"{c.name} [{k + 1}]", streams=streams))
    return out


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name} #{n}", n + 1
    taken.add(candidate)
    return candidate


def split(results: dict[str, Results], expansion: Expansion) -> list[dict[str, Results]]:
    """Per simulation, its outputs' results under their own names, with the sensitivity,
    scenario analysis and contribution to variance of the inputs that simulation used (named
    as in the model)."""
    out: list[dict[str, Results]] = [{} for _ in range(expansion.simulations)]
    for key, r in results.items():
        k, name = expansion.outputs[key]
        names = expansion.inputs[k - 1]
        sensitivity = [(names[i], rho) for i, rho in r.sensitivity if i in names]
        scenarios = [
            replace(s, inputs=[replace(i, name=names[i.name]) for i in s.inputs if i.name in names])
            for s in r.scenarios
        ]
        contribution = [replace(c, name=names[c.name]) for c in r.contribution if c.name in names]
        out[k - 1][name] = replace(
            r,
            name=name,
            sensitivity=sensitivity,
            scenarios=scenarios,
            contribution=contribution,
        )
    return out
