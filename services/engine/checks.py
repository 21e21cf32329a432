"""Parameter checks of distributions with constant parameters (used by :mod:`.catalog`).

A check gets the constant scalar parameters and tables by name (non-constant ones are
absent: the back ends give NaN for them per trial) and calls ``fail(reason)`` for the first
parameter out of its domain, e.g. ``sd must be > 0, got -1``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import pairwise
from typing import NoReturn

Scalars = dict[str, float]
Tables = dict[str, tuple[float, ...]]
Fail = Callable[[str], NoReturn]
Check = Callable[[Scalars, Tables, Fail], None]


def fmt(x: float) -> str:
    """A parameter as shown in messages."""
    return f"{x:g}"


def positive(*names: str) -> Check:
    """Each of ``names`` > 0."""

    def check(s: Scalars, t: Tables, fail: Fail) -> None:
        for n in names:
            if n in s and s[n] <= 0:
                fail(f"{n} must be > 0, got {fmt(s[n])}")

    return check


def ordered(lo: str, mid: str | None, hi: str) -> Check:
    """``lo < hi`` and ``lo <= mid <= hi``."""

    def check(s: Scalars, t: Tables, fail: Fail) -> None:
        if lo in s and hi in s and not s[lo] < s[hi]:
            fail(f"{lo} ({fmt(s[lo])}) must be < {hi} ({fmt(s[hi])})")
        if mid is None or mid not in s:
            return
        if lo in s and s[mid] < s[lo]:
            fail(f"{mid} ({fmt(s[mid])}) must be >= {lo} ({fmt(s[lo])})")
        if hi in s and s[mid] > s[hi]:
            fail(f"{mid} ({fmt(s[mid])}) must be <= {hi} ({fmt(s[hi])})")

    return check


def whole(name: str, least: int | None) -> Check:
    """``name`` a whole number (>= ``least`` unless it is None)."""

    def check(s: Scalars, t: Tables, fail: Fail) -> None:
        v = s.get(name)
        if v is None:
            return
        if least is None and v != int(v):
            fail(f"{name} must be a whole number, got {fmt(v)}")
        if least is not None and (v < least or v != int(v)):
            fail(f"{name} must be a whole number >= {least}, got {fmt(v)}")

    return check


def within(name: str, lo: float, hi: float, open_lo: bool = False) -> Check:
    """``lo <= name <= hi`` (``lo < name`` when ``open_lo``)."""

    def check(s: Scalars, t: Tables, fail: Fail) -> None:
        v = s.get(name)
        if v is None:
            return
        if not ((lo < v) if open_lo else (lo <= v)) or v > hi:
            left = "(" if open_lo else "["
            fail(f"{name} must be in {left}{fmt(lo)}, {fmt(hi)}], got {fmt(v)}")

    return check


def every(*checks: Check) -> Check:
    """All of ``checks``, in order."""

    def check(s: Scalars, t: Tables, fail: Fail) -> None:
        for c in checks:
            c(s, t, fail)

    return check


def probabilities(values: str, probs: str) -> Check:
    """Two tables of one length, weights >= 0 with a positive sum."""

    def check(s: Scalars, t: Tables, fail: Fail) -> None:
        v, p = t.get(values), t.get(probs)
        if v is not None and p is not None and len(v) != len(p):
            fail(f"{values} has {len(v)} entries but {probs} has {len(p)}")
        if p is not None and any(x < 0 for x in p):
            fail(f"{probs} must all be >= 0")
        if p is not None and not sum(p) > 0:
            fail(f"{probs} must sum to a positive number")

    return check


def cumulative(xs: str, ps: str, descending: bool = False) -> Check:
    """Points of a cumulative curve within [min, max]: x increasing, p monotone in [0, 1]."""

    def check(s: Scalars, t: Tables, fail: Fail) -> None:
        x, p = t.get(xs), t.get(ps)
        if x is not None and p is not None and len(x) != len(p):
            fail(f"{xs} has {len(x)} entries but {ps} has {len(p)}")
        if x is not None:
            if any(b <= a for a, b in pairwise(x)):
                fail(f"{xs} must be strictly increasing")
            lo, hi = s.get("min", -math.inf), s.get("max", math.inf)
            if x and (x[0] < lo or x[-1] > hi):
                fail(f"{xs} must lie within [min, max] = [{fmt(lo)}, {fmt(hi)}]")
        if p is not None:
            if any(not 0 <= v <= 1 for v in p):
                fail(f"{ps} must lie in [0, 1]")
            if any((b > a) if descending else (b < a) for a, b in pairwise(p)):
                fail(f"{ps} must be {'non-increasing' if descending else 'non-decreasing'}")

    return check
