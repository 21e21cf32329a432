"""A ``ModelSpec`` message (or the same as a dict) → the ``ir.Model`` a workbook would give.

The spec is laid out as a small synthetic workbook and compiled by the same parser and
builder as an .xlsx, so both front ends share every rule (folding, names, errors):

- sheet ``Inputs``: row *i* holds ``=Risk<Kind>(params..., RiskName, RiskTruncate,
  RiskSeed, RiskCorrmat)`` of ``inputs[i]``; tables (discrete values, cumul points) sit in
  rows of the sheets ``Values`` and ``Probabilities``;
- sheet ``Expressions``: row *i* holds ``=`` + ``expressions[i].formula``;
- sheet ``Outputs``: row *i* holds ``=RiskOutput("name")+expression``;
- sheet ``Corr k``: the matrix of ``correlations[k]``, under the defined name ``CORR.k``;
- every input and expression name is a defined name for its cell.

Errors name spec field paths instead of cells, e.g. ``expressions[2].formula`` or
``inputs[0].distribution``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from alea.simulation.v1 import model_spec_pb2
from google.protobuf import json_format

from services.engine import catalog
from services.engine.build import Book, build_model
from services.engine.errors import CorrelationError, ModelError, ParameterError
from services.engine.formula import (
    CellContent,
    Formula,
    Name,
    parse_reference,
)
from services.engine.ir import Model
from services.engine.sheet import column_letters

_KIND_PREFIX = "DISTRIBUTION_KIND_"
#: The spec field of each table parameter of a distribution (catalog names).
_TABLE_FIELDS = {
    "values": "values",
    "x": "values",
    "probabilities": "probabilities",
    "p": "probabilities",
}
_CORR_SHEET = re.compile(r"Corr (\d+)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")  # ModelSpec's own name pattern


def model_from_spec(spec: model_spec_pb2.ModelSpec | Mapping[str, Any]) -> Model:
    """Compile a ``ModelSpec`` (message or dict in its JSON form) into a :class:`Model`."""
    if not isinstance(spec, model_spec_pb2.ModelSpec):
        try:
            spec = json_format.ParseDict(dict(spec), model_spec_pb2.ModelSpec())
        except json_format.ParseError as exc:
            raise ModelError(f"not a ModelSpec: {exc}", "spec") from None
    book = _book(spec)
    names = {f"CORR.{k}": c.name for k, c in enumerate(spec.correlations)}
    try:
        model = build_model(book)
    except CorrelationError as exc:  # say the matrix's own name, not its synthetic one
        reason = re.sub(r"CORR\.\d+", lambda m: repr(names[m[0]]), exc.reason)
        raise CorrelationError(reason, exc.location, exc.function) from None
    return replace(
        model, correlations=tuple(replace(c, name=names[c.name]) for c in model.correlations)
    )


def _book(spec: model_spec_pb2.ModelSpec) -> Book:
    sheets: dict[str, dict[tuple[int, int], CellContent]] = {
        "Inputs": {},
        "Values": {},
        "Probabilities": {},
        "Expressions": {},
        "Outputs": {},
    }
    names: dict[tuple[str | None, str], str] = {}
    named = [(i.name, f"inputs[{k}].name") for k, i in enumerate(spec.inputs)]
    named += [(e.name, f"expressions[{k}].name") for k, e in enumerate(spec.expressions)]
    _check_names(named)
    corr = _correlation_positions(spec)
    for k, item in enumerate(spec.inputs):
        names[(None, item.name.upper())] = f"Inputs!$A${k + 1}"
        sheets["Inputs"][(k + 1, 1)] = Formula(_input_formula(k, item, corr.get(item.name), sheets))
    for k, expr in enumerate(spec.expressions):
        names[(None, expr.name.upper())] = f"Expressions!$A${k + 1}"
        sheets["Expressions"][(k + 1, 1)] = Formula("=" + expr.formula.removeprefix("="))
    for k, out in enumerate(spec.outputs):
        if not out.name.strip():
            raise ModelError("an output needs a name", f"outputs[{k}].name")
        if not _NAME.fullmatch(out.expression):
            raise ModelError(
                "must be the name of an input or expression", f"outputs[{k}].expression"
            )
        label = out.name.replace('"', '""')
        sheets["Outputs"][(k + 1, 1)] = Formula(f'=RiskOutput("{label}")+{out.expression}')
    for k, c in enumerate(spec.correlations):
        n = len(c.inputs)
        if len(c.matrix) != n * n:
            where = f"correlations[{k}].matrix"
            raise ModelError(f"matrix has {len(c.matrix)} entries, expected {n * n}", where)
        sheets[f"Corr {k}"] = {(i // n + 1, i % n + 1): float(v) for i, v in enumerate(c.matrix)}
        names[(None, f"CORR.{k}")] = f"'Corr {k}'!$A$1:${_col(n)}${n}"
    return Book(sheets, names, _locator(spec))


def _check_names(entries: list[tuple[str, str]]) -> None:
    """Check that names are usable as Excel names and unique (ignoring case)."""
    seen: set[str] = set()
    for name, where in entries:
        if not _NAME.fullmatch(name):
            raise ModelError(f"{name!r} is not a name: letters, digits and _, at most 64", where)
        if not isinstance(parse_reference(name, where), Name):
            raise ModelError(f"{name!r} is not a usable name (it reads as a cell reference)", where)
        if name.upper() in ("TRUE", "FALSE") or name.upper() in seen:
            raise ModelError(f"name {name!r} is reserved or used twice", where)
        seen.add(name.upper())


def _correlation_positions(spec: model_spec_pb2.ModelSpec) -> dict[str, tuple[int, int]]:
    """input name → (correlation index, 1-based position in its matrix)."""
    inputs = {i.name for i in spec.inputs}
    out: dict[str, tuple[int, int]] = {}
    for k, c in enumerate(spec.correlations):
        for j, name in enumerate(c.inputs):
            where = f"correlations[{k}].inputs[{j}]"
            if name not in inputs:
                raise ModelError(f"no input named {name!r}", where)
            if name in out:
                raise ModelError(f"input {name!r} is already in a correlation", where)
            out[name] = (k, j + 1)
    return out


def _input_formula(
    k: int,
    item: model_spec_pb2.InputSpec,
    corr: tuple[int, int] | None,
    sheets: dict[str, dict[tuple[int, int], CellContent]],
) -> str:
    where = f"inputs[{k}].distribution"
    kind = model_spec_pb2.DistributionKind.Name(item.distribution.kind)
    dist = catalog.DISTRIBUTIONS.get(kind.removeprefix(_KIND_PREFIX).lower().replace("_", ""))
    if dist is None:
        raise ModelError(f"distribution kind {kind} is not supported", f"{where}.kind")
    scalars = len(dist.params) - len(dist.tables)
    if not all(math.isfinite(p) for p in item.distribution.parameters):
        raise ParameterError("parameters must be finite", f"{where}.parameters", dist.risk_name)
    params = [repr(float(p)) for p in item.distribution.parameters]
    if len(params) != scalars:
        raise ParameterError(
            f"takes {scalars} parameters, got {len(params)}", f"{where}.parameters", dist.risk_name
        )
    used = {_TABLE_FIELDS[dist.params[i]] for i in dist.tables}
    for field in ("values", "probabilities"):
        if getattr(item.distribution, field) and field not in used:
            raise ParameterError(
                f"{dist.risk_name} takes no {field}", f"{where}.{field}", dist.risk_name
            )
    for i in sorted(dist.tables):
        field = _TABLE_FIELDS[dist.params[i]]
        sheet, values = field.capitalize(), getattr(item.distribution, field)
        if not values:
            raise ParameterError(f"{field} must not be empty", f"{where}.{field}", dist.risk_name)
        sheets[sheet].update({(k + 1, j + 1): float(v) for j, v in enumerate(values)})
        params.append(f"{sheet}!$A${k + 1}:${_col(len(values))}${k + 1}")
    props = [f'RiskName("{item.name}")']
    for lo_field, hi_field, function in (
        ("truncate_min", "truncate_max", "RiskTruncate"),
        ("truncate_p_min", "truncate_p_max", "RiskTruncateP"),
    ):
        if item.HasField(lo_field) or item.HasField(hi_field):
            lo = repr(getattr(item, lo_field)) if item.HasField(lo_field) else ""
            hi = repr(getattr(item, hi_field)) if item.HasField(hi_field) else ""
            props.append(f"{function}({lo},{hi})")
    if item.HasField("shift"):
        props.append(f"RiskShift({item.shift!r})")
    if item.HasField("static_value"):
        props.append(f"RiskStatic({item.static_value!r})")
    if item.lock:
        props.append("RiskLock()")
    if item.HasField("seed"):
        props.append(f'RiskSeed("{item.seed}")')  # as text: exact for every uint64
    if corr is not None:
        props.append(f"RiskCorrmat(CORR.{corr[0]},{corr[1]})")
    return f"={dist.risk_name}({','.join(params + props)})"


def _col(n: int) -> str:
    return column_letters(n)


def _locator(spec: model_spec_pb2.ModelSpec) -> Callable[[str, int, int], str]:
    def locate(sheet: str, row: int, col: int) -> str:
        i = row - 1
        if sheet == "Inputs":
            return f"inputs[{i}].distribution"
        if sheet in ("Values", "Probabilities"):
            return f"inputs[{i}].distribution.{sheet.lower()}[{col - 1}]"
        if sheet == "Expressions":
            return f"expressions[{i}].formula"
        if sheet == "Outputs":
            return f"outputs[{i}].expression"
        m = _CORR_SHEET.fullmatch(sheet)
        if m is not None:
            k = int(m[1])
            return f"correlations[{k}].matrix"
        return f"{sheet}!R{row}C{col}"

    return locate
