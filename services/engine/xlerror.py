"""Excel error values as NaN payloads: one float64 per value on every back end.

An Excel error is a quiet NaN whose payload is the error's ``ERROR.TYPE`` number
(``0x7FF8000000000000 | code``), so ``IFNA``, ``ISNA``, ``ISERR`` and ``ERROR.TYPE`` can tell
``#N/A`` from ``#DIV/0!`` while every other function simply propagates the NaN. Any other
NaN (what hardware makes of ``0 * inf`` or ``sqrt(-1)``, a GPU's canonical NaN) reads as
``#NUM!``, the error Excel gives for arithmetic out of range.

Propagation follows the hardware: an operation with one NaN operand returns that NaN (x86,
ARM and CUDA double precision keep the payload), so an error travels through arithmetic
unchanged. Where two different errors meet in one operation the result is one of them;
Excel's rule (the first argument's error) is kept by every function of :mod:`.excel`, which
tests its arguments in order, but not necessarily by a bare ``+`` once a compiler has
reordered it.
"""

from __future__ import annotations

import struct

import numpy as np

__all__ = [
    "CODES",
    "CPP",
    "DIV0",
    "NA",
    "NAME",
    "NULL",
    "NUM",
    "REF",
    "VALUE",
    "code",
    "codes",
    "error",
    "name",
]

#: Excel's error literals and their ``ERROR.TYPE`` numbers.
CODES: dict[str, int] = {
    "#NULL!": 1,
    "#DIV/0!": 2,
    "#VALUE!": 3,
    "#REF!": 4,
    "#NAME?": 5,
    "#NUM!": 6,
    "#N/A": 7,
}
_NAMES = {v: k for k, v in CODES.items()}
_QUIET = 0x7FF8000000000000
_PAYLOAD = 0x0007FFFFFFFFFFFF  # the bits below the quiet bit


def error(code: int) -> float:
    """The NaN that stands for error ``code`` (an ``ERROR.TYPE`` number)."""
    value: float = struct.unpack("<d", struct.pack("<Q", _QUIET | code))[0]
    return value


NULL, DIV0, VALUE, REF, NAME, NUM, NA = (error(c) for c in range(1, 8))


def code(x: float) -> int:
    """``ERROR.TYPE`` of ``x``: 0 for a number, the payload's code, or 6 (#NUM!) for a NaN
    without one."""
    if x == x:
        return 0
    payload = struct.unpack("<Q", struct.pack("<d", float(x)))[0] & _PAYLOAD
    return payload if payload in _NAMES else CODES["#NUM!"]


def codes(x: np.ndarray | float) -> np.ndarray:
    """``code`` element by element: an int64 array of x's shape."""
    arr = np.asarray(x, dtype=np.float64)
    payload = arr.view(np.uint64) & np.uint64(_PAYLOAD)
    known = (payload >= 1) & (payload <= 7)
    out = np.where(known, payload, np.uint64(CODES["#NUM!"])).astype(np.int64)
    return np.where(np.isnan(arr), out, 0)


def name(x: float) -> str:
    """``"#N/A"`` and the like for an error, ``""`` for a number."""
    return _NAMES.get(code(x), "")


#: The C++ side (a unit of :mod:`.excel.registry`): ``xl_err(code)`` makes an error,
#: ``xl_code(x)`` reads one (0 for a number), exactly as above.
CPP = r"""
ALEA_HD double xl_err(int code) {
#ifdef __CUDA_ARCH__
  return __longlong_as_double((long long)(0x7FF8000000000000ULL | (u64)code));
#else
  u64 bits = 0x7FF8000000000000ULL | (u64)code; double x; memcpy(&x, &bits, 8); return x;
#endif
}
ALEA_HD int xl_code(double x) {
  if (!isnan(x)) return 0;
#ifdef __CUDA_ARCH__
  u64 bits = (u64)__double_as_longlong(x);
#else
  u64 bits; memcpy(&bits, &x, 8);
#endif
  u64 payload = bits & 0x0007FFFFFFFFFFFFULL;
  return (payload >= 1 && payload <= 7) ? (int)payload : 6;
}
#define XL_NULL xl_err(1)
#define XL_DIV0 xl_err(2)
#define XL_VALUE xl_err(3)
#define XL_REF xl_err(4)
#define XL_NAME xl_err(5)
#define XL_NUM xl_err(6)
#define XL_NA xl_err(7)
/* Excel's rule: a function's result is its first argument that is an error */
#define XL_ERR1(a) do { if (isnan(a)) return (a); } while (0)
#define XL_ERR2(a, b) do { XL_ERR1(a); XL_ERR1(b); } while (0)
#define XL_ERR3(a, b, c) do { XL_ERR2(a, b); XL_ERR1(c); } while (0)
#define XL_ERR4(a, b, c, d) do { XL_ERR3(a, b, c); XL_ERR1(d); } while (0)
#define XL_ERR5(a, b, c, d, e) do { XL_ERR4(a, b, c, d); XL_ERR1(e); } while (0)
#define XL_ERR6(a, b, c, d, e, f) do { XL_ERR5(a, b, c, d, e); XL_ERR1(f); } while (0)
/* a finite result, else #NUM! (Excel has no infinities) */
ALEA_HD double xl_num(double r) { return isfinite(r) ? r : XL_NUM; }
"""
