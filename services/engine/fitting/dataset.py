"""A dataset: one column of numbers from a CSV or XLSX file.

The file is XLSX when it is a zip (checked by :mod:`..guard` before openpyxl reads it, cell by
cell through :func:`..workbook.sheet_rows`, which pads no skipped row or cell; cached values
only: a formula cell counts with the value Excel last saved), else CSV: UTF-8 text,
separated by tabs, else semicolons, else commas (the first of these the first line holds);
with semicolons a decimal comma is read as a decimal point. The first row is a header when
one of its cells is text that is not a number. The column is chosen by its header or by
position (1 for the first); blank cells are skipped; any other cell that is not a finite
number is refused naming its row. At most :data:`MAX_DATASET_BYTES` of file and
:data:`.MAX_VALUES` values are read.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np

from services.engine import guard
from services.engine.errors import ModelError
from services.engine.fitting import MAX_VALUES

__all__ = ["MAX_DATASET_BYTES", "Column", "DatasetError", "read_column"]

MAX_DATASET_BYTES = 32 * 2**20
_ZIP = b"PK\x03\x04"

Cell = object  # a CSV cell is text; an XLSX cell a number, text, a date, a bool or None


class DatasetError(ValueError):
    """A file or column that gives no numbers; ``field`` is the request field at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


@dataclass(frozen=True)
class Column:
    """The numbers of one column and what the column is called."""

    name: str  # its header, or ``column N``
    values: np.ndarray  # float64, in file order


def read_column(
    data: bytes, column_name: str = "", column_index: int = 0, sheet: str = ""
) -> Column:
    """The numbers of the chosen column (by header, else by 1-based index, else the first).

    Raises :class:`DatasetError` naming ``file_id``, ``column_name``, ``column_index`` or
    ``sheet``.
    """
    if len(data) > MAX_DATASET_BYTES:
        raise DatasetError("file_id", f"a dataset may be at most {MAX_DATASET_BYTES} bytes")
    comma = False  # a decimal comma (CSV separated by semicolons)
    if data.startswith(_ZIP):
        rows = _xlsx_rows(data, sheet)
    elif sheet:
        raise DatasetError("sheet", "only an XLSX file has sheets; this file is CSV")
    else:
        rows, comma = _csv_rows(data)
    first = next(rows, None)
    if first is None:
        raise DatasetError("file_id", "the file is empty")
    labels = [isinstance(c, str) and c.strip() != "" and _number(c, comma) is None for c in first]
    header = [str(c).strip() for c in first] if any(labels) else None
    index, name = _choose(header, column_name, column_index)
    field = "column_name" if column_name else "column_index"
    values = _numbers([] if header else [first], rows, index, header is not None, field, comma)
    return Column(name, values)


def _number(cell: Cell, comma: bool) -> float | None:
    """The cell as a number, or None (text that is not one, logical values, dates)."""
    if isinstance(cell, bool):
        return None
    if isinstance(cell, (int, float)):
        return float(cell)
    if isinstance(cell, str):
        try:
            return float(cell.strip().replace(",", ".") if comma else cell.strip())
        except ValueError:
            return None
    return None


def _choose(header: list[str] | None, name: str, index: int) -> tuple[int, str]:
    if name:
        if header is None:
            raise DatasetError("column_name", "the file has no header row to find it in")
        if name not in header:
            shown = ", ".join(repr(h) for h in header[:20])
            raise DatasetError("column_name", f"no column {name!r}; the header has {shown}")
        return header.index(name), name
    position = max(index, 1) - 1
    label = header[position] if header and position < len(header) and header[position] else ""
    return position, label or f"column {position + 1}"


def _numbers(
    first: list[Sequence[Cell]],
    rows: Iterator[Sequence[Cell]],
    index: int,
    headed: bool,
    field: str,
    comma: bool,
) -> np.ndarray:
    values: list[float] = []
    start = 2 if headed else 1
    for row_number, row in enumerate(itertools.chain(first, rows), start):
        cell = row[index] if index < len(row) else None
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            continue
        value = _number(cell, comma)
        if value is None or not math.isfinite(value):
            shown = str(cell)[:40]
            raise DatasetError(field, f"row {row_number}: {shown!r} is not a finite number")
        if len(values) == MAX_VALUES:
            raise DatasetError(field, f"the column has more than {MAX_VALUES:,} values")
        values.append(value)
    if not values:
        raise DatasetError(field, "the column holds no numbers")
    return np.array(values, dtype=np.float64)


def _csv_rows(data: bytes) -> tuple[Iterator[Sequence[Cell]], bool]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DatasetError("file_id", "the file is neither XLSX nor UTF-8 text (CSV)") from None
    first_line = text.split("\n", 1)[0]
    delimiter = next((d for d in ("\t", ";") if d in first_line), ",")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)

    def rows() -> Iterator[Sequence[Cell]]:
        try:
            yield from reader
        except csv.Error as exc:
            raise DatasetError("file_id", f"line {reader.line_num}: {exc}") from None

    return rows(), delimiter == ";"


def _xlsx_rows(data: bytes, sheet: str) -> Iterator[Sequence[Cell]]:
    import openpyxl  # only for XLSX datasets: the CSV path stays light

    from services.engine.workbook import sheet_rows

    try:
        guard.check_workbook(data)
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except ModelError as exc:
        raise DatasetError("file_id", str(exc)) from None
    except Exception as exc:  # openpyxl raises many types for malformed parts
        raise DatasetError("file_id", f"not a readable XLSX file ({type(exc).__name__})") from None
    try:
        if sheet and sheet not in book.sheetnames:
            raise DatasetError("sheet", f"no sheet {sheet!r}; the workbook has {book.sheetnames}")
        following = 1  # rows the file leaves out are blank ones, so that rows keep their numbers
        for number, cells in sheet_rows(book[sheet or book.sheetnames[0]]):
            if number < following:  # out of order: skipped, as openpyxl's iter_rows does
                continue
            yield from itertools.repeat((), number - following)
            following = number + 1
            yield _Row({cell["column"] - 1: cell["value"] for cell in cells})
    except DatasetError:
        raise
    except ModelError as exc:  # a row or cell outside the grid
        raise DatasetError("file_id", str(exc)) from None
    except Exception as exc:  # openpyxl parses the sheet lazily, here
        raise DatasetError("file_id", f"not a readable XLSX file ({type(exc).__name__})") from None
    finally:
        book.close()


class _Row(Sequence[Cell]):
    """An XLSX row by position, holding only the cells the file has: a row whose one value is
    in column XFD is one value, not 16,384 (openpyxl's rows hold every blank to the left)."""

    def __init__(self, cells: dict[int, Cell]) -> None:
        self._cells, self._length = cells, max(cells, default=-1) + 1

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> Cell: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Cell]: ...
    def __getitem__(self, index: int | slice) -> Cell | Sequence[Cell]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._length))]
        if not -self._length <= index < self._length:
            raise IndexError(index)
        return self._cells.get(index % self._length)
