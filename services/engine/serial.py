"""A compiled model as bytes: versioned, compressed JSON of the IR, never executable.

Layout: ``b"ALEA-IR/<format>\\n"`` then zlib-compressed JSON::

    {"nodes": [...], "tables": [...], "inputs": [...], "outputs": [...],
     "correlations": [...], "warnings": [...], "reports": [...]}

``nodes`` lists every distinct node once, children before parents (so a DAG of any depth is
written and read without recursion, and shared sub-expressions stay shared):
``["c", value]``, ``["s", stream, distribution, params, name, address, truncate, seed]``,
``["a", fn, args, address]``, ``["t", kind, output, argument]`` (a statistic of a report).
A reference to a node is its index; a reference to table *k* is ``-1 - k``. Floats are JSON
numbers (``repr`` round-trips every finite double), with ``"inf"`` and ``"-inf"``, and
Excel errors by name (``"#N/A"``; ``"nan"`` is ``#NUM!``). ``reports`` holds ``[name,
address, node]`` of each reporting cell; ``outputs`` ``[name, address, node, convergence]``,
``convergence`` an object of :class:`~.ir.Convergence`'s fields or null.

Format history: 0 was a pickle of the IR (before format 1); 1 wrote every NaN as ``"nan"``
(an error constant lost its type) and had no reports; 2 had no convergence tests in its
outputs. :func:`load_model` still reads them all, format 0 with an unpickler that can build
nothing but IR nodes, so a row written by an older version loads and a crafted pickle cannot
run code. Newer formats are refused by name.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import zlib
from dataclasses import asdict
from typing import Any

from services.engine import ir, xlerror
from services.engine.convergence import criterion
from services.engine.ir import (
    Apply,
    Const,
    Convergence,
    Correlation,
    Model,
    Node,
    Output,
    Report,
    Sample,
    Statistic,
    Table,
    statistic,
)

__all__ = ["FORMAT", "dump_model", "load_model"]

FORMAT = 3
_READS = ("1", "2", "3")
_MAGIC = b"ALEA-IR/"
_MAX_JSON_BYTES = 1 << 30  # a model of 200,000 formula cells is far below this
_IR_CLASSES = ("Apply", "Const", "Correlation", "Model", "Output", "Sample", "Table")
_IR_MODULES = ("services.engine.ir", "services.simulation.engine.ir")  # the engine's homes

Ref = int


def dump_model(model: Model) -> bytes:
    """The model in the current format (see the module docstring)."""
    nodes: list[list[Any]] = []
    tables: list[list[Any]] = []
    index: dict[int, int] = {}
    table_index: dict[int, int] = {}

    def ref(x: Node | Table) -> Ref:
        if isinstance(x, Table):
            if id(x) not in table_index:
                table_index[id(x)] = len(tables)
                tables.append([[_num(v) for v in x.values], x.rows, x.cols])
            return -1 - table_index[id(x)]
        return index[id(x)]

    roots: list[Node] = [o.node for o in model.outputs] + list(model.inputs)
    for node in ir.postorder(roots + [r.node for r in model.reports]):
        if isinstance(node, Const):
            row: list[Any] = ["c", _num(node.value)]
        elif isinstance(node, Sample):
            truncate = None if node.truncate is None else [_bound(v) for v in node.truncate]
            params = [ref(p) for p in node.params]
            row = ["s", node.stream, node.distribution, params, node.name, node.address]
            row += [truncate, node.seed]
        elif isinstance(node, Statistic):
            row = ["t", node.kind, node.output, node.argument]
        else:
            row = ["a", node.fn, [ref(a) for a in node.args], node.address]
        index[id(node)] = len(nodes)
        nodes.append(row)
    document = {
        "nodes": nodes,
        "tables": tables,
        "inputs": [index[id(s)] for s in model.inputs],
        "outputs": [
            [o.name, o.address, index[id(o.node)], _convergence(o.convergence)]
            for o in model.outputs
        ],
        "correlations": [
            [c.name, list(c.streams), [[_num(v) for v in row] for row in c.matrix]]
            for c in model.correlations
        ],
        "warnings": list(model.warnings),
        "reports": [[r.name, r.address, index[id(r.node)]] for r in model.reports],
    }
    body = json.dumps(document, separators=(",", ":"), allow_nan=False).encode()
    return _MAGIC + str(FORMAT).encode() + b"\n" + zlib.compress(body, 6)


def load_model(data: bytes) -> Model:
    """A model written by :func:`dump_model` (any format up to :data:`FORMAT`).

    Raises ``ValueError`` for bytes that are not a stored model or come from a newer format.
    """
    if data.startswith(_MAGIC):
        head, _, body = data.partition(b"\n")
        version = head[len(_MAGIC) :].decode("ascii", "replace")
        if version not in _READS:
            raise ValueError(
                f"the model is stored in format {version}; this version reads formats 0 to "
                f"{FORMAT}: recompile it from its workbook or spec"
            )
        return _from_document(_inflate(body))
    if data[:1] == b"\x80":
        return _from_pickle(data)
    raise ValueError("not a stored model")


def _inflate(body: bytes) -> dict[str, Any]:
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(body, _MAX_JSON_BYTES)
    except zlib.error as exc:
        raise ValueError(f"corrupt stored model: {exc}") from None
    if inflater.unconsumed_tail:
        raise ValueError("stored model larger than the format allows")
    document = json.loads(text)
    if not isinstance(document, dict):
        raise ValueError("corrupt stored model")
    return document


def _from_document(doc: dict[str, Any]) -> Model:
    try:
        tables = [Table(tuple(_float(v) for v in values), r, c) for values, r, c in doc["tables"]]
        nodes: list[Node] = []

        def get(r: Ref) -> Node | Table:
            return tables[-1 - r] if r < 0 else nodes[r]

        for row in doc["nodes"]:
            kind = row[0]
            if kind == "c":
                nodes.append(Const(_float(row[1])))
            elif kind == "s":
                stream, dist, params, name, address, truncate, seed = row[1:]
                bounds = None if truncate is None else (_opt(truncate[0]), _opt(truncate[1]))
                args = tuple(get(p) for p in params)
                nodes.append(Sample(stream, dist, args, name, address, bounds, seed))
            elif kind == "a":
                nodes.append(Apply(row[1], tuple(get(a) for a in row[2]), row[3]))
            elif kind == "t":
                argument = None if row[3] is None else float(row[3])
                nodes.append(statistic(str(row[1]), str(row[2]), argument))
            else:
                raise ValueError(f"unknown node kind {kind!r}")
        inputs = tuple(nodes[i] for i in doc["inputs"])
        outputs = tuple(_output(row, nodes) for row in doc["outputs"])
        correlations = tuple(
            Correlation(name, tuple(streams), tuple(tuple(_float(v) for v in r) for r in matrix))
            for name, streams, matrix in doc["correlations"]
        )
        reports = tuple(
            Report(name, address, nodes[i]) for name, address, i in doc.get("reports", ())
        )
        model = Model(inputs, outputs, correlations, tuple(doc["warnings"]), reports)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ValueError(f"corrupt stored model: {exc!r}") from None
    if not all(isinstance(s, Sample) for s in model.inputs):
        raise ValueError("corrupt stored model: an input is not a distribution")
    return model


class _IrUnpickler(pickle.Unpickler):
    """Format 0: a pickle that may name the IR's classes and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if module in _IR_MODULES and name in _IR_CLASSES:
            return getattr(ir, name)
        raise ValueError(f"a stored model may not contain {module}.{name}")


def _from_pickle(data: bytes) -> Model:
    try:
        model = _IrUnpickler(io.BytesIO(data)).load()
    except ValueError:
        raise
    except Exception as exc:  # truncated or malformed pickles raise many types
        raise ValueError(f"corrupt stored model: {exc!r}") from None
    if not isinstance(model, Model):
        raise ValueError("corrupt stored model: not a model")
    return model


def _convergence(test: Convergence | None) -> dict[str, Any] | None:
    return None if test is None else {**asdict(test), "percentiles": list(test.percentiles)}


def _output(row: list[Any], nodes: list[Node]) -> Output:
    name, address, i, *rest = row  # formats 1 and 2: no convergence test
    test = rest[0] if rest else None
    if test is None:
        return Output(name, address, nodes[i])
    return Output(name, address, nodes[i], criterion(**test))


def _num(x: float) -> float | str:
    """A float as JSON: itself when finite, else ``"inf"``, ``"-inf"``, or an Excel error's
    name (``"nan"`` for ``#NUM!``, as format 1 wrote every NaN)."""
    if math.isnan(x):
        code = xlerror.code(x)
        return "nan" if code == xlerror.CODES["#NUM!"] else xlerror.name(x)
    return float(x) if math.isfinite(x) else repr(float(x))


def _bound(x: float | None) -> float | str | None:
    return None if x is None else _num(x)


def _float(x: float | str) -> float:
    if isinstance(x, str) and x in xlerror.CODES:
        return xlerror.error(xlerror.CODES[x])
    return float(x)


def _opt(x: float | str | None) -> float | None:
    return None if x is None else float(x)
