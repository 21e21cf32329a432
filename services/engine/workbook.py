"""Read an .xlsx workbook into a :class:`Book` once :mod:`guard` has accepted the file.

openpyxl reads the file in read-only (streaming) mode only after the guard's checks, and
anything it fails on is a :class:`WorkbookRejected`. So memory and time are bounded by the
guard's constants, whatever the file claims. Cells are read as openpyxl's parser yields them
(:func:`sheet_rows`), never through ``iter_rows``, which pads the rows and cells a sheet skips.
"""

from __future__ import annotations

import datetime
import io
import math
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import openpyxl
from openpyxl.utils.datetime import to_excel
from openpyxl.worksheet._reader import WorkSheetParser
from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula

from services.engine.build import Book, build_model
from services.engine.errors import FormulaError, ModelError, WorkbookRejected
from services.engine.formula import CellContent, Formula
from services.engine.guard import OUTSIDE_GRID, check_workbook, declared_cells, read_limited
from services.engine.ir import Model
from services.engine.sheet import MAX_COL, MAX_ROW, address, column_letters, quote_sheet


def load_workbook(source: str | Path | bytes | IO[bytes]) -> Model:
    """Read and compile an .xlsx workbook (a path, its bytes or a binary file object)."""
    return build_model(read_book(source))


def read_book(source: str | Path | bytes | IO[bytes]) -> Book:
    """The cells and defined names of an .xlsx file, after the hostile-file checks."""
    data = read_limited(source)
    check_workbook(data)
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception as exc:  # openpyxl raises many types for malformed parts
        raise WorkbookRejected(f"unreadable workbook: {exc}") from None
    try:
        return _book(wb)
    except ModelError:
        raise
    except Exception as exc:  # read-only mode parses the sheets lazily, here
        raise WorkbookRejected(f"unreadable workbook: {exc}") from None
    finally:
        wb.close()


def _book(wb: openpyxl.Workbook) -> Book:
    sheets: dict[str, dict[tuple[int, int], CellContent]] = {}
    names: dict[tuple[str | None, str], str] = {}
    for name, dn in wb.defined_names.items():
        names[(None, name.upper())] = dn.attr_text
    for ws in wb.worksheets:
        if not hasattr(ws, "iter_rows"):  # chartsheets hold no cells
            continue
        for name, dn in getattr(ws, "defined_names", {}).items():
            names[(ws.title, name.upper())] = dn.attr_text
        cells: dict[tuple[int, int], CellContent] = {}
        for _, row in sheet_rows(ws):
            for cell in row:
                if cell["value"] is None:  # a cell with a style and nothing else
                    continue
                at = (cell["row"], cell["column"])
                content = _content(cell["value"], cell["data_type"], address(ws.title, *at))
                if content is not None:
                    cells[at] = content
        sheets[ws.title] = cells
    return Book(sheets, names)


def sheet_rows(ws: Any) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(row number, cells) of each row a read-only worksheet holds, in file order, each cell
    as openpyxl's parser reads it (``row``, ``column``, ``value``, ``data_type``).

    ``iter_rows`` pads every row the file skips and every cell left of a row's last: time
    grows with the row and column numbers the file states, not its size (a 4 KB file with
    one row numbered 10**20 kept a thread padding forever). Read here, time grows with the
    rows and cells present. A row or cell outside the grid is refused naming the sheet and
    cell, whatever the guard saw.
    """
    book, sheet = ws.parent, quote_sheet(ws.title)
    # openpyxl has no public unpadded read: its parser, built as iter_rows builds it.
    with ws._get_source() as source:
        parser = WorkSheetParser(
            source,
            ws._shared_strings,
            data_only=book.data_only,
            epoch=book.epoch,
            date_formats=book._date_formats,
            timedelta_formats=book._timedelta_formats,
        )
        for number, cells in parser.parse():
            if not 1 <= number <= MAX_ROW:
                raise WorkbookRejected(f"row {number} is {OUTSIDE_GRID}", sheet)
            for cell in cells:
                if not (1 <= cell["row"] <= MAX_ROW and 1 <= cell["column"] <= MAX_COL):
                    where = f"{sheet}!{column_letters(cell['column'])}{cell['row']}"
                    raise WorkbookRejected(f"the cell is {OUTSIDE_GRID}", where)
            yield number, cells


def _content(value: object, data_type: str, where: str) -> CellContent:
    if value is None:
        return None
    if isinstance(value, ArrayFormula):
        if ":" in (value.ref or "") and declared_cells(value.ref) > 1:
            raise FormulaError("multi-cell array formulas are not supported", where)
        return Formula(value.text or "")
    if isinstance(value, DataTableFormula):
        raise FormulaError("what-if data tables are not supported", where)
    if data_type == "f" and isinstance(value, str):
        return Formula(value)
    if data_type == "e":
        return math.nan
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return float(to_excel(value))
    if isinstance(value, datetime.timedelta):
        return value.total_seconds() / 86400
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
