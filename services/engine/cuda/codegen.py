"""CUDA C source generated per ``ir.Model``: one fused kernel drawing, transforming, evaluating.

Layout of the generated source (after :data:`prelude.PRELUDE`):

* constant Tables as ``__constant__`` arrays (beyond 48 KiB in global memory), with a host
  copy for the CPU harness;
* ``alea_draw(seed, block, first, count, x)``: for every input stream, one Philox4x64-10
  block (counter ``(block, 0, 0, 0)``, key ``(seed, stream)``) gives the uniforms of trials
  ``4 block .. 4 block + 3``, stored in the input array ``x`` (row ``stream``, stride
  ``count``) exactly as ``rng.uniforms`` would produce them, and for a ``RiskResample`` input
  of method 1 or 3 (``alea_resampled``) the position of each trial's number
  (``alea_position``, as ``resample.positions``);
* ``alea_trial(x, y, stride, q)``: one trial. Reads its uniforms from ``x``, applies the
  Gaussian copula of each ``RiskCorrmat`` group (same summation order as
  ``correlation.correlate``, without fused multiply-add), computes every distinct node of
  the DAG as one ``const double`` statement (long argument lists and NPV use helper
  statements, so the source stays linear and shallow), stores each input's value into ``x``
  as soon as it is drawn, and the outputs into ``y``;
* ``alea_kernel(seed, first, count, draw, x, y)``: each thread takes whole Philox blocks
  (4 consecutive trials) in a grid-stride loop; with ``draw == 0`` the uniforms are taken as
  already in ``x`` (Latin Hypercube uniforms computed by the host);
* ``alea_host(seed, first, count, draw, x, y)``: the same loop on the CPU, for the harness.

Every function except the kernel is ``__host__ __device__``; semantics mirror
``numpy_backend`` and ``sampling`` (see :mod:`.prelude` for the numerical tolerances).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import compound, resample, sampling, xlerror
from ..errors import FormulaError, ModelError
from ..excel import registry
from ..ir import Apply, Const, Model, Node, Sample, Table, children, postorder
from ..sampling import discrete_tables, trigen_bounds
from .pieces import column_function, trial_function
from .prelude import PRELUDE

__all__ = ["CudaSource", "generate"]


@dataclass(frozen=True)
class CudaSource:
    """Generated source, the order of its input and output rows, and its tables.

    ``data`` (float64) is what the trial function reads through ``q``: the quantile tables
    of constant-parameter distributions, when generated with ``tabulate``; else empty.
    """

    source: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    data: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def key(self) -> str:
        """A hash of the source, to cache compiled modules."""
        return hashlib.sha256(self.source.encode()).hexdigest()


def literal(x: float) -> str:
    """A C double literal that round-trips ``x`` exactly (an Excel error keeps its code)."""
    if math.isnan(x):
        return f'__builtin_nan("{xlerror.code(x)}")'
    if math.isinf(x):
        return "INFINITY" if x > 0 else "(-INFINITY)"
    return f"({float(x).hex()})" if x < 0 else float(x).hex()


Args = tuple[Any, ...]
"""A node's operands as C: expressions (``str``), and ``Table``s where a function takes a range."""

_CONSTANT_BYTES = 48 * 1024  # of the 64 KiB constant bank; larger tables live in global memory
_CMP = {"eq": 0, "ne": 1, "lt": 2, "le": 3, "gt": 4, "ge": 5}
_UNARY = {
    "neg": "xl_neg({0})",
    "percent": "xl_div({0}, 100.0)",
    "abs": "xl_abs({0})",
    "exp": "xl_exp({0})",
    "ln": "xl_ln({0})",
    "log10": "xl_log10({0})",
    "sqrt": "xl_sqrt({0})",
    "int": "xl_int({0})",
    "sign": "xl_sign({0})",
    "not": "xl_not({0})",
}
_BINARY = {
    "add": "xl_add({0}, {1})",
    "sub": "xl_sub({0}, {1})",
    "mul": "xl_mul({0}, {1})",
    "div": "xl_div({0}, {1})",
    "iferror": "xl_iferror({0}, {1})",
    "mod": "xl_mod({0}, {1})",
    "round": "xl_round({0}, {1})",
    "roundup": "xl_roundup({0}, {1})",
    "rounddown": "xl_rounddown({0}, {1})",
}
_VALID = {
    "normal": "{1} > 0",
    "triang": "alea_ordered({0}, {1}, {2})",
    "trigen": "valid_trigen({0}, {1}, {2}, {3}, {4})",
    "pert": "alea_ordered({0}, {1}, {2})",
    "uniform": "{0} < {1}",
    "lognorm": "{0} > 0 && {1} > 0",
    "lognorm2": "{1} > 0",
    "binomial": "{0} >= 0 && {0} == floor({0}) && {1} >= 0 && {1} <= 1",
    "poisson": "{0} > 0",
    "expon": "{0} > 0",
    "gamma": "{0} > 0 && {1} > 0",
    "beta": "{0} > 0 && {1} > 0",
    "betageneral": "{0} > 0 && {1} > 0 && {2} < {3}",
    "weibull": "{0} > 0 && {1} > 0",
}
_DISCRETE = {"discrete", "binomial", "poisson"}


@dataclass(frozen=True)
class _Family:
    """How the source samples a registered distribution family (see ``register_distribution``)."""

    valid: str
    function: str
    units: tuple[str, ...]
    arguments: Callable[[list[str], list[Table], Callable[..., str]], str] | None


_FAMILIES: dict[str, _Family] = {}


def register_distribution(
    name: str,
    valid: str,
    function: str,
    units: tuple[str, ...],
    arguments: Callable[[list[str], list[Table], Callable[..., str]], str] | None,
    discrete: bool,
) -> None:
    """Sample ``name`` by ``ppf_<function>(u, args)`` and ``cdf_<function>(x, args)`` from the
    C++ ``units``; ``valid`` formats the scalar parameters into the validity test; without
    ``arguments(scalars, tables, table)`` the arguments are the scalar parameters."""
    _FAMILIES[name] = _Family(valid, function, units, arguments)
    if discrete:
        _DISCRETE.add(name)


class _Writer:
    """Turns the DAG into C statements, one per distinct node, and tables into arrays."""

    def __init__(self, model: Model, tabulate: bool, columns: bool) -> None:
        self.model = model
        self.tabulate = tabulate
        self.columns = columns
        self.column_lines: list[str] = []
        self.data: list[np.ndarray] = []
        self._data_size = 0
        self.lines: list[str] = []
        self.tables: list[str] = []
        self._table_names: dict[tuple[float, ...], str] = {}
        self._table_bytes = 0
        self._correlated = {s for c in model.correlations for s in c.streams}
        self._names: dict[int, str] = {}
        self._by_key: dict[tuple[object, ...], str] = {}
        self._offsets: list[tuple[int, np.ndarray]] = []
        self.units: set[str] = set()
        self.helpers: list[str] = []
        roots = [o.node for o in model.outputs] + list(model.inputs)
        self._severities = {
            compound.severity(n).stream
            for n in postorder(roots)
            if isinstance(n, Apply) and n.fn == compound.FUNCTION
        }

    # -- tables
    def table(self, values: tuple[float, ...] | np.ndarray) -> str:
        values = tuple(float(v) for v in values)
        if values not in self._table_names:
            name = f"t{len(self._table_names)}"
            body = ", ".join(literal(v) for v in values) or "0.0"
            self._table_bytes += 8 * max(len(values), 1)
            kind = "ALEA_TABLE" if self._table_bytes <= _CONSTANT_BYTES else "ALEA_GLOBAL_TABLE"
            self.tables.append(f"{kind}({name}, {max(len(values), 1)}, {{{body}}})")
            self._table_names[values] = name
        return self._table_names[values]

    def datum(self, table: np.ndarray) -> int:
        """The offset in ``q`` of one of the sampler's (cached) tables, stored once."""
        for offset, seen in self._offsets:
            if seen is table:
                return offset
        offset = self._data_size
        values = _layout(table)
        self.data.append(values)
        self._offsets.append((offset, table))
        self._data_size += values.size
        return offset

    # -- nodes
    def name(self, node: Node) -> str:
        """The C variable (or literal) holding ``node``, emitting statements as needed."""
        stack: list[tuple[Node, bool]] = [(node, False)]
        while stack:
            current, expanded = stack.pop()
            if id(current) in self._names:
                continue
            kids = [k for k in children(current) if not isinstance(k, Table)]
            if not expanded:
                stack.append((current, True))
                stack.extend((k, False) for k in reversed(kids) if id(k) not in self._names)
                continue
            args = tuple(
                k if isinstance(k, Table) else self._names[id(k)] for k in children(current)
            )
            key = (
                type(current).__name__,
                getattr(current, "fn", None),
                getattr(current, "stream", None),
                args,
                current.value if isinstance(current, Const) else None,
            )
            if key not in self._by_key:
                self._by_key[key] = self._emit(current, args)
            self._names[id(current)] = self._by_key[key]
        return self._names[id(node)]

    def aux(self, expr: str) -> str:
        """A helper statement of a node's computation (keeps long expressions linear)."""
        var = f"a{len(self.lines)}"
        self.lines.append(f"  const double {var} = {expr};")
        return var

    def array(self, values: tuple[str, ...]) -> str:
        """A local, mutable array of values (arguments of a variadic primitive)."""
        var = f"a{len(self.lines)}"
        self.lines.append(
            f"  double {var}[{max(len(values), 1)}] = {{{', '.join(values) or '0.0'}}};"
        )
        return var

    def _emit(self, node: Node, args: Args) -> str:
        if isinstance(node, Const):
            return literal(node.value)
        if isinstance(node, Sample) and node.stream in self._severities:  # keys its draws
            self.lines.append(f"  const double u{node.stream} = x[{node.stream} * stride];")
        expr = self._sample(node, args) if isinstance(node, Sample) else self._apply(node, args)
        var = f"v{len(self._by_key)}"
        self.lines.append(f"  const double {var} = {expr};")
        if isinstance(node, Sample):  # store at once: the value need not stay in a register
            self.lines.append(f"  x[{node.stream} * stride] = {var};")
        return var

    def inputs(self) -> list[str]:
        """Every input's value, in stream order. A run of at least ``_RUN`` inputs of one
        distribution with the same constant parameters (a column of ``=RiskNormal(1,0.1)``)
        is one loop, storing each value in ``x``, where later statements read it. With
        ``columns``, every input of constant parameters outside a copula is transformed
        before the trial function, a column of trials at a time (:meth:`column`)."""
        m = self.model
        shared = self._shared_normals() if self.columns else {}
        for s in m.inputs if self.columns else ():  # named first: a formula may read them
            if self._alike(s, s):
                self._names[id(s)] = f"x[{s.stream} * stride]"
        i = 0
        while i < len(m.inputs):
            first = m.inputs[i]
            j = i + 1
            if first.stream in shared:  # with the inputs that share its uniforms
                group = shared.pop(first.stream)
                if group:
                    self.column_lines += _normal_columns(group)
                i = j
                continue
            while j < len(m.inputs) and m.inputs[j].stream not in shared:
                if not self._alike(first, m.inputs[j]):
                    break
                j += 1
            if self.columns and self._alike(first, first):
                self.column(first, i, j)
            elif j - i >= _RUN:
                args = tuple(p if isinstance(p, Table) else self.name(p) for p in first.params)
                value = self._sample(first, args, "x[k * stride]")
                self.lines.append(f"  for (int k = {i}; k < {j}; ++k) x[k * stride] = {value};")
            else:
                for s in m.inputs[i:j]:
                    self.name(s)
                i = j
                continue
            for s in m.inputs[i:j]:
                self._names[id(s)] = f"x[{s.stream} * stride]"
            i = j
        return [self._names[id(s)] for s in m.inputs]

    def _shared_normals(self) -> dict[int, list[Sample]]:
        """Normal-family column inputs that transform the same uniforms (an input and its
        RiskSimtable copies), by stream: the group under its first member's stream, an empty
        list under the others'."""
        groups: dict[int, list[Sample]] = {}
        for s in self.model.inputs:
            if self._alike(s, s) and _normal_column(s) is not None:
                source = s.stream if s.draws_from is None else s.draws_from
                groups.setdefault(source, []).append(s)
        shared: dict[int, list[Sample]] = {}
        for group in groups.values():
            if len(group) > 1:
                shared |= {s.stream: [] for s in group}
                shared[group[0].stream] = group
        return shared

    def column(self, first: Sample, i: int, j: int) -> None:
        """Inputs ``i .. j-1`` (alike: ``first``'s constant parameters) transformed in place
        over ``n`` trials of ``x`` by loops of their own, which the compiler vectorises where
        the quantile allows; the normal families' by :c:func:`alea_normal_columns`."""
        args = tuple(p if isinstance(p, Table) else self.name(p) for p in first.params)
        rows = f"for (int k = {i}; k < {j}; ++k)" if j - i > 1 else f"{{ const int k = {i};"
        end = "" if j - i > 1 else " }"
        if _normal_column(first) is not None:
            self.column_lines += [
                f"  {rows} {line.strip()}{end}" for line in _normal_columns([first], "k")
            ]
            return
        value = self._sample(first, args, "x[k * stride + t]")
        self.column_lines.append(
            f"  {rows} for (u64 t = 0; t < n; ++t) x[k * stride + t] = {value};{end}"
        )

    def _alike(self, a: Sample, b: Sample) -> bool:
        """Whether ``b`` transforms its uniform exactly as ``a`` does (constant parameters)."""
        uncorrelated = not {a.stream, b.stream, a.draws_from, b.draws_from} & self._correlated
        return (
            uncorrelated
            and not {a.stream, b.stream} & self._severities
            and a.distribution == b.distribution
            and a.truncate == b.truncate
            and _constants(a) is not None
            and _constants(a) == _constants(b)
        )

    def _sample(self, s: Sample, args: Args, u: str = "") -> str:
        if not u:
            src = s.stream if s.draws_from is None else s.draws_from
            u = f"u{src}" if src in self._correlated else f"x[{s.stream} * stride]"
        d = s.distribution
        scalars = [a for a in args if not isinstance(a, Table)]
        finite = " && ".join(f"isfinite({a})" for a in scalars) or "true"
        constants = _constants(s)
        valid = ""
        if d == "trigen" and constants is not None:  # its triangle, found once
            valid = _VALID[d].format(*scalars)
            a, b = (float(v) for v in trigen_bounds(*constants))  # type: ignore[arg-type]
            d, scalars = "triang", [literal(a), scalars[1], literal(b)]
        if d == "discrete":
            xs, cum = discrete_tables(*args)
            tail = f"{self.table(xs)}, {self.table(cum)}, {len(xs)}"
            call = ("ppf_discrete({u}, " + tail + ")", "cdf_discrete({x}, " + tail + ")")
            valid = "true"
        elif d == resample.DISTRIBUTION:
            xs = args[1].values
            call = (f"ppf_resample({{u}}, {self.table(xs)}, {len(xs)})", "")
            valid = "true"
        elif d == "cumul":
            lo, hi, xs, ps = args
            tail = f"{lo}, {hi}, {self.table(xs.values)}, {self.table(ps.values)}, {len(xs.values)}"
            call = ("ppf_cumul({u}, " + tail + ")", "cdf_cumul({x}, " + tail + ")")
            valid = _cumul_valid(lo, hi, xs, ps)
        elif d in _VALID:
            rest = ", ".join(scalars)
            call = (f"ppf_{d}({{u}}, {rest})", f"cdf_{d}({{x}}, {rest})")
            valid = valid or _VALID[d].format(*scalars)
            table = sampling.tabulated(d, constants) if self.tabulate and constants else None
            if table is not None:
                call = (f"tab_{d}({{u}}, q + {self.datum(table)}, {rest})", call[1])
        elif d in _FAMILIES:
            family = _FAMILIES[d]
            self.units.update(family.units)
            tables = [a for a in args if isinstance(a, Table)]
            rest = (
                family.arguments(scalars, tables, self.table)
                if family.arguments is not None
                else ", ".join(scalars)
            )
            call = (
                f"ppf_{family.function}({{u}}, {rest})",
                f"cdf_{family.function}({{x}}, {rest})",
            )
            valid = family.valid.format(*scalars)
        else:
            raise FormulaError(
                "distribution not supported by the generated-code back ends (native, gpu)",
                s.address,
                d,
            )
        if s.truncate is None or s.truncate == (None, None):
            value = call[0].format(u=u)
        else:
            lo, hi = s.truncate
            if constants is not None:  # the window's probabilities, once for the model
                cdfs = sampling.truncation_cdfs(s.distribution, constants, lo, hi)
                flo, fhi = (literal(float(f)) for f in cdfs)
            else:
                flo = "0.0"
                if lo is not None:  # P(X < lo): for a discrete distribution, the CDF below lo
                    below = float(np.nextafter(lo, -np.inf)) if d in _DISCRETE else lo
                    flo = call[1].format(x=literal(below))
                fhi = "1.0" if hi is None else call[1].format(x=literal(hi))
            value = call[0].format(u=f"alea_trunc_u({u}, {flo}, {fhi})")
            value = (
                f"alea_clip({value}, {'(-INFINITY)' if lo is None else literal(lo)}, "
                f"{'INFINITY' if hi is None else literal(hi)})"
            )
        return f"(({valid}) && {finite}) ? {value} : NAN"

    def _apply(self, node: Apply, args: Args) -> str:
        fn = node.fn
        if fn == compound.FUNCTION:
            return self._compound(node, args)
        prim = registry.PRIMITIVES.get(fn)
        if prim is not None:
            missing = _missing_units(prim.units)
            if not prim.cpp or missing:
                lacks = f" (C units {', '.join(missing)} are not registered)" if missing else ""
                raise FormulaError(f"function has no C implementation{lacks}", node.address, fn)
            self.units.update(prim.units)
            return self.primitive(prim, args)
        if any(isinstance(a, Table) for a in args) and fn not in _TABLE_OK:
            args = tuple(v for a in args for v in _flatten(a))
        if fn in _UNARY and len(args) == 1:
            return _UNARY[fn].format(*args)
        if fn in _BINARY and len(args) == 2:
            return _BINARY[fn].format(*args)
        if fn in _CMP:
            return f"xl_cmp({args[0]}, {args[1]}, {_CMP[fn]})"
        handler = _SPECIAL.get(fn)
        if handler is None:
            raise FormulaError(
                "function not supported by the generated-code back ends (native, gpu)",
                node.address,
                fn,
            )
        return handler(self, args)

    def _compound(self, node: Apply, args: Args) -> str:
        """A call of the RiskCompound's own function, which sums the severity's draws (the
        first is the severity input's value, the others keyed by its uniform: see
        :mod:`..compound`)."""
        sev = compound.severity(node)
        if not self.helpers:
            self.helpers.append(_BITS)
        name = f"alea_compound{len(self.helpers) - 1}"
        params = [f"p{i}" if not isinstance(a, Table) else a for i, a in enumerate(args[4:])]
        lines = len(self.lines)
        draw = self._sample(sev, tuple(params), "u")
        assert len(self.lines) == lines  # a sampler is one expression
        scalars = "".join(f", double {p}" for p in params if isinstance(p, str))
        self.helpers.append(
            _COMPOUND.format(
                name=name,
                params=scalars,
                draw=draw,
                most=compound.MAX_FREQUENCY + 1,
                domain=compound.DOMAIN,
            )
        )
        source = sev.stream if sev.draws_from is None else sev.draws_from
        values = "".join(f", {a}" for a in args[4:] if not isinstance(a, Table))
        n, x1, d, cap = args[:4]
        return f"{name}({n}, {x1}, u{sev.stream}, {d}, {cap}, {source}ULL, q{values})"

    def primitive(self, prim: registry.Primitive, args: tuple[Any, ...]) -> str:
        """``cpp(args)``: a Table is ``table, rows, cols``; a variadic tail is one array."""
        head = args if prim.fixed is None else args[: prim.fixed]
        parts = [
            f"{self.table(a.values)}, {a.rows}, {a.cols}" if isinstance(a, Table) else a
            for a in head
        ]
        if prim.fixed is not None:
            tail = tuple(v for a in args[prim.fixed :] for v in _flatten(a))
            parts += [self.array(tail), str(len(tail))]
        return f"{prim.cpp}({', '.join(parts)})"

    # -- whole source
    def source(self) -> CudaSource:
        m = self.model
        for i, s in enumerate(m.inputs):
            if s.stream != i:
                raise ModelError(f"input {s.name!r} has stream {s.stream}, expected {i}", s.address)
        head = [f"  double u{s} = x[{s} * stride];" for s in sorted(self._correlated)]
        head += _copula_lines(m)
        ins = self.inputs()
        outs = [self.name(o.node) for o in m.outputs]
        body = head + self.lines
        assert len(set(ins)) == len(ins)  # one statement, and one store, per input
        body += [f"  y[{j} * stride] = {v};" for j, v in enumerate(outs)]
        fixed = [
            f"    case {i.stream}: return {i.seed}ULL;" for i in m.inputs if i.seed is not None
        ]
        copies = [
            f"    case {i.stream}: return {i.draws_from}ULL;"
            for i in m.inputs
            if i.draws_from is not None
        ]
        resampled = [s for s in m.inputs if s.distribution == resample.DISTRIBUTION]
        src = "\n".join(
            [
                f"#define ALEA_W_EDGE {literal(sampling.W_EDGE)}",
                f"#define ALEA_W_SCALE {literal(1.0 / sampling.W_STEP)}",
                f"#define ALEA_KNOTS {sampling.KNOTS}",
                f"#define ALEA_APPROX_VARIANCE {literal(sampling.APPROX_VARIANCE)}",
                f"#define ALEA_RESAMPLE_DOMAIN {resample.DOMAIN}",
                PRELUDE,
                registry.cpp_units(self.units),
                _TABLE_MACRO,
                *self.tables,
                *self.helpers,
                f"#define ALEA_INPUTS {len(m.inputs)}",
                f"#define ALEA_OUTPUTS {len(m.outputs)}",
                "",
                "ALEA_HD u64 alea_key(u64 seed, int stream) {  /* RiskSeed fixes some keys */",
                "  switch (stream) {",
                *fixed,
                "    default: return seed;",
                "  }",
                "}",
                "",
                "ALEA_HD u64 alea_source(int s) {  /* the stream whose uniforms s draws */",
                "  switch (s) {",
                *copies,
                "    default: return (u64)s;",
                "  }",
                "}",
                "",
                *_positions(resampled),
                "",
                "ALEA_HD void alea_draw(u64 seed, u64 block, u64 first, u64 count, double* x) {",
                "/* one Philox block at a time: unrolled, the blocks fill the registers */",
                "#pragma unroll 1",
                "  for (int s = 0; s < ALEA_INPUTS; ++s) {",
                "    if (alea_resampled(s)) {",
                "      for (u64 t = 4 * block; t < 4 * block + 4; ++t)",
                "        if (t >= first && t < first + count)",
                "          x[(u64)s * count + t - first] = alea_position(seed, s, t);",
                "      continue;",
                "    }",
                "    u64 w[4];",
                "    alea_philox(block, 0, alea_key(seed, s), alea_source(s), w);",
                "    alea_store(w, block, first, count, x + (u64)s * count);",
                "  }",
                "}",
                "",
                *(column_function(self.column_lines) if self.columns else []),
                *trial_function(body, len(head)),
                _LOOPS,
            ]
        )
        data = np.concatenate(self.data) if self.data else np.zeros(0)
        return CudaSource(
            src, tuple(s.name for s in m.inputs), tuple(o.name for o in m.outputs), data
        )


def generate(model: Model, *, tabulate: bool = False, columns: bool = False) -> CudaSource:
    """CUDA C source for ``model``; raises ``FormulaError`` naming the cell of anything the
    CUDA back end does not support.

    With ``tabulate``, constant-parameter distributions whose quantile is iterative (gamma,
    beta, PERT, binomial, Poisson) read it from the sampler's own tables, passed at run time
    as ``CudaSource.data`` (the native back end); without, the kernel iterates. With
    ``columns`` (the native back end), inputs of constant parameters outside a copula are
    transformed by ``alea_columns(x, stride, n, q)`` over ``n`` trials before the trial
    function runs on each, which then reads their values from ``x``.
    """
    return _Writer(model, tabulate, columns).source()


# ------------------------------------------------------------------------------ helpers


def _constants(s: Sample) -> tuple[float | Table, ...] | None:
    """The parameters of ``s`` when none varies between trials, else None."""
    values: list[float | Table] = []
    for p in s.params:
        if isinstance(p, Const):
            values.append(p.value)
        elif isinstance(p, Table):
            values.append(p)
        else:
            return None
    return tuple(values)


def _normal_column(s: Sample) -> tuple[str, str, bool] | None:
    """(mean, sd, then exp) of a normal or lognormal input of valid constant parameters,
    untruncated, as C expressions computed as ``ppf_normal``, ``ppf_lognorm`` and
    ``ppf_lognorm2`` do; None for any other input."""
    constants = _constants(s)
    if s.truncate not in (None, (None, None)) or constants is None:
        return None
    values = [float(v) for v in constants if not isinstance(v, Table)]
    if len(values) != len(constants) or len(values) != 2 or not all(map(math.isfinite, values)):
        return None
    a, b = values
    m, sd = literal(a), literal(b)
    if s.distribution == "normal" and b > 0:
        return m, sd, False
    if s.distribution == "lognorm2" and b > 0:
        return m, sd, True
    if s.distribution == "lognorm" and a > 0 and b > 0:
        s2 = f"log1p(({sd} / {m}) * ({sd} / {m}))"
        return f"(log({m}) - 0.5 * {s2})", f"sqrt({s2})", True
    return None


def _normal_columns(group: list[Sample], row: str = "") -> list[str]:
    """The column statements of normal-family inputs that transform the same uniforms: one
    :c:func:`alea_normal_columns` call, then ``exp`` over the lognormals' rows. ``row``: a C
    expression for the row of a single input (a loop's variable), else their streams."""
    params = [_normal_column(s) for s in group]
    rows = [row or str(s.stream) for s in group]
    means = ", ".join(p[0] for p in params if p is not None)
    sds = ", ".join(p[1] for p in params if p is not None)
    lines = [
        f"  {{ const int r[] = {{{', '.join(rows)}}}; const double m[] = {{{means}}},"
        f" s[] = {{{sds}}}; alea_normal_columns(x, stride, n, {len(group)}, r, m, s); }}"
    ]
    for r, p in zip(rows, params, strict=True):
        if p is not None and p[2]:
            lines.append(
                f"  for (u64 t = 0; t < n; ++t) x[{r} * stride + t] = exp(x[{r} * stride + t]);"
            )
    return lines


def _positions(resampled: list[Sample]) -> list[str]:
    """``alea_resampled(s)``: whether input ``s`` is a RiskResample of method 1 or 3;
    ``alea_position(seed, s, t)``: its "uniform" in trial ``t`` (see :mod:`..resample`)."""
    cases = []
    for s in resampled:
        method, data = s.params
        assert isinstance(method, Const) and isinstance(data, Table)
        n = len(data.values)
        shuffled = int(method.value == resample.WITHOUT_REPLACEMENT)
        cases.append(
            f"    case {s.stream}: return alea_resample_unit(t, {n}ULL, "
            f"{resample.feistel_bits(n)}, {shuffled}, alea_key(seed, {s.stream}), "
            f"alea_source({s.stream}));"
        )
    return [
        "ALEA_HD int alea_resampled(int s) {  /* RiskResample in order or without replacement */",
        "  switch (s) {",
        *(f"    case {s.stream}:" for s in resampled),
        *(["      return 1;"] if resampled else []),
        "    default: return 0;",
        "  }",
        "}",
        "",
        "ALEA_HD double alea_position(u64 seed, int s, u64 t) {",
        "  switch (s) {",
        *cases,
        "    default: return 0.0;",
        "  }",
        "}",
    ]


def _layout(table: np.ndarray) -> np.ndarray:
    """A sampler's table as ``alea_quintic`` and ``alea_count`` read it."""
    if table.ndim == 2:  # quintic rows a0..a5 → the six coefficients of each cell together
        return np.ascontiguousarray(table.T).ravel()
    return np.concatenate([[float(table.size)], table])


def _missing_units(names: tuple[str, ...]) -> list[str]:
    """The units among ``names`` and those they need that the registry lacks."""
    missing: list[str] = []
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        unit = registry.UNITS.get(name)
        if unit is None:
            missing.append(name)
        else:
            todo.extend(unit.needs)
    return sorted(missing)


def _flatten(a: str | Table) -> list[str]:
    return [literal(v) for v in a.values] if isinstance(a, Table) else [a]


def _cumul_valid(lo: str, hi: str, xs: Table, ps: Table) -> str:
    inner = np.asarray(xs.values, dtype=np.float64)
    if not (len(inner) == len(ps.values) and np.all(np.diff(inner) >= 0)):
        return "false"
    first = literal(inner[0]) if len(inner) else hi
    last = literal(inner[-1]) if len(inner) else lo
    return f"{lo} < {hi} && {lo} <= {first} && {last} <= {hi}"


def _fold(w: _Writer, op: str, args: Args) -> str:
    """``op`` applied left to right, one helper statement per step (no deep nesting)."""
    acc = args[0]
    for a in args[1:-1]:
        acc = w.aux(f"{op}({acc}, {a})")
    return f"{op}({acc}, {args[-1]})" if len(args) > 1 else acc


def _first_error(args: tuple[Any, ...], otherwise: str) -> str:
    """The first error among ``args``, else ``otherwise``."""
    chain = " : ".join(f"isnan({a}) ? {a}" for a in args)
    return f"({chain} : {otherwise})"


_RUN = 16  # consecutive inputs from which a loop is shorter than a statement each
_TERMS = 64  # terms per statement of a long sum
_STORED = re.compile(r"x\[(\d+) \* stride\]")


def _sum(w: _Writer, args: Args) -> str:
    """Left to right like numpy_backend's loop; ``+`` associates left, so no nesting. A long
    sum is a running total over statements of at most ``_TERMS`` terms, and consecutive
    inputs (``SUM(A1:A100000)``) a loop, so the source grows with the model's cells and
    not with its range sizes. A NaN total is the first error among the terms (the payload
    arithmetic passes on is the hardware's choice)."""
    if len(args) <= _TERMS:
        total = w.aux(f"({' + '.join(args)})")
        return f"(isnan({total}) ? {_first_error(args, total)} : {total})"
    total = f"s{len(w.lines)}"
    w.lines.append(f"  double {total} = {args[0]};")
    pending: list[str] = []
    runs = _runs(args[1:])
    for start, end, term in runs:
        if term is None:
            pending.append(args[1 + start])
            continue
        if pending:
            w.lines.append(f"  {total} = {' + '.join([total, *pending])};")
            pending = []
        w.lines.append(f"  for (int k = {start}; k < {end}; ++k) {total} += x[k * stride];")
    for i in range(0, len(pending), _TERMS):
        w.lines.append(f"  {total} = {' + '.join([total, *pending[i : i + _TERMS]])};")
    # the first error, in the order of the terms: only run when the total is NaN
    found = f"f{len(w.lines)}"
    w.lines.append(f"  int {found} = !isnan({total}) || isnan({args[0]});")
    w.lines.append(f"  if (isnan({args[0]})) {total} = {args[0]};")
    singles: list[str] = []

    def flush() -> None:
        for i in range(0, len(singles), _TERMS):
            part = singles[i : i + _TERMS]
            any_nan = " || ".join(f"isnan({a})" for a in part)
            w.lines.append(
                f"  if (!{found} && ({any_nan})) {{ {total} = {_first_error(tuple(part), total)};"
                f" {found} = 1; }}"
            )
        singles.clear()

    for start, end, term in runs:
        if term is None:
            singles.append(args[1 + start])
            continue
        flush()
        w.lines.append(
            f"  for (int k = {start}; k < {end} && !{found}; ++k)"
            f" if (isnan(x[k * stride])) {{ {total} = x[k * stride]; {found} = 1; }}"
        )
    flush()
    return total


def _runs(args: Args) -> list[tuple[int, int, str | None]]:
    """``args`` as (start, end, None) for one term, or (first stream, end stream, "x") for
    at least ``_RUN`` consecutive stored inputs ``x[k * stride]``, in order."""
    out: list[tuple[int, int, str | None]] = []
    i = 0
    while i < len(args):
        m = _STORED.fullmatch(args[i])
        j = i + 1
        if m is not None:
            first = int(m[1])
            while j < len(args) and args[j] == f"x[{first + j - i} * stride]":
                j += 1
        if m is not None and j - i >= _RUN:
            out.append((int(m[1]), int(m[1]) + j - i, "x"))
        else:
            out.extend((k, k + 1, None) for k in range(i, j))
        i = j
    return out


def _logical(op: str) -> Callable[[_Writer, Args], str]:
    def emit(w: _Writer, args: Args) -> str:
        body = f" {op} ".join(f"({a} != 0.0)" for a in args)
        return _first_error(args, f"xl_bool({body})")

    return emit


def _sumproduct(w: _Writer, args: Args) -> str:
    """Constant Tables fold (as numpy_backend); the front end lowers uncertain ranges to
    ``sum(mul(a1, b1), ...)``, so anything else is the sum of its values."""
    if len(args) > 1 and all(isinstance(a, Table) for a in args):
        return literal(float(np.sum(np.prod([np.asarray(a.values) for a in args], axis=0))))
    return _sum(w, tuple(v for a in args for v in _flatten(a)))


def _npv(w: _Writer, args: Args) -> str:
    """As numpy_backend: growth multiplied by (1 + rate) per period, terms summed in order."""
    rate, values = args[0], args[1:]
    base = w.aux(f"(1.0 + {rate})")
    acc, growth = "0.0", "1.0"
    for v in values:
        growth = w.aux(f"({growth} * {base})")
        acc = w.aux(f"({acc} + {v} / {growth})")
    return _first_error((rate, *values), acc)


def _pow(args: Args) -> str:
    """``^``: a small whole constant exponent by multiplications (within a few ulps of
    ``pow``, several times faster: growth factors ``(1+g)^(year-1)``), else ``pow``; Excel's
    errors either way (NaN in, overflow out)."""
    base, exponent = args
    k = _whole(exponent)
    if k is not None and abs(k) <= 64:
        return f"xl_powi({base}, {k})"
    return f"xl_pow({base}, {exponent})"


def _whole(text: str) -> int | None:
    """The integer a C literal from :func:`literal` holds, or None."""
    try:
        value = float.fromhex(text.strip("()"))
    except ValueError:
        return None
    return int(value) if math.isfinite(value) and value == int(value) else None


def _choose(w: _Writer, args: Args) -> str:
    k = w.aux(f"xl_int({args[0]})")
    cases = " : ".join(f"{k} == {i}.0 ? {v}" for i, v in enumerate(args[1:], start=1))
    return f"(isnan({k}) ? {k} : {cases} : XL_VALUE)"


def _table_arg(w: _Writer, t: str | Table, fn: str) -> tuple[str, int, int]:
    if not isinstance(t, Table):
        raise FormulaError("needs a constant range", "", fn)
    return w.table(t.values), t.rows, t.cols


def _index(w: _Writer, args: Args) -> str:
    name, rows, cols = _table_arg(w, args[0], "index")
    if len(args) == 2:
        return f"xl_index({name}, {rows}, {cols}, {args[1]})"
    return f"xl_pick({name}, {rows}, {cols}, {args[1]}, {args[2]})"


def _match(w: _Writer, args: Args) -> str:
    name, rows, cols = _table_arg(w, args[1], "match")
    kind = args[2] if len(args) > 2 else "1.0"
    return f"xl_position({name}, {rows * cols}, 1, {args[0]}, {kind})"


def _vlookup(w: _Writer, args: Args) -> str:
    name, rows, cols = _table_arg(w, args[1], "vlookup")
    exact = f"(({args[3]}) == 0.0 ? 0.0 : 1.0)" if len(args) > 3 else "1.0"
    return f"xl_vlookup({args[0]}, {name}, {rows}, {cols}, {args[2]}, {exact})"


def _finance(name: str) -> Callable[[_Writer, Args], str]:
    def emit(w: _Writer, args: Args) -> str:
        full = [*args, "0.0", "0.0"][:5]
        return f"xl_{name}({', '.join(full)})"

    return emit


_TABLE_OK = {"index", "match", "vlookup", "sumproduct"}
_SPECIAL: dict[str, Callable[[_Writer, Args], str]] = {
    "if": lambda w, a: f"xl_if({a[0]}, {a[1]}, {a[2] if len(a) > 2 else '0.0'})",
    "and": _logical("&&"),
    "or": _logical("||"),
    "sum": _sum,
    "average": lambda w, a: f"({_sum(w, a)} / {len(a)}.0)",
    "min": lambda w, a: _fold(w, "xl_min", a),
    "max": lambda w, a: _fold(w, "xl_max", a),
    "log": lambda w, a: f"xl_log({a[0]}, {a[1] if len(a) > 1 else '10.0'})",
    "sumproduct": _sumproduct,
    "npv": _npv,
    "pv": _finance("pv"),
    "fv": _finance("fv"),
    "pmt": _finance("pmt"),
    "choose": _choose,
    "index": _index,
    "match": _match,
    "vlookup": _vlookup,
    "concat": lambda w, a: "XL_VALUE",  # text has no numeric value, as in numpy_backend
    "pow": lambda w, a: _pow(a),
    "power": lambda w, a: _pow(a),
}


def _copula_lines(model: Model) -> list[str]:
    """z = normcdfinv(u); z' = L z summed in correlate()'s order, no FMA; u' = normcdf(z')."""
    from ..correlation import copula_factor

    lines = []
    for g, corr in enumerate(model.correlations):
        factor = copula_factor(corr.matrix, corr.name)
        streams = corr.streams
        for i, s in enumerate(streams):
            lines.append(f"  const double z{g}_{i} = normcdfinv(u{s});")
        for i, s in enumerate(streams):
            acc = f"alea_mul({literal(factor[i, 0])}, z{g}_0)"
            for j in range(1, i + 1):
                acc = f"alea_add({acc}, alea_mul({literal(factor[i, j])}, z{g}_{j}))"
            lines.append(f"  u{s} = fmin(fmax(normcdf({acc}), 0x1p-53), 1.0 - 0x1p-53);")
    return lines


_TABLE_MACRO = r"""
#ifdef __CUDA_ARCH__
#define ALEA_TABLE(name, n, ...) __constant__ double name[n] = __VA_ARGS__;
#define ALEA_GLOBAL_TABLE(name, n, ...) __device__ const double name[n] = __VA_ARGS__;
#else
#define ALEA_TABLE(name, n, ...) static const double name[n] = __VA_ARGS__;
#define ALEA_GLOBAL_TABLE(name, n, ...) static const double name[n] = __VA_ARGS__;
#endif
/* products and sums of the copula must not fuse (bits as correlation.correlate) */
ALEA_HD double alea_mul(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
ALEA_HD double alea_add(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
ALEA_HD void alea_store(const u64 w[4], u64 block, u64 first, u64 count, double* row) {
  for (int k = 0; k < 4; ++k) {
    u64 t = 4 * block + k;
    if (t >= first && t < first + count) row[t - first] = alea_unit(w[k]);
  }
}
"""

_BITS = r"""
ALEA_HD u64 alea_bits(double v) { u64 b; memcpy(&b, &v, sizeof b); return b; }
"""

_COMPOUND = r"""
/* RiskCompound: the layers min(max(x - d, 0), l) of floor(n) severity draws, summed */
ALEA_HD_CALL double {name}(double n, double x1, double u1, double d, double l, u64 src,
                          const double* q{params}) {{
  if (isnan(n)) return n;
  if (isnan(d)) return d;
  if (isnan(l)) return l;
  if (n < 0.0 || n >= {most}.0 || d < 0.0 || l < 0.0) return XL_NUM;
  const long long draws = (long long)floor(n);
  if (draws == 0) return 0.0;
  if (isnan(x1)) return x1;
  double total = fmin(fmax(x1 - d, 0.0), l);
  const u64 key = alea_bits(u1);
  u64 w[4];
  for (long long i = 0; i + 1 < draws; ++i) {{
    if ((i & 3) == 0) alea_philox((u64)(i >> 2), {domain}, key, src, w);
    const double u = alea_unit(w[i & 3]);
    const double x = {draw};
    if (isnan(x)) return x;
    total += fmin(fmax(x - d, 0.0), l);
  }}
  return total;
}}
"""

_LOOPS = r"""
ALEA_HD void alea_block(u64 seed, u64 block, u64 first, u64 count, int draw, double* x, double* y) {
  if (draw) alea_draw(seed, block, first, count, x);
  for (int k = 0; k < 4; ++k) {
    u64 t = 4 * block + k;
    if (t >= first && t < first + count) alea_trial(x + (t - first), y + (t - first), count, 0);
  }
}

#ifdef __CUDACC__  /* the native library brings its own driver (services/engine/native.py) */
#ifndef ALEA_NO_KERNEL  /* the CPU harness needs no device code */
extern "C" __global__ void alea_kernel(u64 seed, u64 first, u64 count, int draw,
                                       double* x, double* y) {
  u64 b0 = first / 4, blocks = (first + count + 3) / 4 - b0;
  u64 step = (u64)gridDim.x * blockDim.x;
  for (u64 j = blockIdx.x * (u64)blockDim.x + threadIdx.x; j < blocks; j += step)
    alea_block(seed, b0 + j, first, count, draw, x, y);
}
#endif

__host__ void alea_host(u64 seed, u64 first, u64 count, int draw, double* x, double* y) {
  u64 b0 = first / 4, blocks = (first + count + 3) / 4 - b0;
  for (u64 j = 0; j < blocks; ++j) alea_block(seed, b0 + j, first, count, draw, x, y);
}
#endif
"""
