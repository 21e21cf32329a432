"""Read an .xlsx workbook into a :class:`Book` once :mod:`guard` has accepted the file.

openpyxl reads the file in read-only (streaming) mode only after the guard's checks, and
anything it fails on is a :class:`WorkbookRejected`. So memory and time are bounded by the
guard's constants, whatever the file claims.
"""

from __future__ import annotations

import datetime
import io
import math
from pathlib import Path
from typing import IO

import openpyxl
from openpyxl.utils.datetime import to_excel
from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula

from services.engine.build import Book, build_model
from services.engine.errors import FormulaError, ModelError, WorkbookRejected
from services.engine.formula import CellContent, Formula
from services.engine.guard import check_workbook, declared_cells, read_limited
from services.engine.ir import Model
from services.engine.sheet import address


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
        ws.reset_dimensions()  # iterate the cells present, never the declared area
        cells: dict[tuple[int, int], CellContent] = {}
        for row in ws.iter_rows():
            for cell in row:
                if cell.value is None:  # EmptyCell fillers between cells of a row
                    continue
                where = address(ws.title, cell.row, cell.column)
                content = _content(cell.value, cell.data_type, where)
                if content is not None:
                    cells[(cell.row, cell.column)] = content
        sheets[ws.title] = cells
    return Book(sheets, names)


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
