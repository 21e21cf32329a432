"""``RiskResample``: a model samples a dataset directly (the bootstrap).

``=RiskResample(method, Data!A2:A501)`` is, in every trial, one of the range's ``n`` numbers.
Blank cells of the range are skipped (a dataset's column ends where its data end); text,
errors and uncertain cells are refused naming the cell. @RISK's three methods:

* 2, random with replacement: each number equally likely in every trial. It lowers to
  ``RiskDUniform`` of the numbers, so Latin Hypercube and Sobol sample it as any input, and
  property functions follow the data as after any distribution
  (``RiskResample(2, A2:A501, RiskName("Loss"), RiskSeed(7))``); a refused property names
  ``RiskDUniform``.
* 1, in order: trial ``t`` (0-based, the trial's index in the whole run) takes number
  ``t mod n``, in the range's order, so the data repeat every ``n`` trials.
* 3, without replacement: trials come in blocks of ``n`` (block ``k = t div n``) and every
  block uses each number exactly once, in a shuffled order: trial ``t`` takes number
  ``perm_k(t mod n)``, ``perm_k`` the pseudo-random permutation defined below.

Methods 1 and 3 tie a value to the trial's position, not to a random draw, so they ignore the
sampling method (as @RISK does: Latin Hypercube and Sobol sample the other inputs), and a
correlation (``RiskCorrmat``), a truncation (``RiskTruncate``, ``RiskTruncateP``) or
``RiskLock`` on them is refused naming the cell; ``RiskName``, ``RiskSeed`` and ``RiskShift``
apply. Every RiskSimtable simulation runs the same trials, so each sees the data in the same
order (with ``vary_seeds``, method 3 shuffles each simulation's copy by its own stream). A
RiskCompound severity cannot use them (its extra draws have no position).

In the IR such an input is ``Sample("resample", (Const(method), Table(numbers, n, 1)))``; its
"uniform" in trial ``t`` is ``(i + 0.5) / n`` for the position ``i`` of its number
(:func:`positions`, the same on every back end), whose quantile is the number at position
``floor(u n)`` (``sampling``; ``ppf_resample`` in the generated source).

The permutation (reproducible per trial, independent of chunking, threads and workers): with
``key`` the input's ``RiskSeed`` or the simulation's seed and ``s`` its stream (the stream it
draws from, for a RiskSimtable copy), word ``j`` (``j = 0 .. 11``) is word ``j % 4`` of
Philox4x64-10(counter ``(3k + j // 4, DOMAIN, 0, 0)``, key ``(key, s)``). On ``2h`` bits
(``h = max(1, ceil(bits(n - 1) / 2))``, so ``2^(2h) >= n``), ``x`` splits into ``L = x >> h``
and ``R = x & (2^h - 1)``; each of 11 Feistel rounds ``j = 1 .. 11`` sets ``(L, R) = (R, L ^
(mix(R ^ w_j) & (2^h - 1)))``, ``mix`` the splitmix64 finaliser; then ``x = ((L << h) | R) +
w_0`` modulo ``2^(2h)`` (a Feistel network's permutations are all even; the offset makes
either parity equally likely). That is a bijection on ``[0, 2^(2h))``; applied again while
``x >= n`` (cycle walking, fewer than 4 times on average) it is one on ``[0, n)``. Eleven
rounds: with four, or seven, the orders of a block of 3 to 6 numbers are measurably not
equally likely (chi-square over 400,000 blocks); with eleven they are.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from . import rng
from .formula import Array, Call, Expr, Number
from .ir import Const, Node, Sample, Table
from .values import EMPTY

if TYPE_CHECKING:
    from .lowering import Lowerer

__all__ = ["DISTRIBUTION", "DOMAIN", "FUNCTION", "feistel_bits", "lower", "positions"]

FUNCTION = "riskresample"
DISTRIBUTION = "resample"
"""The ``Sample.distribution`` of methods 1 and 3 (method 2 is ``duniform``)."""
DOMAIN = 4
"""The Philox counter domain of the permutations' keys (0: trials, 1: LHS, 2: RiskCompound,
3: Sobol)."""
IN_ORDER, WITH_REPLACEMENT, WITHOUT_REPLACEMENT = 1.0, 2.0, 3.0
_ROUNDS = 11
_PHILOX_BLOCKS = 3  # words: the offset, then a key per round
_MIX = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


def lower(lw: Lowerer, expr: Call, sheet: str) -> Node:
    """One uncertain input drawing the data's values by the method given."""
    from . import catalog  # lowering has it loaded; the services import this module without

    fn = "RiskResample"
    catalog.check_arity(fn, len(expr.args), 2, catalog.MAX_ARGS, lw.where)
    method = lw.scalar(expr.args[0], sheet, fn)
    methods = (IN_ORDER, WITH_REPLACEMENT, WITHOUT_REPLACEMENT)
    if not isinstance(method, Const) or method.value not in methods:
        raise lw.fail(
            "the method must be 1 (in order), 2 (random, with replacement) or 3 (random, "
            "without replacement)",
            fn,
        )
    numbers = _numbers(lw, expr.args[1], sheet)
    if method.value == WITH_REPLACEMENT:
        data = Array(tuple((Number(v),) for v in numbers))
        duniform = Call("RiskDUniform", (data, *expr.args[2:]))
        return lw.risk.sample(catalog.DISTRIBUTIONS["duniform"], duniform, sheet)
    props = lw.risk.properties(fn, expr.args[2:], sheet)
    for prop, given in (
        ("RiskCorrmat", props.corrmat is not None),
        ("RiskTruncate", props.truncate is not None),
        ("RiskTruncateP", props.truncate_p is not None),
        ("RiskLock", props.lock),
    ):
        if given:
            raise lw.fail(
                f"{prop} cannot apply to methods 1 and 3 (each trial's value is fixed by its "
                "position in the run)",
                fn,
            )
    params = (method, lw.table(numbers, len(numbers), 1))
    node = lw.risk.new_input(DISTRIBUTION, params, props.name or lw.risk.label(), None, props.seed)
    return lw.apply("add", [node, lw.const(props.shift)]) if props.shift else node


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


def feistel_bits(n: int) -> int:
    """``h``: the permutation of ``n`` positions runs on ``2h`` bits."""
    return max(1, ((n - 1).bit_length() + 1) // 2)


def positions(s: Sample, key: int, first: int, count: int) -> np.ndarray:
    """The "uniforms" ``(i + 0.5) / n`` of trials ``[first, first + count)`` of a method 1 or
    3 input ``s`` (its own or its source's, for a copy), ``i`` the position of the trial's
    number; ``key`` the seed of its Philox key."""
    method, data = s.params
    assert isinstance(method, Const) and isinstance(data, Table)
    n = np.uint64(len(data.values))
    block, i = np.divmod(np.arange(first, first + count, dtype=np.uint64), n)
    if method.value == WITHOUT_REPLACEMENT:
        i = _shuffle(i, block, len(data.values), key, s.stream)
    u: np.ndarray = (i.astype(np.float64) + 0.5) / float(n)
    return u


def _shuffle(i: np.ndarray, block: np.ndarray, n: int, key: int, stream: int) -> np.ndarray:
    """``perm_k(i)`` for every trial (the module's permutation), ``k`` its block."""
    blocks, at = np.unique(block, return_inverse=True)
    keys = np.full(blocks.shape, key, np.uint64)
    counter = blocks * np.uint64(_PHILOX_BLOCKS)
    words = np.concatenate(
        [rng.blocks(counter + np.uint64(c), DOMAIN, keys, stream) for c in range(_PHILOX_BLOCKS)]
    )[:, at]
    h = np.uint64(feistel_bits(n))
    half, whole = np.uint64((1 << int(h)) - 1), np.uint64((1 << int(2 * h)) - 1)
    todo = np.arange(i.size)
    x = i.copy()
    while todo.size:  # cycle walking: again where the permutation left [0, n)
        left, right = x[todo] >> h, x[todo] & half
        for j in range(1, _ROUNDS + 1):
            left, right = right, left ^ (_mix(right ^ words[j, todo]) & half)
        x[todo] = (((left << h) | right) + words[0, todo]) & whole
        todo = todo[x[todo] >= n]
    return x


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (``alea_mix64``); products wrap modulo 2^64."""
    z = z ^ (z >> np.uint64(30))
    z *= _MIX[0]
    z ^= z >> np.uint64(27)
    z *= _MIX[1]
    z ^= z >> np.uint64(31)
    return z
