"""The values a formula lowers to besides IR nodes: blanks and arrays (see :mod:`.lowering`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from services.engine.ir import Node, Table


class _Empty:
    def __repr__(self) -> str:
        return "EMPTY"


EMPTY = _Empty()
"""A blank cell, or an argument left out (``PMT(r, n, pv, , 1)``)."""


@dataclass(frozen=True, slots=True)
class Grid:
    """An array value: ``rows`` × ``cols`` scalar values (nodes, text or EMPTY), row-major.

    A range in an array context (``SUMPRODUCT((A1:A9>0)*B1:B9)``), an array constant holding
    text, ``TRANSPOSE``... Its items are never arrays themselves.
    """

    rows: int
    cols: int
    items: tuple[Scalar, ...]

    def at(self, row: int, col: int) -> Scalar:
        """The item at 0-based (row, col); a single row or column repeats as Excel does."""
        r = 0 if self.rows == 1 else row
        c = 0 if self.cols == 1 else col
        return self.items[r * self.cols + c]


Scalar: TypeAlias = Node | str | _Empty
Value: TypeAlias = Scalar | Table | Grid
