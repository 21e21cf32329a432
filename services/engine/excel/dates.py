# ruff: noqa: E501  (C source)
"""Date and time functions over serial numbers, with Excel's 1900 date system.

Serial 1 is 1900-01-01 and serial 60 the 29 February 1900 that never was (Excel keeps
Lotus 1-2-3's leap-year bug), so from serial 61 (1900-03-01) on a serial counts days since
1899-12-30; serial 0 is "1900-01-00". Valid serials are 0 to 2958465 (9999-12-31); outside
them date functions give #NUM!. Weekdays follow the serials (serial 1 is a Sunday), as in
Excel. Calendar conversions are Howard Hinnant's days-from-civil algorithms, written the
same way in NumPy (on float64 arrays, exact for these magnitudes) and C++.
"""

from __future__ import annotations

import datetime
import math
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from services.engine.excel import forms, registry
from services.engine.excel.arrays import NUM, elementwise
from services.engine.ir import Const, Node

if TYPE_CHECKING:
    from services.engine.formula import Expr
    from services.engine.lowering import Lowerer

CATEGORY = "Date and time"
MAX_SERIAL = 2958465.0
_UNIX = 25569.0  # serial of 1970-01-01

# --- the calendar, in NumPy -----------------------------------------------------------------


def _fd(a: Any, b: float) -> Any:
    return np.floor(np.divide(a, b))


def ymd(serial: Any) -> tuple[Any, Any, Any]:
    """(year, month, day) of whole serials >= 0 (serial 0 is 1900-01-00, 60 is 1900-02-29)."""
    s = np.floor(serial)
    z = s - _UNIX + 719468.0
    era = _fd(z, 146097.0)
    doe = z - era * 146097.0
    yoe = _fd(doe - _fd(doe, 1460.0) + _fd(doe, 36524.0) - _fd(doe, 146096.0), 365.0)
    doy = doe - (365.0 * yoe + _fd(yoe, 4.0) - _fd(yoe, 100.0))
    mp = _fd(5.0 * doy + 2.0, 153.0)
    d = doy - _fd(153.0 * mp + 2.0, 5.0) + 1.0
    m = np.where(mp < 10, mp + 3.0, mp - 9.0)
    y = yoe + era * 400.0 + (m <= 2)
    early = s < 61
    return (
        np.where(early, 1900.0, y),
        np.where(early, np.where(s <= 31, 1.0, 2.0), m),
        np.where(early, np.where(s <= 31, s, s - 31.0), d),
    )


def serial(y: Any, m: Any, d: Any) -> Any:
    """The serial of day ``d`` of month ``m`` of year ``y`` (months and days may overflow,
    as DATE allows), on Excel's calendar; no range check."""
    y = y + _fd(m - 1.0, 12.0)
    m = np.mod(m - 1.0, 12.0) + 1.0
    yy = y - (m <= 2)
    era = _fd(yy, 400.0)
    yoe = yy - era * 400.0
    doy = _fd(153.0 * (m + np.where(m > 2, -3.0, 9.0)) + 2.0, 5.0)
    doe = yoe * 365.0 + _fd(yoe, 4.0) - _fd(yoe, 100.0) + doy
    first = era * 146097.0 + doe - 719468.0 + _UNIX
    first = first - (first < 61)  # before 1900-03-01 Excel's serials are one less
    return first + d - 1.0


def _days_in_month(y: Any, m: Any) -> Any:
    return serial(y, m + 1.0, 1.0) - serial(y, m, 1.0)


def _valid(s: Any) -> Any:
    return (s >= 0) & (s < MAX_SERIAL + 1)


_CALENDAR_CPP = r"""
ALEA_HD double xl_fd(double a, double b) { return floor(a / b); }
ALEA_HD void xl_ymd(double serial, double* y, double* m, double* d) {
  double s = floor(serial);
  if (s < 61.0) { *y = 1900.0; *m = s <= 31.0 ? 1.0 : 2.0; *d = s <= 31.0 ? s : s - 31.0; return; }
  double z = s - 25569.0 + 719468.0, era = xl_fd(z, 146097.0), doe = z - era * 146097.0;
  double yoe = xl_fd(doe - xl_fd(doe, 1460.0) + xl_fd(doe, 36524.0) - xl_fd(doe, 146096.0), 365.0);
  double doy = doe - (365.0 * yoe + xl_fd(yoe, 4.0) - xl_fd(yoe, 100.0));
  double mp = xl_fd(5.0 * doy + 2.0, 153.0);
  *d = doy - xl_fd(153.0 * mp + 2.0, 5.0) + 1.0;
  *m = mp < 10.0 ? mp + 3.0 : mp - 9.0;
  *y = yoe + era * 400.0 + (*m <= 2.0 ? 1.0 : 0.0);
}
ALEA_HD double xl_serial(double y, double m, double d) {
  y += xl_fd(m - 1.0, 12.0); m = fmod(fmod(m - 1.0, 12.0) + 12.0, 12.0) + 1.0;
  double yy = y - (m <= 2.0 ? 1.0 : 0.0), era = xl_fd(yy, 400.0), yoe = yy - era * 400.0;
  double doy = xl_fd(153.0 * (m + (m > 2.0 ? -3.0 : 9.0)) + 2.0, 5.0);
  double doe = yoe * 365.0 + xl_fd(yoe, 4.0) - xl_fd(yoe, 100.0) + doy;
  double first = era * 146097.0 + doe - 719468.0 + 25569.0;
  if (first < 61.0) first -= 1.0;
  return first + d - 1.0;
}
ALEA_HD bool xl_valid_serial(double s) { return s >= 0.0 && s < 2958466.0; }
ALEA_HD bool xl_isleap(double y) { return (fmod(y, 4.0) == 0.0 && fmod(y, 100.0) != 0.0) || fmod(y, 400.0) == 0.0; }
ALEA_HD double xl_days_in_month(double y, double m) { return xl_serial(y, m + 1.0, 1.0) - xl_serial(y, m, 1.0); }
"""
registry.unit("calendar", _CALENDAR_CPP)


def _fn(
    name: str, numpy: Any, cpp: str, required: int, defaults: tuple[Any, ...] = (), **kw: Any
) -> None:
    forms.scalar(name, CATEGORY, numpy, cpp, required, defaults, needs=("calendar",), **kw)


# --- DATE and its parts -----------------------------------------------------------------------


def _date(y: Any, m: Any, d: Any) -> Any:
    y, m, d = np.floor(y), np.floor(m), np.floor(d)
    y = np.where((y >= 0) & (y < 1900), y + 1900.0, y)
    s = serial(y, m, d)
    return np.where((y < 0) | (y >= 10000) | ~_valid(s), NUM, s)


_fn(
    "DATE",
    _date,
    """ALEA_HD double xl_date(double y, double m, double d) {
  XL_ERR3(y, m, d); y = floor(y); m = floor(m); d = floor(d);
  if (y >= 0.0 && y < 1900.0) y += 1900.0;
  if (y < 0.0 || y >= 10000.0) return XL_NUM;
  double s = xl_serial(y, m, d); return xl_valid_serial(s) ? s : XL_NUM;
}
""",
    3,
)


def _part(index: int) -> Any:
    def apply(s: Any) -> Any:
        return np.where(_valid(s), ymd(np.where(_valid(s), s, 0.0))[index], NUM)

    return apply


for _name, _i in (("YEAR", 0), ("MONTH", 1), ("DAY", 2)):
    _fn(
        _name,
        _part(_i),
        f"""ALEA_HD double xl_{_name.lower()}(double s) {{
  XL_ERR1(s); if (!xl_valid_serial(s)) return XL_NUM;
  double y, m, d; xl_ymd(s, &y, &m, &d); return {"ymd"[_i]};
}}
""",
        1,
    )


def _edate(s: Any, months: Any, end_of_month: bool) -> Any:
    ok = _valid(s)
    y, m, d = ymd(np.where(ok, s, 1.0))
    m2 = m + np.trunc(months)
    if end_of_month:
        r = serial(y, m2 + 1.0, 1.0) - 1.0
    else:
        r = serial(y, m2, np.minimum(d, _days_in_month(y, m2)))
    return np.where(ok & _valid(r), r, NUM)


_fn(
    "EDATE",
    lambda s, n: _edate(s, n, False),
    """ALEA_HD double xl_edate(double s, double n) {
  XL_ERR2(s, n); if (!xl_valid_serial(s)) return XL_NUM;
  double y, m, d; xl_ymd(s, &y, &m, &d); double m2 = m + trunc(n);
  double r = xl_serial(y, m2, fmin(d, xl_days_in_month(y, m2))); return xl_valid_serial(r) ? r : XL_NUM;
}
""",
    2,
)
_fn(
    "EOMONTH",
    lambda s, n: _edate(s, n, True),
    """ALEA_HD double xl_eomonth(double s, double n) {
  XL_ERR2(s, n); if (!xl_valid_serial(s)) return XL_NUM;
  double y, m, d; xl_ymd(s, &y, &m, &d);
  double r = xl_serial(y, m + trunc(n) + 1.0, 1.0) - 1.0; return xl_valid_serial(r) ? r : XL_NUM;
}
""",
    2,
)


def _days(end: Any, start: Any) -> Any:
    ok = _valid(end) & _valid(start)
    return np.where(ok, np.floor(end) - np.floor(start), NUM)


_fn(
    "DAYS",
    _days,
    "ALEA_HD double xl_days(double e, double s) { XL_ERR2(e, s); return (xl_valid_serial(e) && xl_valid_serial(s)) ? floor(e) - floor(s) : XL_NUM; }\n",
    2,
)


def _weekday(s: Any, kind: Any) -> Any:
    """WEEKDAY: type 1 (Sunday 1..Saturday 7), 2 (Monday 1), 3 (Monday 0), 11-17 (1 on Monday..Sunday)."""
    k = np.trunc(kind)
    shift = np.where((k >= 1) & (k <= 2), k - 1.0, np.where(k == 3, 2.0, k - 10.0))
    good = ((k >= 1) & (k <= 3)) | ((k >= 11) & (k <= 17))
    r = np.mod(np.floor(s) + 7.0 - shift, 7.0)
    r = np.where(r == 0, np.where(k == 3, 0.0, 7.0), r)
    return np.where(good & _valid(s), r, NUM)


_fn(
    "WEEKDAY",
    _weekday,
    """ALEA_HD double xl_weekday(double s, double kind) {
  XL_ERR2(s, kind); double k = trunc(kind);
  bool good = (k >= 1.0 && k <= 3.0) || (k >= 11.0 && k <= 17.0);
  if (!good || !xl_valid_serial(s)) return XL_NUM;
  double shift = (k <= 2.0) ? k - 1.0 : (k == 3.0 ? 2.0 : k - 10.0);
  double r = fmod(floor(s) + 7.0 - shift, 7.0);
  return r == 0.0 ? (k == 3.0 ? 0.0 : 7.0) : r;
}
""",
    1,
    (1.0,),
)

# --- day counts ---------------------------------------------------------------------------------


def _is_last_of_feb(y: Any, m: Any, d: Any) -> Any:
    """The last day of February on the real calendar (29 February 1900 never is)."""
    return (m == 2) & (d == 28.0 + _isleap(y))


def _days360(start: Any, end: Any, european: Any) -> Any:
    ok = _valid(start) & _valid(end)
    y1, m1, d1 = ymd(np.where(ok, start, 1.0))
    y2, m2, d2 = ymd(np.where(ok, end, 1.0))
    eu = european != 0
    us_d1 = np.minimum(d1, 30.0)
    us_d2 = np.where(us_d1 == 30, np.minimum(d2, 30.0), d2)
    us_d1 = np.where(_is_last_of_feb(y1, m1, d1), 30.0, us_d1)
    e_d1, e_d2 = np.minimum(d1, 30.0), np.minimum(d2, 30.0)
    a, b = np.where(eu, e_d1, us_d1), np.where(eu, e_d2, us_d2)
    return np.where(ok, 360.0 * (y2 - y1) + 30.0 * (m2 - m1) + (b - a), NUM)


_fn(
    "DAYS360",
    _days360,
    """ALEA_HD double xl_days360(double s, double e, double eu) {
  XL_ERR3(s, e, eu); if (!xl_valid_serial(s) || !xl_valid_serial(e)) return XL_NUM;
  double y1, m1, d1, y2, m2, d2; xl_ymd(s, &y1, &m1, &d1); xl_ymd(e, &y2, &m2, &d2);
  double a, b;
  if (eu != 0.0) { a = fmin(d1, 30.0); b = fmin(d2, 30.0); }
  else {
    a = fmin(d1, 30.0);
    b = a == 30.0 ? fmin(d2, 30.0) : d2;
    if (m1 == 2.0 && d1 == 28.0 + (xl_isleap(y1) ? 1.0 : 0.0)) a = 30.0;
  }
  return 360.0 * (y2 - y1) + 30.0 * (m2 - m1) + (b - a);
}
""",
    2,
    (0.0,),
)


def _isleap(y: Any) -> Any:
    return ((np.mod(y, 4) == 0) & (np.mod(y, 100) != 0)) | (np.mod(y, 400) == 0)


def _yearfrac(start: Any, end: Any, basis: Any) -> Any:
    """YEARFRAC, bases 0-4, as Excel computes them (basis 1 after D. A. Wheeler's analysis)."""
    b = np.trunc(basis)
    ok = _valid(start) & _valid(end) & (b >= 0) & (b <= 4)
    lo, hi = np.minimum(start, end), np.maximum(start, end)
    lo, hi = np.floor(np.where(ok, lo, 1.0)), np.floor(np.where(ok, hi, 1.0))
    y1, m1, d1 = ymd(lo)
    y2, m2, d2 = ymd(hi)
    actual = hi - lo
    # basis 0, US 30/360
    a, c = d1.copy(), d2.copy()
    feb1, feb2 = _is_last_of_feb(y1, m1, d1), _is_last_of_feb(y2, m2, d2)
    both31 = (d1 == 31) & (d2 == 31)
    c = np.where(both31 | ((d1 == 30) & (d2 == 31)) | (feb1 & feb2), 30.0, c)
    a = np.where((d1 == 31) | feb1, 30.0, a)
    us = (360.0 * (y2 - y1) + 30.0 * (m2 - m1) + (c - a)) / 360.0
    # basis 4, European 30/360
    eu = (
        360.0 * (y2 - y1) + 30.0 * (m2 - m1) + (np.minimum(d2, 30.0) - np.minimum(d1, 30.0))
    ) / 360.0
    # basis 1, actual/actual
    within = (y1 == y2) | ((y2 == y1 + 1) & ((m1 > m2) | ((m1 == m2) & (d1 >= d2))))
    feb29 = np.zeros(np.shape(lo), dtype=bool)
    for k in range(2):  # a Feb 29 in [lo, hi] for a span of at most a year: in y1 or y2
        yk = y1 + k
        leap = _isleap(yk)
        f29 = serial(yk, 2.0, 29.0)
        feb29 |= leap & (f29 >= lo) & (f29 <= hi)
    short_len = np.where(((y1 == y2) & _isleap(y1)) | feb29, 366.0, 365.0)
    years = y2 - y1 + 1.0
    total = serial(y2 + 1.0, 1.0, 1.0) - serial(y1, 1.0, 1.0)
    long_len = total / years
    act = actual / np.where(within, short_len, long_len)
    r = np.select([b == 0, b == 1, b == 2, b == 3], [us, act, actual / 360.0, actual / 365.0], eu)
    return np.where(ok, r, NUM)


_fn(
    "YEARFRAC",
    _yearfrac,
    """ALEA_HD double xl_yearfrac(double start, double end, double basis) {
  XL_ERR3(start, end, basis); double b = trunc(basis);
  if (!xl_valid_serial(start) || !xl_valid_serial(end) || b < 0.0 || b > 4.0) return XL_NUM;
  double lo = floor(fmin(start, end)), hi = floor(fmax(start, end)), y1, m1, d1, y2, m2, d2;
  xl_ymd(lo, &y1, &m1, &d1); xl_ymd(hi, &y2, &m2, &d2);
  double actual = hi - lo;
  if (b == 0.0) {
    bool feb1 = m1 == 2.0 && d1 == 28.0 + (xl_isleap(y1) ? 1.0 : 0.0), feb2 = m2 == 2.0 && d2 == 28.0 + (xl_isleap(y2) ? 1.0 : 0.0);
    double a = d1, c = d2;
    if ((d1 == 31.0 && d2 == 31.0) || (d1 == 30.0 && d2 == 31.0) || (feb1 && feb2)) c = 30.0;
    if (d1 == 31.0 || feb1) a = 30.0;
    return (360.0 * (y2 - y1) + 30.0 * (m2 - m1) + (c - a)) / 360.0;
  }
  if (b == 1.0) {
    bool within = y1 == y2 || (y2 == y1 + 1.0 && (m1 > m2 || (m1 == m2 && d1 >= d2)));
    if (within) {
      bool feb29 = false;
      for (int k = 0; k < 2; ++k) { double yk = y1 + k, f = xl_serial(yk, 2.0, 29.0); feb29 = feb29 || (xl_isleap(yk) && f >= lo && f <= hi); }
      return actual / (((y1 == y2 && xl_isleap(y1)) || feb29) ? 366.0 : 365.0);
    }
    return actual / ((xl_serial(y2 + 1.0, 1.0, 1.0) - xl_serial(y1, 1.0, 1.0)) / (y2 - y1 + 1.0));
  }
  if (b == 2.0) return actual / 360.0;
  if (b == 3.0) return actual / 365.0;
  return (360.0 * (y2 - y1) + 30.0 * (m2 - m1) + (fmin(d2, 30.0) - fmin(d1, 30.0))) / 360.0;
}
""",
    2,
    (0.0,),
)

# --- working days ---------------------------------------------------------------------------------
#
# Serial k is a weekend day when k mod 7 is 0 (Saturday) or 1 (Sunday). weekdays(n), the
# number of weekdays among serials 0..n, is 5 per whole week plus max(0, r - 2) for the r
# serials of the last part week.


def _weekdays_upto(n: Any) -> Any:
    q, r = _fd(n + 1.0, 7.0), np.mod(n + 1.0, 7.0)
    return 5.0 * q + np.maximum(r - 2.0, 0.0)


def _holidays(table: Any) -> np.ndarray:
    """Distinct whole holiday serials that fall on weekdays, ascending."""
    h = np.unique(np.floor(np.asarray(table.values, dtype=np.float64)))
    return h[np.mod(h, 7.0) >= 2]


def _networkdays(start: Any, end: Any, table: Any) -> Any:
    ok = _valid(start) & _valid(end)
    a, b = np.floor(start), np.floor(end)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    count = _weekdays_upto(hi) - _weekdays_upto(lo - 1.0)
    h = _holidays(table)
    if h.size:
        count = count - (np.searchsorted(h, hi, side="right") - np.searchsorted(h, lo, side="left"))
    return np.where(ok, np.where(b < a, -count, count), NUM)


def _kth_weekday(k: Any) -> Any:
    """The serial of weekday number ``k`` (weekdays numbered from 1 at serial 2)."""
    w = _fd(k - 1.0, 5.0)
    return 7.0 * w + 2.0 + (k - 1.0 - 5.0 * w)


def _workday(start: Any, days: Any, table: Any) -> Any:
    """The serial ``days`` weekdays after (before) ``start``, skipping holidays: the weekday
    numbered W(start) + days, moved by the holidays it passes until it passes no more."""
    s, n = np.floor(start), np.trunc(days)
    weekend = np.mod(s, 7.0) < 2
    base = _weekdays_upto(s) + n + ((n < 0) & weekend)
    result = _kth_weekday(base)
    h = _holidays(table)
    for _ in range(h.size):
        lo, hi = np.where(n > 0, s + 1.0, result), np.where(n > 0, result, s - 1.0)
        covered = np.searchsorted(h, hi, side="right") - np.searchsorted(h, lo, side="left")
        nxt = _kth_weekday(base + np.where(n > 0, covered, -covered))
        if np.array_equal(nxt, result):
            break
        result = nxt
    result = np.where(n == 0, s, result)
    return np.where(_valid(start) & _valid(result), result, NUM)


registry.unit(
    "workdays",
    r"""
ALEA_HD double xl_weekdays_upto(double n) { double q = floor((n + 1.0) / 7.0), r = fmod(n + 1.0, 7.0); if (r < 0.0) r += 7.0; return 5.0 * q + fmax(r - 2.0, 0.0); }
ALEA_HD bool xl_weekday_serial(double k) { double r = fmod(k, 7.0); if (r < 0.0) r += 7.0; return r >= 2.0; }
/* holidays h[0..n): count the distinct weekday ones within [lo, hi] */
ALEA_HD double xl_holidays_in(const double* h, int rows, int cols, double lo, double hi) {
  int n = rows * cols; double count = 0.0;
  for (int i = 0; i < n; ++i) {
    double v = floor(h[i]); bool seen = false;
    for (int j = 0; j < i; ++j) seen = seen || floor(h[j]) == v;
    if (!seen && v >= lo && v <= hi && xl_weekday_serial(v)) count += 1.0;
  }
  return count;
}
""",
)
_fn_units = ("calendar", "workdays")

registry.unit(
    "networkdays",
    """ALEA_HD double xl_networkdays(double start, double end, const double* h, int rows, int cols) {
  XL_ERR2(start, end); if (!xl_valid_serial(start) || !xl_valid_serial(end)) return XL_NUM;
  double a = floor(start), b = floor(end), lo = fmin(a, b), hi = fmax(a, b);
  double count = xl_weekdays_upto(hi) - xl_weekdays_upto(lo - 1.0) - xl_holidays_in(h, rows, cols, lo, hi);
  return b < a ? -count : count;
}
""",
    _fn_units,
)
registry.unit(
    "workday",
    """ALEA_HD double xl_kth_weekday(double k) { double w = floor((k - 1.0) / 5.0); return 7.0 * w + 2.0 + (k - 1.0 - 5.0 * w); }
ALEA_HD double xl_workday(double start, double days, const double* h, int rows, int cols) {
  XL_ERR2(start, days); if (!xl_valid_serial(start)) return XL_NUM;
  double s = floor(start), n = trunc(days);
  if (n == 0.0) return s;
  double base = xl_weekdays_upto(s) + n + ((n < 0.0 && !xl_weekday_serial(s)) ? 1.0 : 0.0);
  double r = xl_kth_weekday(base);
  for (int i = 0; i < rows * cols; ++i) {
    double c = n > 0.0 ? xl_holidays_in(h, rows, cols, s + 1.0, r) : xl_holidays_in(h, rows, cols, r, s - 1.0);
    double next = xl_kth_weekday(base + (n > 0.0 ? c : -c));
    if (next == r) break;
    r = next;
  }
  return xl_valid_serial(r) ? r : XL_NUM;
}
""",
    _fn_units,
)
registry.primitive("networkdays", elementwise(_networkdays), "xl_networkdays", ("networkdays",))
registry.primitive("workday", elementwise(_workday), "xl_workday", ("workday",))


def _with_holidays(fn: str, what: str) -> Any:
    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
        a, b = (forms.strict_scalar(lw, x, sheet, what) for x in args[:2])
        table = (
            lw.table_arg(args[2], sheet, f"the {what} holidays")
            if len(args) > 2
            else lw.table([], 0, 0)
        )
        return lw.apply(fn, [a, b, table])

    return lower


registry.function("NETWORKDAYS", CATEGORY, 2, 3, _with_holidays("networkdays", "NETWORKDAYS"))
registry.function("WORKDAY", CATEGORY, 2, 3, _with_holidays("workday", "WORKDAY"))

# --- DATEDIF, times -------------------------------------------------------------------------------


def _datedif(unit: str) -> Any:
    def apply(start: Any, end: Any) -> Any:
        ok = _valid(start) & _valid(end) & (np.floor(start) <= np.floor(end))
        s, e = np.floor(np.where(ok, start, 1.0)), np.floor(np.where(ok, end, 1.0))
        y1, m1, d1 = ymd(s)
        y2, m2, d2 = ymd(e)
        if unit == "D":
            r = e - s
        elif unit == "Y":
            r = y2 - y1 - ((m2 < m1) | ((m2 == m1) & (d2 < d1)))
        elif unit == "M":
            r = (y2 - y1) * 12.0 + m2 - m1 - (d2 < d1)
        elif unit == "YM":
            dm = (m2 - m1) - (d2 < d1)
            r = dm + 12.0 * (dm < 0)
        elif unit == "MD":  # the start's month (the next one when the day is earlier), end's day
            later = d2 < d1
            m = m1 + later
            roll = m > 12
            r = serial(y1 + roll, np.where(roll, 1.0, m), d2 - (later & roll)) - s
        else:  # YD: the start's year (the next one when the date is earlier), end's day
            later = (m2 < m1) | ((m2 == m1) & (d2 < d1))
            r = serial(y1 + later, m2, d2) - s
        return np.where(ok, r, NUM)

    return apply


_DATEDIF_CPP = {
    "D": "return e - s;",
    "Y": "return y2 - y1 - ((m2 < m1 || (m2 == m1 && d2 < d1)) ? 1.0 : 0.0);",
    "M": "return (y2 - y1) * 12.0 + m2 - m1 - (d2 < d1 ? 1.0 : 0.0);",
    "YM": "double dm = (m2 - m1) - (d2 < d1 ? 1.0 : 0.0); return dm < 0.0 ? dm + 12.0 : dm;",
    "MD": "bool later = d2 < d1; double m = m1 + (later ? 1.0 : 0.0); bool roll = m > 12.0; return xl_serial(y1 + (roll ? 1.0 : 0.0), roll ? 1.0 : m, d2 - ((later && roll) ? 1.0 : 0.0)) - s;",
    "YD": "bool later = m2 < m1 || (m2 == m1 && d2 < d1); return xl_serial(y1 + (later ? 1.0 : 0.0), m2, d2) - s;",
}
for _unit, _body in _DATEDIF_CPP.items():
    _prim = f"datedif.{_unit.lower()}"
    registry.unit(
        _prim,
        f"""ALEA_HD double xl_datedif_{_unit.lower()}(double start, double end) {{
  XL_ERR2(start, end);
  if (!xl_valid_serial(start) || !xl_valid_serial(end) || floor(start) > floor(end)) return XL_NUM;
  double s = floor(start), e = floor(end), y1, m1, d1, y2, m2, d2; xl_ymd(s, &y1, &m1, &d1); xl_ymd(e, &y2, &m2, &d2);
  {_body}
}}
""",
        ("calendar",),
    )
    registry.primitive(_prim, elementwise(_datedif(_unit)), f"xl_datedif_{_unit.lower()}", (_prim,))


def _datedif_lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
    unit = lw.lower(args[2], sheet)
    if not isinstance(unit, str):
        raise lw.fail('the unit must be constant text such as "Y" or "MD"', "DATEDIF")
    if unit.upper() not in _DATEDIF_CPP:
        return lw.error("#NUM!")
    a, b = lw.scalar(args[0], sheet, "DATEDIF"), lw.scalar(args[1], sheet, "DATEDIF")
    return lw.apply(f"datedif.{unit.lower()}", [a, b])


registry.function("DATEDIF", CATEGORY, 3, 3, _datedif_lower)


def _time(h: Any, m: Any, s: Any) -> Any:
    h, m, s = np.floor(h), np.floor(m), np.floor(s)
    v = h / 24.0 + m / 1440.0 + s / 86400.0
    big = (h > 32767) | (m > 32767) | (s > 32767)
    return np.where(big | (v < 0), NUM, np.mod(v, 1.0))


_fn(
    "TIME",
    _time,
    """ALEA_HD double xl_time(double h, double m, double s) {
  XL_ERR3(h, m, s); h = floor(h); m = floor(m); s = floor(s);
  if (h > 32767.0 || m > 32767.0 || s > 32767.0) return XL_NUM;
  double v = h / 24.0 + m / 1440.0 + s / 86400.0; return v < 0.0 ? XL_NUM : fmod(v, 1.0);
}
""",
    3,
)


def _clock(index: int) -> Any:
    def apply(x: Any) -> Any:
        at_hours = (x + 1.0 / 864e8) * 24.0
        hours = np.floor(at_hours)
        at_mins = (at_hours - hours) * 60.0
        mins = np.floor(at_mins)
        secs = np.round((at_mins - mins) * 60.0 - 1.1e-6)
        parts = (np.mod(hours, 24.0), mins, secs)
        return np.where(x < 0, NUM, parts[index])

    return apply


for _name, _i in (("HOUR", 0), ("MINUTE", 1), ("SECOND", 2)):
    _fn(
        _name,
        _clock(_i),
        f"""ALEA_HD double xl_{_name.lower()}(double x) {{
  XL_ERR1(x); if (x < 0.0) return XL_NUM;
  double at_hours = (x + 1.0 / 864e8) * 24.0, hours = floor(at_hours);
  double at_mins = (at_hours - hours) * 60.0, mins = floor(at_mins);
  double secs = nearbyint((at_mins - mins) * 60.0 - 1.1e-6);
  return {("fmod(hours, 24.0)", "mins", "secs")[_i]};
}}
""",
        1,
    )

# --- text to dates (compile time) ---------------------------------------------------------------

_MONTHS = {
    m.lower(): i
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for m in names
}
_TIME = r"(?:\s+(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}(?:\.\d+)?))?\s*(?P<ap>[ap]m)?)?"
_DATE_FORMS = [
    re.compile(r"^(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})" + _TIME + "$", re.I),
    re.compile(r"^(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{2}|\d{4})" + _TIME + "$", re.I),
    re.compile(r"^(?P<d>\d{1,2})[- ](?P<mon>[a-z]+)[- ,]+(?P<y>\d{2}|\d{4})" + _TIME + "$", re.I),
    re.compile(r"^(?P<mon>[a-z]+)[ .]+(?P<d>\d{1,2}),?\s+(?P<y>\d{2}|\d{4})" + _TIME + "$", re.I),
]
_TIME_ONLY = re.compile(
    r"^(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}(?:\.\d+)?))?\s*(?P<ap>[ap]m)?$", re.I
)


def _clock_fraction(m: re.Match[str]) -> float | None:
    if m["h"] is None:
        return 0.0
    h, mi, s = int(m["h"]), int(m["mi"]), float(m["s"] or 0)
    if m["ap"]:
        if not 1 <= h <= 12:
            return None
        h = h % 12 + (12 if m["ap"].lower() == "pm" else 0)
    if h > 23 or mi > 59 or s >= 60:
        return None
    return (h * 3600 + mi * 60 + s) / 86400


def text_serial(text: str) -> float | None:
    """The serial (with time of day) of a date or time written as text (DATEVALUE's forms:
    ``2024-01-31``, ``1/31/2024``, ``31-Jan-2024``, ``January 31, 2024``, ``12:30 PM``), or None."""
    t = text.strip()
    m = _TIME_ONLY.match(t)
    if m:
        return _clock_fraction(m)
    for form in _DATE_FORMS:
        m = form.match(t)
        if not m:
            continue
        month = (
            int(m["m"])
            if "m" in m.groupdict() and m["m"]
            else _MONTHS.get((m["mon"] or "").lower())
        )
        if month is None:
            return None
        y = int(m["y"])
        if len(m["y"]) == 2:
            y += 2000 if y < 30 else 1900
        d = int(m["d"])
        try:
            datetime.date(y, month, d)
        except ValueError:
            if not (y == 1900 and month == 2 and d == 29):
                return None
        clock = _clock_fraction(m)
        if clock is None:
            return None
        s = float(serial(float(y), float(month), float(d)))
        return s + clock if 0 <= s <= MAX_SERIAL else None
    return None


def _datevalue(time: bool) -> Any:
    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
        value = lw.lower(args[0], sheet)
        if not isinstance(value, str):
            if isinstance(value, Const) and math.isnan(value.value):
                return value
            return lw.error("#VALUE!")
        s = text_serial(value)
        if s is None:
            return lw.error("#VALUE!")
        return lw.const(s % 1.0 if time else math.floor(s))

    return lower


registry.function("DATEVALUE", CATEGORY, 1, 1, _datevalue(False), runs="compile time")
registry.function("TIMEVALUE", CATEGORY, 1, 1, _datevalue(True), runs="compile time")
