"""Excel's sheet grid: its size and A1-style addresses (standard library only)."""

from __future__ import annotations

import re

__all__ = ["MAX_COL", "MAX_ROW", "address", "column_letters", "column_number", "quote_sheet"]

MAX_ROW = 1_048_576
MAX_COL = 16_384


def column_number(letters: str) -> int:
    """``"A"`` → 1, ``"XFD"`` → 16384."""
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n


def column_letters(n: int) -> str:
    """1 → ``"A"``, 16384 → ``"XFD"``."""
    out = ""
    while n:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out


def address(sheet: str, row: int, col: int) -> str:
    """``Sheet!A1``, quoting sheet names as Excel does when they need it."""
    return f"{quote_sheet(sheet)}!{column_letters(col)}{row}"


def quote_sheet(sheet: str) -> str:
    """``My Sheet`` → ``'My Sheet'``; plain names unchanged."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", sheet):
        return sheet
    return "'" + sheet.replace("'", "''") + "'"
