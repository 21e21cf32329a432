"""The CPU backend: an ``ir.Model`` compiled once into a vectorised evaluator over chunks of trials.

Compilation orders the model's distinct nodes topologically. A chunk is evaluated in
cache-sized tiles of trials (on all CPUs); within a tile each node is one NumPy operation
over the tile's trials, and each intermediate array is released after its last use. Memory
is the chunk's outputs and inputs (8 bytes per trial each) plus a few tiles of live
intermediates: bounded by the chunk size, never by the number of trials.

Backend protocol (the CUDA runner implements it too)::

    evaluator = compile_numpy(model, seed=seed, sampling="mc")   # or "lhs", "sobol"
    outputs, inputs = evaluator.evaluate(first_trial, count)

``outputs``/``inputs`` map each output and input name to a float64 array of the trials
``[first_trial, first_trial + count)``. Same (model, seed, sampling) ⇒ the same bits for a
trial however the trials are chunked. Excel errors (``#DIV/0!``, ``#NUM!``, ``#N/A``) are NaN.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from . import compound, rng, sampling, uniforms
from .correlation import copula_factor, correlate
from .errors import FormulaError, ModelError
from .excel import registry
from .excel.arrays import DIV0, NA, NUM, REF, VALUE, propagate
from .ir import Apply, Const, Model, Node, Sample, Table, children

__all__ = ["FUNCTIONS", "Evaluator", "NumpyEvaluator", "compile_numpy", "excel_round"]

SAMPLINGS = uniforms.SAMPLINGS
TILE = sampling.LHS_BLOCK  # trials evaluated together: fits in cache, one LHS block


@dataclass(frozen=True)
class _Step:
    """Compute register ``slot``; ``args`` are register numbers or Tables."""

    slot: int
    kind: str  # "const" | "sample" | "apply"
    node: Node
    args: tuple[int | Table, ...]
    fn: Callable[..., object] | None
    release: tuple[int, ...]  # registers whose last use is this step


class Evaluator(Protocol):
    """The backend protocol: a compiled model that evaluates any range of trials.

    ``kept`` are the inputs (streams) whose values ``evaluate`` returns, set by ``keep``;
    ``bytes_per_trial`` what ``evaluate`` allocates per trial, for the memory plan.
    """

    backend: str
    kept: tuple[int, ...]

    @property
    def bytes_per_trial(self) -> int:
        """Memory ``evaluate`` allocates per trial."""
        ...

    def keep(self, kept: tuple[int, ...]) -> None:
        """Return the values of these inputs only."""
        ...

    def evaluate(
        self, first_trial: int, count: int
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Per-trial float64 values of every output and input, by name."""
        ...


class NumpyEvaluator:
    """A model compiled for NumPy; ``evaluate`` any trial range, in any order, any times."""

    backend = "numpy"

    def __init__(
        self,
        model: Model,
        seed: int,
        sampling_method: str,
        threads: int | None = None,
        kept: tuple[int, ...] | None = None,
    ) -> None:
        if sampling_method not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling_method!r}")
        if not 0 <= seed <= rng.MAX_SEED:
            raise ValueError(f"seed must be in [0, 2**64), got {seed}")
        self.model = model
        self.seed = seed
        self.sampling = sampling_method
        self.threads = threads or os.cpu_count() or 1
        self.tile = TILE
        self._factors = [(c.streams, copula_factor(c.matrix, c.name)) for c in model.correlations]
        correlated = {s for c in model.correlations for s in c.streams}
        # Copies of a correlated input (RiskSimtable) take its uniforms after the copula.
        self._copies = [
            (s.stream, s.draws_from) for s in model.inputs if s.draws_from in correlated
        ]
        self.keep(tuple(range(len(model.inputs))) if kept is None else kept)

    def keep(self, kept: tuple[int, ...]) -> None:
        """Hand back the values of these inputs (streams) only; the others are released as
        soon as nothing needs them."""
        self.kept = kept
        self._steps, self._slots = _schedule(self.model, kept)
        correlated = sum(len(streams) for streams, _ in self._factors)
        self.live = _live_peak(self._steps) + correlated

    @property
    def bytes_per_trial(self) -> int:
        """Memory ``evaluate`` allocates per trial of the chunk: the outputs and kept inputs
        (a tile's intermediates come on top: ``threads * tile * 8 * live``)."""
        return 8 * (len(self.model.outputs) + len(self.kept))

    @property
    def registers(self) -> int:
        """Distinct nodes: an upper bound on the arrays alive at once (8 bytes per trial each)."""
        return len(self._steps)

    def _draw(self, stream: int, first: int, count: int) -> np.ndarray:
        return uniforms.draw(self.model, stream, self.seed, self.sampling, first, count)

    def _correlated(self, first: int, count: int) -> dict[int, np.ndarray]:
        """The uniforms of correlated inputs, through their copulas; the others are drawn when
        their input is sampled, so no more than that input's uniforms are alive."""
        u: dict[int, np.ndarray] = {}
        for streams, factor in self._factors:
            drawn = [self._draw(s, first, count) for s in streams]
            u.update(zip(streams, correlate(drawn, factor), strict=True))
        for copy, source in self._copies:
            u[copy] = u[source].copy()
        return u

    def evaluate(
        self, first_trial: int, count: int
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Per-trial float64 values of every output and input for ``[first_trial, +count)``.

        The range is cut into tiles aligned to multiples of ``tile`` trials (``TILE``, cache
        sized, unless the memory plan of a wide model makes them smaller), evaluated on
        ``threads`` threads (NumPy and SciPy release the GIL); each trial's value depends only
        on its index, so neither the tiling nor the thread count changes any bit.
        """
        if first_trial < 0 or count < 0:
            raise ValueError("first_trial and count must be non-negative")
        outputs = {o.name: np.empty(count) for o in self.model.outputs}
        inputs = {self.model.inputs[s].name: np.empty(count) for s in self.kept}
        end = first_trial + count
        starts = range(first_trial - first_trial % self.tile, end, self.tile)
        tiles = [(max(a, first_trial), min(a + self.tile, end)) for a in starts]

        def fill(tile: tuple[int, int]) -> None:
            lo, hi = tile
            outs, ins = self._evaluate_tile(lo, hi - lo)
            for target, values in ((outputs, outs), (inputs, ins)):
                for name, v in values.items():
                    target[name][lo - first_trial : hi - first_trial] = v

        if self.threads > 1 and len(tiles) > 1:
            with ThreadPoolExecutor(min(self.threads, len(tiles))) as pool:
                list(pool.map(fill, tiles))
        else:
            for tile in tiles:
                fill(tile)
        return outputs, inputs

    def _evaluate_tile(self, first: int, count: int) -> tuple[dict[str, Any], dict[str, Any]]:
        u = self._correlated(first, count)
        regs: list[Any] = [None] * len(self._steps)
        with np.errstate(all="ignore"):
            for step in self._steps:
                args = [a if isinstance(a, Table) else regs[a] for a in step.args]
                node = step.node
                if isinstance(node, Const):
                    value: Any = float(node.value)
                elif isinstance(node, Sample):
                    drawn = u.pop(node.stream, None)
                    if drawn is None:
                        drawn = self._draw(node.stream, first, count)
                    value = sampling.sample(node.distribution, drawn, tuple(args), node.truncate)
                elif isinstance(node, Apply) and node.fn == compound.FUNCTION:
                    stream = compound.severity(node).stream
                    source = uniforms.source(self.model, stream).stream
                    value = compound.evaluate(node, args, self._draw(stream, first, count), source)
                else:
                    assert step.fn is not None
                    value = step.fn(*args)
                regs[step.slot] = value
                for r in step.release:
                    regs[r] = None
        outputs = {o.name: regs[self._slots[id(o.node)]] for o in self.model.outputs}
        inputs = {
            self.model.inputs[s].name: regs[self._slots[id(self.model.inputs[s])]]
            for s in self.kept
        }
        return outputs, inputs


def compile_numpy(
    model: Model,
    *,
    seed: int,
    sampling: str = "mc",
    threads: int | None = None,
    kept: tuple[int, ...] | None = None,
) -> NumpyEvaluator:
    """Compile ``model`` for the CPU; a ``ModelError`` names the cell of anything unsupported.

    ``threads`` defaults to the number of CPUs; results do not depend on it. ``kept``: the
    inputs (streams) whose values ``evaluate`` returns, default all.
    """
    return NumpyEvaluator(model, seed, sampling, threads, kept)


def _live_peak(steps: list[_Step]) -> int:
    """Most arrays alive at once while a tile is evaluated, plus a few of a function's own."""
    live: set[int] = set()
    peak = 0
    for step in steps:
        if step.kind != "const":
            live.add(step.slot)
        peak = max(peak, len(live))
        live.difference_update(step.release)
    return peak + 3


def _schedule(model: Model, kept_inputs: tuple[int, ...]) -> tuple[list[_Step], dict[int, int]]:
    """Distinct nodes in topological order, and a register for every node object (by id).

    Equal sub-expressions share a register: nodes are keyed bottom-up by (kind, operands'
    registers), which costs O(size) even for deep chains (dataclass ``__hash__`` would
    rehash whole subtrees at every level).
    """
    for i, s in enumerate(model.inputs):
        if s.stream != i:
            raise ModelError(f"input {s.name!r} has stream {s.stream}, expected {i}", s.address)
    slots: dict[int, int] = {}
    by_key: dict[tuple[object, ...], int] = {}
    order: list[tuple[int, Node, tuple[int | Table, ...]]] = []
    roots = [o.node for o in model.outputs] + list(model.inputs)
    stack: list[tuple[Node, bool]] = [(n, False) for n in reversed(roots)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in slots:
            continue
        kids = [k for k in children(node) if not isinstance(k, Table)]
        if not expanded:
            stack.append((node, True))
            stack.extend((k, False) for k in reversed(kids) if id(k) not in slots)
            continue
        args = tuple(k if isinstance(k, Table) else slots[id(k)] for k in children(node))
        key = _key(node, args)
        if key not in by_key:
            by_key[key] = len(order)
            order.append((len(order), node, args))
        slots[id(node)] = by_key[key]
    kept = {slots[id(o.node)] for o in model.outputs}
    kept |= {slots[id(model.inputs[s])] for s in kept_inputs}
    last_use: dict[int, int] = {}
    for slot, _, args in order:
        last_use.setdefault(slot, slot)  # a value nothing reads is released at once
        for a in args:
            if isinstance(a, int):
                last_use[a] = slot
    releases: dict[int, list[int]] = {}
    for reg, at in last_use.items():
        if reg not in kept:
            releases.setdefault(at, []).append(reg)
    steps = [
        _Step(slot, _kind(node), node, args, _function(node), tuple(releases.get(slot, ())))
        for slot, node, args in order
    ]
    return steps, slots


def _key(node: Node, args: tuple[int | Table, ...]) -> tuple[object, ...]:
    if isinstance(node, Const):
        return ("const", float(node.value))
    if isinstance(node, Sample):
        return ("sample", node.stream)
    return ("apply", node.fn, args)


def _kind(node: Node) -> str:
    return "const" if isinstance(node, Const) else "sample" if isinstance(node, Sample) else "apply"


def _function(node: Node) -> Callable[..., object] | None:
    if isinstance(node, Sample):
        if node.distribution not in sampling.DISTRIBUTIONS:
            raise FormulaError("unsupported distribution", node.address, node.distribution)
        return None
    if not isinstance(node, Apply) or node.fn == compound.FUNCTION:
        return None
    fn = FUNCTIONS.get(node.fn)
    if fn is None:
        raise FormulaError("function not supported by the NumPy backend", node.address, node.fn)
    return fn


# --- Excel semantics over arrays ---------------------------------------------------------
# Values are float64 arrays (or Python floats for constants); NaN is an Excel error (its
# payload the error's code, see xlerror) and propagates, the first argument's first;
# booleans are 1.0/0.0. Every function works element-wise on whole chunks. The functions of
# the Excel registry (services/engine/excel) join these at the end of the module.

_NAN = float("nan")

Value = Any  # a float (constant) or a float64 array over the chunk


def _values(args: tuple[Value | Table, ...]) -> list[Value]:
    """Flatten arguments: a Table contributes its values (row-major), others themselves."""
    out: list[Value] = []
    for a in args:
        out.extend(a.values if isinstance(a, Table) else (a,))
    return out


def _error_if(mask: Value, value: Value, error: float = NUM) -> Value:
    return np.where(mask, error, value)


def _div(a: Value, b: Value) -> Value:
    return propagate(_error_if(np.equal(b, 0.0), np.divide(a, b), DIV0), a, b)


def _compare(op: Callable[[Value, Value], Value]) -> Callable[[Value, Value], Value]:
    def compare(a: Value, b: Value) -> Value:
        return propagate(np.asarray(op(a, b), dtype=np.float64), a, b)

    return compare


def _if(cond: Value, then: Value, other: Value = 0.0) -> Value:
    return propagate(np.where(np.not_equal(cond, 0.0), then, other), cond)


def _logical(reduce: Callable[[Value, Value], Value]) -> Callable[..., Value]:
    def apply(*args: Value) -> Value:
        vals = _values(args)
        acc: Value = np.not_equal(vals[0], 0.0)
        for v in vals[1:]:
            acc = reduce(acc, np.not_equal(v, 0.0))
        return propagate(np.asarray(acc, dtype=np.float64), *vals)

    return apply


def _not(a: Value) -> Value:
    return propagate(np.equal(a, 0.0).astype(np.float64), a)


def _iferror(a: Value, alt: Value) -> Value:
    return np.where(np.isfinite(a), a, alt)


def _fold(op: np.ufunc, vals: list[Value]) -> Value:
    """``op`` over the values left to right, accumulating in place once an array is ours."""
    acc: Value = vals[0]
    owned = False
    for v in vals[1:]:
        if owned and np.ndim(v) <= 1:
            op(acc, v, out=acc)
        else:
            acc = op(acc, v)
            owned = np.ndim(acc) == 1
    return acc


def _first_error(result: Value, vals: list[Any] | tuple[Any, ...]) -> Value:
    """``result``, its NaN trials replaced by the first error among ``vals`` (the payload a
    NaN operand passes through arithmetic is the hardware's choice, not Excel's)."""
    return propagate(result, *vals) if np.isnan(result).any() else result


def _sum(*args: Value) -> Value:
    vals = _values(args)
    return _first_error(_fold(np.add, vals), vals)


def _average(*args: Value) -> Value:
    vals = _values(args)
    return np.divide(_sum(*vals), len(vals))


def _extreme(op: np.ufunc) -> Callable[..., Value]:
    def apply(*args: Value) -> Value:
        vals = _values(args)
        return _first_error(_fold(op, vals), vals)

    return apply


def _arithmetic(op: Callable[..., Value]) -> Callable[..., Value]:
    """An operator or function with Excel's error rule: the first error argument."""

    def apply(*args: Value) -> Value:
        return _first_error(op(*args), args)

    return apply


def _sumproduct(*args: Value) -> Value:
    """SUMPRODUCT of constant Tables of one shape, or of a single range (its sum).

    The front end lowers SUMPRODUCT over uncertain ranges to ``sum(mul(a1, b1), ...)``.
    """
    if len(args) > 1 and all(isinstance(a, Table) for a in args):
        return float(np.sum(np.prod([np.asarray(a.values) for a in args], axis=0)))
    return _sum(*args)


def _pow(a: Value, b: Value) -> Value:
    r = np.power(a, b)  # NumPy says 1 for 1^NaN and NaN^0; Excel propagates the error
    r = _error_if(~np.isfinite(r), r)  # overflow, (-8)^(1/3)
    r = _error_if(np.equal(a, 0.0) & np.equal(b, 0.0), r)  # 0^0 is #NUM!
    r = _error_if(np.equal(a, 0.0) & np.less(b, 0.0), r, DIV0)  # 0^-1
    return propagate(r, a, b)


def _ln(a: Value) -> Value:
    return propagate(_error_if(~np.greater(a, 0.0), np.log(a)), a)  # #NUM! for 0 too


def _log10(a: Value) -> Value:
    return propagate(_error_if(~np.greater(a, 0.0), np.log10(a)), a)


def _log(a: Value, base: Value = 10.0) -> Value:
    ok = np.greater(a, 0.0) & np.greater(base, 0.0)
    r = _error_if(np.equal(base, 1.0), np.divide(np.log(a), np.log(base)), DIV0)
    return propagate(_error_if(~ok, r), a, base)


def _scale(digits: Value) -> Value:
    return np.power(10.0, np.trunc(digits))


def excel_round(x: Value, digits: Value) -> Value:
    """Excel ROUND: half away from zero at ``digits`` decimals (negative: tens, hundreds...).

    The binary value is rounded (as ``catalog.evaluate`` folds constants): ``2.675`` is
    stored just below and gives 2.67, where Excel, working on 15 digits, shows 2.68.
    """
    f = _scale(digits)
    return propagate(np.sign(x) * np.floor(np.abs(x) * f + 0.5) / f, x, digits)


def _roundup(x: Value, digits: Value) -> Value:
    f = _scale(digits)
    return propagate(np.sign(x) * np.ceil(np.abs(x) * f) / f, x, digits)


def _rounddown(x: Value, digits: Value) -> Value:
    f = _scale(digits)
    return propagate(np.sign(x) * np.floor(np.abs(x) * f) / f, x, digits)


def _mod(a: Value, b: Value) -> Value:
    r = np.subtract(a, np.multiply(b, np.floor(np.divide(a, b))))
    return propagate(_error_if(np.equal(b, 0.0), r, DIV0), a, b)


def _npv(rate: Value, *args: Value) -> Value:
    acc: Value = 0.0
    growth: Value = 1.0
    base = np.add(1.0, rate)
    for v in _values(args):
        growth = np.multiply(growth, base)
        acc = np.add(acc, np.divide(v, growth))
    return _first_error(acc, (rate, *_values(args)))


def _annuity(rate: Value, nper: Value, kind: Value) -> tuple[Value, Value, Value]:
    """(1+r)^n, the payment factor (1+r·[type≠0])((1+r)^n-1)/r (n when r = 0), r == 0."""
    growth = np.power(np.add(1.0, rate), nper)
    zero = np.equal(rate, 0.0)
    factor = np.where(
        zero,
        nper,
        np.multiply(
            np.add(1.0, np.multiply(rate, np.not_equal(kind, 0.0))), np.divide(growth - 1.0, rate)
        ),
    )
    return growth, factor, zero


def _pv(rate: Value, nper: Value, pmt: Value, fv: Value = 0.0, kind: Value = 0.0) -> Value:
    growth, factor, _ = _annuity(rate, nper, kind)
    r = np.negative(np.divide(np.add(fv, np.multiply(pmt, factor)), growth))
    return propagate(r, rate, nper, pmt, fv, kind)


def _fv(rate: Value, nper: Value, pmt: Value, pv: Value = 0.0, kind: Value = 0.0) -> Value:
    growth, factor, _ = _annuity(rate, nper, kind)
    r = np.negative(np.add(np.multiply(pv, growth), np.multiply(pmt, factor)))
    return propagate(r, rate, nper, pmt, pv, kind)


def _pmt(rate: Value, nper: Value, pv: Value, fv: Value = 0.0, kind: Value = 0.0) -> Value:
    growth, factor, _ = _annuity(rate, nper, kind)
    r = _div(np.negative(np.add(np.multiply(pv, growth), fv)), factor)
    return propagate(r, rate, nper, pv, fv, kind)


def _choose(index: Value, *options: Value) -> Value:
    k = np.floor(index)
    acc: Value = VALUE
    for i, v in enumerate(options, start=1):
        acc = np.where(np.equal(k, i), v, acc)
    return propagate(acc, index)


def _grid(table: Table) -> np.ndarray:
    return np.asarray(table.values, dtype=np.float64).reshape(table.rows, table.cols)


def _pick(grid: np.ndarray, row: Value, col: Value) -> Value:
    r = np.floor(row) - 1.0
    c = np.floor(col) - 1.0
    ok = (r >= 0) & (r < grid.shape[0]) & (c >= 0) & (c < grid.shape[1])
    ri = np.where(ok, r, 0).astype(np.intp)
    ci = np.where(ok, c, 0).astype(np.intp)
    return propagate(_error_if(~ok, grid[ri, ci], REF), row, col)


def _index(table: Table, row: Value, col: Value | None = None) -> Value:
    grid = _grid(table)
    if col is None:  # a single row or column indexed by one number
        if grid.shape[0] == 1:
            return _pick(grid, 1.0, row)
        return _pick(grid, row, 1.0)
    return _pick(grid, row, col)


def _position(keys: np.ndarray, x: Value, match_type: Value) -> Value:
    """1-based MATCH position of ``x`` in ``keys`` (NaN when absent), for a constant type.

    Same definition as ``catalog.evaluate`` (constant folding): exact → first equal key.
    """
    kind = float(np.asarray(match_type).flat[0]) if np.ndim(match_type) else float(match_type)
    if kind == 0:
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        pos = np.minimum(np.searchsorted(sorted_keys, x, side="left"), len(keys) - 1)
        return propagate(_error_if(sorted_keys[pos] != x, order[pos] + 1.0, NA), x)
    # The last position whose key is <= x (type 1) or >= x (type -1): a binary search
    # when the keys are sorted that way (the case Excel documents), else a scan.
    signed = keys if kind > 0 else -keys
    target = np.asarray(x if kind > 0 else np.negative(x), dtype=np.float64)
    if np.all(np.diff(signed) >= 0):
        n = np.searchsorted(signed, target, side="right").astype(np.float64)
    else:
        n = np.zeros(target.shape)
        for i, k in enumerate(signed, start=1):
            n = np.where(k <= target, float(i), n)
    return propagate(_error_if(n == 0, n, NA), x)


def _match(x: Value, table: Table, match_type: Value = 1.0) -> Value:
    return _position(np.asarray(table.values, dtype=np.float64), x, match_type)


def _vlookup(x: Value, table: Table, col: Value, range_lookup: Value = 1.0) -> Value:
    grid = _grid(table)
    exact = 0.0 if np.all(np.equal(range_lookup, 0.0)) else 1.0
    return _pick(grid, _position(grid[:, 0], x, exact), col)


def _unsupported_text(*_args: Value) -> Value:
    return VALUE  # text results have no numeric value (#VALUE! in arithmetic)


FUNCTIONS: dict[str, Callable[..., Value]] = {
    "add": _arithmetic(np.add),
    "sub": _arithmetic(np.subtract),
    "mul": _arithmetic(np.multiply),
    "div": _div,
    "pow": _pow,
    "neg": _arithmetic(np.negative),
    "percent": _arithmetic(lambda a: np.divide(a, 100.0)),
    "eq": _compare(np.equal),
    "ne": _compare(np.not_equal),
    "lt": _compare(np.less),
    "le": _compare(np.less_equal),
    "gt": _compare(np.greater),
    "ge": _compare(np.greater_equal),
    "concat": _unsupported_text,
    "if": _if,
    "and": _logical(np.logical_and),
    "or": _logical(np.logical_or),
    "not": _not,
    "iferror": _iferror,
    "sum": _sum,
    "sumproduct": _sumproduct,
    "average": _average,
    "min": _extreme(np.minimum),
    "max": _extreme(np.maximum),
    "abs": _arithmetic(np.abs),
    "exp": _arithmetic(np.exp),
    "ln": _ln,
    "log": _log,
    "log10": _log10,
    "sqrt": _arithmetic(np.sqrt),
    "power": _pow,
    "round": excel_round,
    "roundup": _roundup,
    "rounddown": _rounddown,
    "int": _arithmetic(np.floor),
    "mod": _mod,
    "sign": _arithmetic(np.sign),
    "npv": _npv,
    "pv": _pv,
    "fv": _fv,
    "pmt": _pmt,
    "choose": _choose,
    "index": _index,
    "match": _match,
    "vlookup": _vlookup,
    **{name: prim.numpy for name, prim in registry.PRIMITIVES.items()},
}
