# ruff: noqa: E501  (C source)
"""Lookup and reference functions: MATCH, XMATCH, VLOOKUP, HLOOKUP, XLOOKUP, LOOKUP, INDEX,
CHOOSE, OFFSET, INDIRECT, ROW(S), COLUMN(S), TRANSPOSE, MMULT, HSTACK, VSTACK.

A lookup is a *position* (where the value is among the keys) and a *pick* (the item at that
position in the result vector). A constant lookup value among constant keys is found at
compile time, with Excel's types (text without case and with wildcards, numbers, logical
values); a per-trial value is found per trial among numeric keys (text keys never match a
number) by the ``lookup_t`` primitive (constant keys, a table) or ``lookup_v`` (keys that vary
per trial). The pick of a per-trial position indexes a constant table (``index``) or
chooses among per-trial cells (``choose``). Match modes: exact; the last key <= x (MATCH 1
and the approximate VLOOKUP, exact on sorted keys as Excel's binary search); the last key
>= x (MATCH -1); XMATCH's exact-or-next-smaller and exact-or-next-larger, searching first
to last or last to first.

OFFSET and INDIRECT return references, so they need constant arguments; anything else is
refused naming the cell.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from services.engine.excel import forms, registry
from services.engine.excel.arrays import NA, REF, propagate, row_at, shaped, stack
from services.engine.formula import Missing, Name, Ref, parse_reference
from services.engine.ir import Apply, Const, Node, Sample, Table
from services.engine.sheet import MAX_COL, MAX_ROW
from services.engine.values import EMPTY, Grid, Scalar, Value

if TYPE_CHECKING:
    from services.engine.build import Range
    from services.engine.formula import Expr
    from services.engine.lowering import Lowerer

CATEGORY = "Lookup and reference"
EXACT, LE, GE, XLE, XGE = 0.0, 1.0, -1.0, 2.0, 3.0  # match modes of the primitives

# --- positions, per trial --------------------------------------------------------------------


def _scan(keys: np.ndarray, x: Any, mode: float, search: float) -> Any:
    """1-based positions of ``x`` among ``keys`` (n × trials, or n × 1), NaN #N/A when absent."""
    n = keys.shape[0]
    x = np.asarray(x, dtype=np.float64)
    order = range(n) if search >= 0 else range(n - 1, -1, -1)
    shape = np.broadcast_shapes(x.shape, keys.shape[1:])
    found = np.zeros(shape)
    best = np.full(shape, np.nan)
    for i in order:
        k = keys[i]
        if mode == EXACT:
            hit = (k == x) & (found == 0)
        elif mode == LE:
            hit = k <= x  # the last such key
        elif mode == GE:
            hit = k >= x
        else:
            better = (k < x) if mode == XLE else (k > x)
            closer = (k > best) if mode == XLE else (k < best)
            exact = k == x
            hit = (exact & ~(best == x)) | (better & ~(best == x) & (np.isnan(best) | closer))
            best = np.where(hit, k, best)
        found = np.where(hit, i + 1.0, found)
    return np.where(found == 0, NA, found)


def _table_positions(table: Table, x: Any, mode: Any, search: Any) -> Any:
    keys = np.asarray(table.values, dtype=np.float64)
    m, s = float(np.asarray(mode).flat[0]), float(np.asarray(search).flat[0])
    x = np.asarray(x, dtype=np.float64)
    if m in (EXACT, XLE, XGE):
        return _sorted_positions(keys, x, m, s)
    return _scan(keys.reshape(-1, 1), x, m, s)


def _sorted_positions(keys: np.ndarray, x: np.ndarray, mode: float, search: float) -> Any:
    """Exact and XMATCH ±1 by binary search over the distinct numeric keys."""
    ok = ~np.isnan(keys)
    values = np.unique(keys[ok])
    if values.size == 0:
        return np.full(x.shape, NA)
    idx = np.flatnonzero(ok)
    pick_first = search >= 0
    where = np.empty(values.size)
    for j, v in enumerate(values):
        hits = idx[keys[idx] == v]
        where[j] = (hits[0] if pick_first else hits[-1]) + 1.0
    if mode == EXACT:
        at = np.minimum(np.searchsorted(values, x, side="left"), values.size - 1)
        return np.where(values[at] == x, where[at], NA)
    if mode == XLE:
        below = np.searchsorted(values, x, side="right") - 1
        return np.where(below >= 0, where[np.maximum(below, 0)], NA)
    above = np.searchsorted(values, x, side="left")
    return np.where(above < values.size, where[np.minimum(above, values.size - 1)], NA)


def _lookup_t(x: Any, mode: Any, search: Any, table: Table) -> Any:
    with np.errstate(invalid="ignore"):
        return propagate(_table_positions(table, x, mode, search), x)


def _lookup_v(x: Any, mode: Any, search: Any, *keys: Any) -> Any:
    """Positions among keys that vary per trial (an error key is skipped, not the result)."""
    rows = stack(keys)
    m, s = float(np.asarray(mode).flat[0]), float(np.asarray(search).flat[0])
    with np.errstate(invalid="ignore"):
        found = propagate(np.atleast_1d(_scan(rows, x, m, s)), x)
    return shaped(np.atleast_1d(found), [x, *keys])


_LOOKUP_CPP = r"""
/* 1-based position of x among n keys (stride apart); modes: 0 exact, 1 last <= x,
   -1 last >= x, 2 exact or next smaller, 3 exact or next larger; search 1 or -1 */
ALEA_HD double xl_lookup_core(const double* k, int n, int stride, double x, double mode, double search) {
  double found = 0.0, best = NAN;
  for (int j = 0; j < n; ++j) {
    int i = search >= 0.0 ? j : n - 1 - j;
    double key = k[i * stride]; bool hit;
    if (mode == 0.0) hit = key == x && found == 0.0;
    else if (mode == 1.0) hit = key <= x;
    else if (mode == -1.0) hit = key >= x;
    else {
      bool better = mode == 2.0 ? key < x : key > x;
      bool closer = mode == 2.0 ? key > best : key < best;
      hit = (key == x && !(best == x)) || (better && !(best == x) && (isnan(best) || closer));
      if (hit) best = key;
    }
    if (hit) found = i + 1.0;
  }
  return found == 0.0 ? XL_NA : found;
}
ALEA_HD double xl_lookup_t(double x, double mode, double search, const double* t, int rows, int cols) {
  XL_ERR3(x, mode, search); return xl_lookup_core(t, rows * cols, 1, x, mode, search);
}
ALEA_HD double xl_lookup_v(double x, double mode, double search, double* v, int n) {
  XL_ERR3(x, mode, search); return xl_lookup_core(v, n, 1, x, mode, search);
}
"""
registry.unit("lookup", _LOOKUP_CPP)
registry.primitive("lookup_t", _lookup_t, "xl_lookup_t", ("lookup",))
registry.primitive("lookup_v", _lookup_v, "xl_lookup_v", ("lookup",), fixed=3)


def _index_v(rows: np.ndarray, nrows: Any, ncols: Any, r: Any, c: Any) -> Any:
    nr, nc = float(np.asarray(nrows).flat[0]), float(np.asarray(ncols).flat[0])
    rr, cc = np.floor(r) - 1.0, np.floor(c) - 1.0
    ok = (rr >= 0) & (rr < nr) & (cc >= 0) & (cc < nc)
    flat = np.where(ok, rr * nc + cc, 0).astype(np.intp)
    picked = row_at(rows, flat)
    return np.where(ok, picked, REF)


def _index_v_prim(*args: Any) -> Any:
    """``index_v(rows, cols, r, c, items...)``: only the picked item's error matters."""
    nrows, ncols, r, c, *items = args
    rows = stack(items) if items else np.zeros((0, 1))
    with np.errstate(all="ignore"):
        out = _index_v(rows, nrows, ncols, r, c)
    return shaped(np.atleast_1d(propagate(out, r, c)), [r, c, *items])


registry.unit(
    "index_v",
    """ALEA_HD double xl_index_v(double rows, double cols, double r, double c, double* v, int n) {
  XL_ERR2(r, c); double rr = floor(r) - 1.0, cc = floor(c) - 1.0;
  if (!(rr >= 0.0 && rr < rows && cc >= 0.0 && cc < cols)) return XL_REF;
  return v[(int)(rr * cols + cc)];
}
""",
)
registry.primitive("index_v", _index_v_prim, "xl_index_v", ("index_v",), fixed=4)

# --- positions at compile time ---------------------------------------------------------------


def _typed(lw: Lowerer, v: Scalar) -> tuple[int, Any] | None:
    """(type, comparable key): number 0, text 1, logical 2; None for blanks and errors."""
    if isinstance(v, str):
        return 1, v.casefold()
    if v is EMPTY or not isinstance(v, Const) or math.isnan(v.value):
        return None
    return (2 if lw.is_logical(v) else 0), v.value


def _wildcard(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "~" and i + 1 < len(pattern) and pattern[i + 1] in "*?~":
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def static_position(
    lw: Lowerer, x: Scalar, keys: list[Scalar], mode: float, search: float, wildcards: bool
) -> float | None:
    """The 1-based position of a constant ``x`` among constant keys (None: #N/A)."""
    target = _typed(lw, x)
    if target is None:
        return None
    kind, want = target
    pattern = _wildcard(x) if wildcards and kind == 1 and isinstance(x, str) else None
    found, best = None, None
    order = range(len(keys)) if search >= 0 else range(len(keys) - 1, -1, -1)
    for i in order:
        key = _typed(lw, keys[i])
        if key is None or key[0] != kind:
            continue
        k = key[1]
        if mode == EXACT:
            if pattern.fullmatch(keys[i]) if pattern else k == want:  # type: ignore[arg-type]
                return i + 1.0
        elif mode == LE:
            found = i + 1.0 if k <= want else found
        elif mode == GE:
            found = i + 1.0 if k >= want else found
        else:
            if k == want:
                return i + 1.0
            better = k < want if mode == XLE else k > want
            if better and (best is None or (k > best if mode == XLE else k < best)):
                found, best = i + 1.0, k
    return found


def position(
    lw: Lowerer,
    x: Scalar,
    keys: list[Scalar],
    mode: float,
    search: float = 1.0,
    wildcards: bool = True,
) -> Node:
    """The position of ``x`` among ``keys`` as a node (#N/A when absent)."""
    if isinstance(x, Const) and math.isnan(x.value):
        return x
    per_trial = [k for k in keys if isinstance(k, (Apply, Sample))]
    constant = not isinstance(x, (Apply, Sample))
    if constant and (not per_trial or not forms.is_number(lw, x)):
        # text, logical values and blanks never meet the per-trial numbers (skipped)
        found = static_position(lw, x, keys, mode, search, wildcards)
        return lw.error("#N/A") if found is None else lw.const(found)
    logical = lw.is_logical(x)  # a per-trial TRUE/FALSE meets logical keys only
    numeric = [
        k if (lw.is_logical(k) if logical else forms.is_number(lw, k)) else lw.error("#N/A")
        for k in keys
    ]
    head = [x, lw.const(mode), lw.const(search)]
    if per_trial:
        return lw.apply("lookup_v", [*head, *numeric])  # type: ignore[list-item]
    table = lw.table([k.value for k in numeric], len(numeric), 1)  # type: ignore[union-attr]
    return lw.apply("lookup_t", [*head, table])  # type: ignore[list-item]


def pick(lw: Lowerer, pos: Node, items: list[Scalar], what: str) -> Scalar:
    """The item at 1-based ``pos`` (#REF! outside); a blank picked is 0."""
    if isinstance(pos, Const):
        if math.isnan(pos.value):
            return pos
        k = math.floor(pos.value)
        if not 1 <= k <= len(items):
            return lw.error("#REF!")
        item = items[k - 1]
        return lw.const(0.0) if item is EMPTY else item
    values = [lw.const(0.0) if v is EMPTY else v for v in items]
    if any(isinstance(v, str) for v in values):
        raise lw.fail("a lookup that may return text needs a constant lookup value", what)
    if all(isinstance(v, Const) for v in values):
        table = lw.table([v.value for v in values], len(values), 1)  # type: ignore[union-attr]
        return lw.apply("index", [table, pos])
    return lw.apply("choose", [pos, *values])  # type: ignore[list-item]


# --- the functions ------------------------------------------------------------------------------


def grid_of(lw: Lowerer, expr: Expr, sheet: str) -> Grid:
    """A range or array argument as a Grid (a single value is 1×1)."""
    rng = lw.area(expr, sheet)
    return lw.grid(rng if rng is not None else lw.lower(expr, sheet))


def _column(g: Grid, c: int) -> list[Scalar]:
    return [g.items[r * g.cols + c] for r in range(g.rows)]


def _row(g: Grid, r: int) -> list[Scalar]:
    return list(g.items[r * g.cols : (r + 1) * g.cols])


def _constant_flag(
    lw: Lowerer, args: tuple[Expr, ...], i: int, sheet: str, default: float, what: str
) -> float:
    if len(args) <= i or isinstance(args[i], Missing):
        return default if len(args) <= i else 0.0
    v = lw.scalar(args[i], sheet, what)
    if not isinstance(v, Const):
        raise lw.fail("the match type must be constant", what)
    return v.value


def _match(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Value:
    g = grid_of(lw, args[1], sheet)
    kind = _constant_flag(lw, args, 2, sheet, 1.0, "MATCH")
    if math.isnan(kind):
        return lw.const(kind)
    if g.rows != 1 and g.cols != 1:
        return lw.error("#N/A")
    mode = EXACT if kind == 0 else LE if kind > 0 else GE
    x = lw.lower(args[0], sheet)
    return lw.broadcast(lambda v: position(lw, v[0], list(g.items), mode), [x])


def _xmatch(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Value:
    g = grid_of(lw, args[1], sheet)
    match_mode = _constant_flag(lw, args, 2, sheet, 0.0, "XMATCH")
    search = _constant_flag(lw, args, 3, sheet, 1.0, "XMATCH")
    if g.rows != 1 and g.cols != 1:
        return lw.error("#VALUE!")
    if match_mode not in (0, -1, 1, 2) or search not in (1, -1, 2, -2):
        return lw.error("#VALUE!")
    mode = {0: EXACT, 2: EXACT, -1: XLE, 1: XGE}[int(match_mode)]
    direction = 1.0 if search > 0 else -1.0
    x = lw.lower(args[0], sheet)
    return lw.broadcast(
        lambda v: position(lw, v[0], list(g.items), mode, direction, match_mode == 2), [x]
    )


def _vh_lookup(vertical: bool) -> Any:
    what = "VLOOKUP" if vertical else "HLOOKUP"

    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Value:
        g = grid_of(lw, args[1], sheet)
        approx = _constant_flag(lw, args, 3, sheet, 1.0, what)
        index = lw.scalar(args[2], sheet, what)
        keys = _column(g, 0) if vertical else _row(g, 0)
        width = g.cols if vertical else g.rows
        x = lw.lower(args[0], sheet)

        def one(v: list[Scalar]) -> Scalar:
            pos = position(lw, v[0], keys, LE if approx != 0 else EXACT)
            if isinstance(index, Const):
                if math.isnan(index.value):
                    return index
                k = math.floor(index.value)
                if k < 1:
                    return lw.error("#VALUE!")
                if k > width:
                    return lw.error("#REF!")
                return pick(lw, pos, _column(g, k - 1) if vertical else _row(g, k - 1), what)
            picks = [
                pick(lw, pos, _column(g, j) if vertical else _row(g, j), what) for j in range(width)
            ]
            chosen = lw.apply("choose", [index, *(lw.numeric(p, what) for p in picks)])
            beyond = lw.apply("ge", [index, lw.const(width + 1.0)])
            return lw.apply("if", [beyond, lw.error("#REF!"), chosen])

        return lw.broadcast(one, [x])

    return lower


def _xlookup(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Value:
    keys_grid = grid_of(lw, args[1], sheet)
    result = grid_of(lw, args[2], sheet)
    if keys_grid.rows != 1 and keys_grid.cols != 1:
        return lw.error("#VALUE!")
    vertical = keys_grid.cols == 1 and (keys_grid.rows > 1 or result.cols == 1)
    n = len(keys_grid.items)
    if (result.rows if vertical else result.cols) != n:
        return lw.error("#VALUE!")
    not_found = (
        lw.lower(args[3], sheet) if len(args) > 3 and not isinstance(args[3], Missing) else None
    )
    match_mode = _constant_flag(lw, args, 4, sheet, 0.0, "XLOOKUP")
    search = _constant_flag(lw, args, 5, sheet, 1.0, "XLOOKUP")
    if match_mode not in (0, -1, 1, 2) or search not in (1, -1, 2, -2):
        return lw.error("#VALUE!")
    mode = {0: EXACT, 2: EXACT, -1: XLE, 1: XGE}[int(match_mode)]
    x = lw.lower(args[0], sheet)

    def one(v: list[Scalar]) -> Scalar:
        if isinstance(v[0], Const) and math.isnan(v[0].value):
            return v[0]  # an error to look up is the result, whatever if_not_found says
        pos = position(
            lw, v[0], list(keys_grid.items), mode, 1.0 if search > 0 else -1.0, match_mode == 2
        )
        lanes = result.cols if vertical else result.rows
        if lanes != 1:
            raise lw.fail(
                "XLOOKUP returning a whole row or column is supported only inside other functions",
                "XLOOKUP",
            )
        value = pick(lw, pos, list(result.items), "XLOOKUP")
        if not_found is None:
            return value
        if not isinstance(not_found, (Const, Apply, Sample, str)) and not_found is not EMPTY:
            raise lw.fail("if_not_found must be a single value", "XLOOKUP")
        if isinstance(pos, Const):
            return not_found if math.isnan(pos.value) else value
        missing_node = lw.apply("isna", [pos], logical=True)
        alt = lw.numeric(not_found, "XLOOKUP")
        found = lw.apply("if", [missing_node, alt, lw.numeric(value, "XLOOKUP")])
        if isinstance(v[0], (Apply, Sample)):  # an error to look up is the result
            return lw.apply("if", [lw.apply("iserror", [v[0]], logical=True), v[0], found])
        return found

    return lw.broadcast(one, [x])


def _lookup(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Value:
    g = grid_of(lw, args[1], sheet)
    if len(args) > 2:
        keys, out = list(g.items), list(grid_of(lw, args[2], sheet).items)
    elif g.cols > g.rows:
        keys, out = _row(g, 0), _row(g, g.rows - 1)
    else:
        keys, out = _column(g, 0), _column(g, g.cols - 1)
    x = lw.lower(args[0], sheet)
    return lw.broadcast(lambda v: pick(lw, position(lw, v[0], keys, LE), out, "LOOKUP"), [x])


def _index(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Value:
    rng = lw.area(args[0], sheet)
    g = lw.grid(rng if rng is not None else lw.lower(args[0], sheet))
    r = lw.scalar(args[1], sheet, "INDEX") if not isinstance(args[1], Missing) else lw.const(0.0)
    c = (
        lw.scalar(args[2], sheet, "INDEX")
        if len(args) > 2 and not isinstance(args[2], Missing)
        else None
    )
    if c is None:
        if g.rows == 1:
            r, c = lw.const(1.0), r
        elif g.cols == 1:
            c = lw.const(1.0)
        elif isinstance(r, Const):
            c = lw.const(0.0)
        else:
            raise lw.fail("INDEX of a 2-D range needs a row and a column", "INDEX")
    if isinstance(r, Const) and isinstance(c, Const):
        for v in (r, c):
            if math.isnan(v.value):
                return v
        ri, ci = math.floor(r.value), math.floor(c.value)
        if not (0 <= ri <= g.rows and 0 <= ci <= g.cols):
            return lw.error("#REF!")
        if ri == 0 or ci == 0:
            rows = range(g.rows) if ri == 0 else [ri - 1]
            cols = range(g.cols) if ci == 0 else [ci - 1]
            items = tuple(g.items[i * g.cols + j] for i in rows for j in cols)
            return Grid(len(rows), len(cols), items) if len(items) > 1 else items[0]
        item = g.items[(ri - 1) * g.cols + ci - 1]
        return lw.const(0.0) if item is EMPTY else item
    # One position constant (INDEX(table, MATCH(...), 3)): only that column (row) can be
    # picked, so text elsewhere in the table (a label column) does not matter.
    for fixed, along_rows in ((c, False), (r, True)):
        if not isinstance(fixed, Const):
            continue
        if math.isnan(fixed.value):
            return fixed
        k = math.floor(fixed.value)
        if not 0 <= k <= (g.rows if along_rows else g.cols):
            return lw.error("#REF!")
        if k >= 1:
            if along_rows:
                g, r = Grid(1, g.cols, tuple(_row(g, k - 1))), lw.const(1.0)
            else:
                g, c = Grid(g.rows, 1, tuple(_column(g, k - 1))), lw.const(1.0)
    if any(isinstance(v, str) for v in g.items):
        raise lw.fail("INDEX that may return text needs a constant position", "INDEX")
    r, c = _whole_is_first(lw, r), _whole_is_first(lw, c)
    # A constant 0 left here is the whole row (column) at a per-trial position: an array of
    # one pick per column (row), which SUM(INDEX(table, k, 0)) adds up.
    if isinstance(c, Const) and g.cols > 1:
        picks = tuple(
            _index_at(lw, Grid(g.rows, 1, tuple(_column(g, j))), r, lw.const(1.0))
            for j in range(g.cols)
        )
        return Grid(1, g.cols, picks)
    if isinstance(r, Const) and g.rows > 1:
        picks = tuple(
            _index_at(lw, Grid(1, g.cols, tuple(_row(g, i))), lw.const(1.0), c)
            for i in range(g.rows)
        )
        return Grid(g.rows, 1, picks)
    return _index_at(
        lw,
        g,
        lw.const(1.0) if isinstance(r, Const) else r,
        lw.const(1.0) if isinstance(c, Const) else c,
    )


def _index_at(lw: Lowerer, g: Grid, r: Node, c: Node) -> Node:
    """The item of numbers-only ``g`` at 1-based per-trial ``r``, ``c`` (#REF! outside)."""
    values = [lw.const(0.0) if v is EMPTY else v for v in g.items]
    if all(isinstance(v, Const) for v in values):
        table = lw.table([v.value for v in values], g.rows, g.cols)  # type: ignore[union-attr]
        return lw.apply("index", [table, r, c])
    return lw.apply("index_v", [lw.const(g.rows), lw.const(g.cols), r, c, *values])  # type: ignore[list-item]


def _whole_is_first(lw: Lowerer, k: Node) -> Node:
    """A per-trial INDEX position: 0 (the whole row or column, an array in one cell) is its
    first item, as for a constant position (see ``Lowerer.one_value``)."""
    if isinstance(k, Const):
        return k
    zero = lw.apply("and", [lw.apply("ge", [k, lw.const(0.0)]), lw.apply("lt", [k, lw.const(1.0)])])
    return lw.apply("if", [zero, lw.const(1.0), k])


def _choose(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Value:
    index = lw.scalar(args[0], sheet, "CHOOSE")
    if isinstance(index, Const):
        if math.isnan(index.value):
            return index
        k = math.floor(index.value)
        if not 1 <= k < len(args):
            return lw.error("#VALUE!")
        chosen = lw.lower(args[k], sheet)
        return lw.const(0.0) if chosen is EMPTY else chosen  # type: ignore[return-value]
    options = [lw.lower(a, sheet) for a in args[1:]]
    return lw.apply("choose", [index, *(lw.numeric(o, "CHOOSE") for o in options)])


# --- references -----------------------------------------------------------------------------------


def _make_range(lw: Lowerer, sheet: str, top: int, left: int, rows: int, cols: int) -> Range | None:
    from services.engine.build import Range

    if (
        rows < 1
        or cols < 1
        or top < 1
        or left < 1
        or top + rows - 1 > MAX_ROW
        or left + cols - 1 > MAX_COL
    ):
        return None
    return Range(sheet, top, left, top + rows - 1, left + cols - 1)


def _constant_int(lw: Lowerer, expr: Expr, sheet: str, what: str) -> int | None:
    v = lw.scalar(expr, sheet, what)
    if not isinstance(v, Const):
        raise lw.fail(
            "needs constant arguments (the reference must be known before the simulation)", what
        )
    return None if math.isnan(v.value) else math.floor(v.value)


def offset_area(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Range | None:
    base = lw.area(args[0], sheet)
    if base is None:
        return None
    dr, dc = (_constant_int(lw, a, sheet, "OFFSET") for a in args[1:3])
    height = (
        _constant_int(lw, args[3], sheet, "OFFSET")
        if len(args) > 3 and not isinstance(args[3], Missing)
        else base.rows
    )
    width = (
        _constant_int(lw, args[4], sheet, "OFFSET")
        if len(args) > 4 and not isinstance(args[4], Missing)
        else base.cols
    )
    if None in (dr, dc, height, width):
        return None
    return _make_range(lw, base.sheet, base.top + dr, base.left + dc, height, width)  # type: ignore[operator, arg-type]


_R1C1 = re.compile(
    r"^(?:(?P<sheet>.+)!)?R(?P<r>\[-?\d+\]|\d+)?C(?P<c>\[-?\d+\]|\d+)?$", re.IGNORECASE
)


def indirect_area(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Range | None:
    text = lw.lower(args[0], sheet)
    if not isinstance(text, str):
        if isinstance(text, (Apply, Sample)):
            raise lw.fail(
                "needs constant text (the reference must be known before the simulation)",
                "INDIRECT",
            )
        return None
    a1 = (
        _constant_int(lw, args[1], sheet, "INDIRECT")
        if len(args) > 1 and not isinstance(args[1], Missing)
        else 1
    )
    try:
        if a1 == 0:
            m = _R1C1.match(text.strip())
            if m is None:
                return None
            row, col = lw.cell[1], lw.cell[2]

            def part(s: str | None, here: int) -> int:
                if s is None:
                    return here
                return here + int(s[1:-1]) if s.startswith("[") else int(s)

            where = lw.graph.sheet(m["sheet"].strip("'") if m["sheet"] else None, sheet, lw.cell)
            return _make_range(lw, where, part(m["r"], row), part(m["c"], col), 1, 1)
        ref = parse_reference(text.strip(), lw.where)
        if isinstance(ref, Name):
            return lw.area(ref, sheet)
        assert isinstance(ref, Ref)
        return lw.graph.range(ref, sheet, lw.cell)
    except Exception:  # a malformed or unknown reference is #REF!, as in Excel
        return None


def _reference_value(area: Any, first: int) -> Any:
    """The value at the reference ``area`` makes; an error argument (from ``first`` on) is
    the result, any other reference that cannot be made is #REF!."""

    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Any:
        rng = area(lw, args, sheet)
        if rng is None:
            for a in args[first:]:
                v = None if isinstance(a, Missing) else lw.lower(a, sheet)
                if isinstance(v, Const) and math.isnan(v.value):
                    return v
            return lw.error("#REF!")
        return lw.cell_value(rng.sheet, rng.top, rng.left) if rng.rows == rng.cols == 1 else rng

    return lower


def index_area(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Range | None:
    base = lw.area(args[0], sheet)
    if base is None or len(args) < 2:
        return None
    r = lw.scalar(args[1], sheet, "INDEX")
    c = (
        lw.scalar(args[2], sheet, "INDEX")
        if len(args) > 2
        else lw.const(1.0 if base.rows > 1 or base.cols == 1 else 0.0)
    )
    if (
        not (isinstance(r, Const) and isinstance(c, Const))
        or math.isnan(r.value)
        or math.isnan(c.value)
    ):
        return None
    if len(args) == 2 and base.rows == 1:
        r, c = lw.const(1.0), r
    ri, ci = math.floor(r.value), math.floor(c.value)
    if not (0 <= ri <= base.rows and 0 <= ci <= base.cols):
        return None
    top, rows = (base.top, base.rows) if ri == 0 else (base.top + ri - 1, 1)
    left, cols = (base.left, base.cols) if ci == 0 else (base.left + ci - 1, 1)
    return _make_range(lw, base.sheet, top, left, rows, cols)


def choose_area(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Range | None:
    index = lw.scalar(args[0], sheet, "CHOOSE")
    if not isinstance(index, Const) or math.isnan(index.value):
        return None
    k = math.floor(index.value)
    return lw.area(args[k], sheet) if 1 <= k < len(args) else None


def _row_col(row: bool) -> Any:
    what = "ROW" if row else "COLUMN"

    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Value:
        if not args or isinstance(args[0], Missing):
            return lw.const(float(lw.cell[1] if row else lw.cell[2]))
        rng = lw.area(args[0], sheet)
        if rng is None:
            raise lw.fail("needs a reference", what)
        if row:
            items = tuple(lw.const(float(r)) for r in range(rng.top, rng.bottom + 1))
            return Grid(len(items), 1, items) if len(items) > 1 else items[0]
        items = tuple(lw.const(float(c)) for c in range(rng.left, rng.right + 1))
        return Grid(1, len(items), items) if len(items) > 1 else items[0]

    return lower


def _rows_cols(row: bool) -> Any:
    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Value:
        g = grid_of(lw, args[0], sheet)
        return lw.const(float(g.rows if row else g.cols))

    return lower


def _transposed(g: Grid) -> Grid:
    items = tuple(g.items[r * g.cols + c] for c in range(g.cols) for r in range(g.rows))
    return Grid(g.cols, g.rows, items)


def _transpose(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Value:
    return _transposed(grid_of(lw, args[0], sheet))


def _stack(horizontal: bool) -> Any:
    """HSTACK (VSTACK): the arguments' arrays side by side (one under another). A shorter
    one is padded with #N/A and a blank cell is 0, as Excel's dynamic arrays show them; so
    a model without ranges (a ModelSpec) passes ``HSTACK(a, b, c)`` where a range is taken."""

    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Value:
        grids = [grid_of(lw, a, sheet) for a in args]
        if not horizontal:
            grids = [_transposed(g) for g in grids]
        rows = max(g.rows for g in grids)
        out: list[list[Scalar]] = [[] for _ in range(rows)]
        for g in grids:
            for r in range(rows):
                row = _row(g, r) if r < g.rows else [lw.error("#N/A")] * g.cols
                out[r] += [lw.const(0.0) if v is EMPTY else v for v in row]
        stacked = Grid(rows, len(out[0]), tuple(v for row in out for v in row))
        return stacked if horizontal else _transposed(stacked)

    return lower


def _mmult(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Value:
    a, b = grid_of(lw, args[0], sheet), grid_of(lw, args[1], sheet)
    if a.cols != b.rows:
        return lw.error("#VALUE!")
    left, right = [lw.numeric(v) for v in a.items], [lw.numeric(v) for v in b.items]
    if not all(forms.is_number(lw, v) for v in (*a.items, *b.items)):
        return lw.error("#VALUE!")
    items: list[Scalar] = []
    for i in range(a.rows):
        for j in range(b.cols):
            terms = [
                lw.apply("mul", [left[i * a.cols + k], right[k * b.cols + j]])
                for k in range(a.cols)
            ]
            items.append(lw.apply("sum", terms))
    return Grid(a.rows, b.cols, tuple(items)) if len(items) > 1 else items[0]


#: Functions that return a reference, for :meth:`Lowerer.area`.
REFERENCES = {
    "OFFSET": offset_area,
    "INDIRECT": indirect_area,
    "INDEX": index_area,
    "CHOOSE": choose_area,
}

for _name, _lo, _hi, _lower in (
    ("MATCH", 2, 3, _match),
    ("XMATCH", 2, 4, _xmatch),
    ("VLOOKUP", 3, 4, _vh_lookup(True)),
    ("HLOOKUP", 3, 4, _vh_lookup(False)),
    ("XLOOKUP", 3, 6, _xlookup),
    ("LOOKUP", 2, 3, _lookup),
    ("INDEX", 2, 4, _index),
    ("CHOOSE", 2, registry.MAX_ARGS, _choose),
    ("ROW", 0, 1, _row_col(True)),
    ("COLUMN", 0, 1, _row_col(False)),
    ("ROWS", 1, 1, _rows_cols(True)),
    ("COLUMNS", 1, 1, _rows_cols(False)),
    ("TRANSPOSE", 1, 1, _transpose),
    ("MMULT", 2, 2, _mmult),
    ("HSTACK", 1, registry.MAX_ARGS, _stack(True)),
    ("VSTACK", 1, registry.MAX_ARGS, _stack(False)),
):
    registry.function(_name, CATEGORY, _lo, _hi, _lower)
registry.function("OFFSET", CATEGORY, 3, 5, _reference_value(offset_area, 1), runs="compile time")
registry.function(
    "INDIRECT", CATEGORY, 1, 2, _reference_value(indirect_area, 0), runs="compile time"
)
