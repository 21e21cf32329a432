# ruff: noqa: E501  (C source)
"""Rates per trial (IRR, XIRR, RATE): Newton's method, and a bracketing search where it fails.

``f(r) = 0`` is solved for a rate ``r > -1``. Newton's method starts from the guess, as
Excel's does (at most 50 steps; a step that would cross -100% goes halfway there instead)
and stops when a step is below 1e-12 relative. Where it does not converge, ``f`` is
evaluated at the rates of :data:`GRID`, the sign change nearest the guess is kept and
bisected to the last bit; no sign change at all is #NUM!. NumPy and the C function
``xl_solve`` take the same steps, so back ends agree to rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from services.engine.excel import registry

GRID = (
    -0.999, -0.99, -0.9, -0.75, -0.5, -0.25, -0.1, -0.05, -0.01, -1e-4, 1e-4, 0.01, 0.05,
    0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6,
)  # fmt: skip
NEWTON_STEPS = 50
TOLERANCE = 1e-12

#: ``f_df(r, trials)``: (f, f') at rates ``r`` for the trials selected by ``trials``.
Function = Callable[[np.ndarray, Any], tuple[np.ndarray, np.ndarray]]


def solve(f_df: Function, guess: Any, shape: tuple[int, ...]) -> np.ndarray:
    """The rate solving ``f`` per trial (NaN where none is found)."""
    size = int(np.prod(shape)) if shape else 1
    everyone = slice(None)
    r = np.broadcast_to(np.asarray(guess, dtype=np.float64), shape).reshape(size).copy()
    start = r.copy()
    done = np.zeros(size, dtype=bool)
    for _ in range(NEWTON_STEPS):
        with np.errstate(all="ignore"):
            f, df = f_df(r, everyone)
            step = np.broadcast_to(f / df, (size,))
        finite = np.isfinite(step)
        converged = finite & (np.abs(step) <= TOLERANCE * np.maximum(1.0, np.abs(r)))
        nxt = r - np.where(finite, step, 0.0)
        nxt = np.where(nxt <= -1.0, 0.5 * (r - 1.0), nxt)
        r = np.where(done | converged, r, nxt)
        done |= converged
        if done.all():
            return r.reshape(shape)
    lost = np.flatnonzero(~done)
    r[lost] = _bracketed(f_df, start[lost], lost)
    return r.reshape(shape)


def _bracketed(f_df: Function, guess: np.ndarray, trials: np.ndarray) -> np.ndarray:
    grid = np.asarray(GRID)
    with np.errstate(all="ignore"):
        values = np.stack([f_df(np.full(trials.size, g), trials)[0] for g in grid])
    values = np.broadcast_to(values, (grid.size, trials.size))
    change = (values[:-1] * values[1:] <= 0) & np.isfinite(values[:-1]) & np.isfinite(values[1:])
    mids = 0.5 * (grid[:-1] + grid[1:])
    distance = np.where(change, np.abs(mids[:, None] - guess[None, :]), np.inf)
    pick = np.argmin(distance, axis=0)
    found = np.isfinite(distance[pick, np.arange(trials.size)])
    lo, hi = grid[pick], grid[pick + 1]
    f_lo = values[pick, np.arange(trials.size)]
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.all((mid == lo) | (mid == hi)):
            break
        with np.errstate(all="ignore"):
            f_mid = np.broadcast_to(f_df(mid, trials)[0], mid.shape)
        same = (f_mid < 0) == (f_lo < 0)
        lo, f_lo = np.where(same, mid, lo), np.where(same, f_mid, f_lo)
        hi = np.where(same, hi, mid)
    return np.where(found, 0.5 * (lo + hi), np.nan)


registry.unit(
    "solver",
    "/* Newton from the guess, then the sign change of f on a grid nearest it, bisected */\n"
    "ALEA_HD double xl_solver_grid(int i) {\n  const double g[] = {"
    + ", ".join(repr(g) for g in GRID)
    + "};\n  return g[i];\n}\n"
    + f"#define XL_SOLVER_GRID {len(GRID)}\n"
    + r"""
/* The functions solved (C has no closures): with p, RATE's p = (n, pmt, pv, fv, type) of
   pv (1+r)^n + pmt (1 + r type) ((1+r)^n - 1)/r + fv; else the discounted sum
   sum v_i (1+r)^-t_i (t_i = i when t is null). Returns f(r), and f'(r) into *d. */
ALEA_HD double xl_solver_f(const double* p, const double* v, const double* t, int n, double r, double* d) {
  if (p) {
    double m = p[0], pmt = p[1], pv = p[2], fv = p[3], w = p[4], g = pow(1.0 + r, m);
    if (r == 0.0) { *d = pv * m + pmt * (w * m + m * (m - 1.0) / 2.0); return pv + pmt * m + fv; }
    *d = m * pv * g / (1.0 + r) + pmt * (w * (g - 1.0) / r + (1.0 + r * w) * (m * g / ((1.0 + r) * r) - (g - 1.0) / (r * r)));
    return pv * g + pmt * (1.0 + r * w) * (g - 1.0) / r + fv;
  }
  double x = 1.0 / (1.0 + r), f = 0.0; *d = 0.0;
  for (int i = 0; i < n; ++i) { double ti = t ? t[i] : (double)i, q = pow(x, ti); f += v[i] * q; *d -= ti * v[i] * q * x; }
  return f;
}
ALEA_HD_CALL double xl_solve(const double* p, const double* v, const double* t, int n, double guess) {
  double r = guess, d;
  for (int k = 0; k < 50; ++k) {
    double step = xl_solver_f(p, v, t, n, r, &d) / d;
    if (!isfinite(step)) continue;
    if (fabs(step) <= 1e-12 * fmax(1.0, fabs(r))) return r;
    double next = r - step;
    r = next <= -1.0 ? 0.5 * (r - 1.0) : next;
  }
  double best = INFINITY, lo = 0.0, hi = 0.0, flo = 0.0, prev = xl_solver_f(p, v, t, n, xl_solver_grid(0), &d);
  for (int j = 0; j + 1 < XL_SOLVER_GRID; ++j) {
    double a = xl_solver_grid(j), b = xl_solver_grid(j + 1), next = xl_solver_f(p, v, t, n, b, &d);
    double dist = fabs(0.5 * (a + b) - guess);
    if (prev * next <= 0.0 && isfinite(prev) && isfinite(next) && dist < best) { best = dist; lo = a; hi = b; flo = prev; }
    prev = next;
  }
  if (!isfinite(best)) return XL_NUM;
  for (int k = 0; k < 200; ++k) {
    double mid = 0.5 * (lo + hi);
    if (mid == lo || mid == hi) break;
    double fm = xl_solver_f(p, v, t, n, mid, &d);
    if ((fm < 0.0) == (flo < 0.0)) { lo = mid; flo = fm; } else hi = mid;
  }
  return 0.5 * (lo + hi);
}
""",
)
