"""Rows and cells outside Excel's grid: refused naming the sheet and cell, and never padded.

openpyxl's ``iter_rows`` pads every row a sheet skips and every cell left of a row's last, so
one ``<row r="99999999999999999999">`` in a 4 KB file kept a thread padding rows forever.
Every read here runs in a thread with a deadline: a reader that pads fails, it does not hang.
"""

from __future__ import annotations

import base64
import io
import os
import re
import threading
import zipfile
from collections.abc import Callable
from typing import TypeVar

import pytest
from openpyxl import Workbook

from services.engine import guard
from services.engine.errors import WorkbookRejected
from services.engine.fitting.dataset import DatasetError, read_column
from services.engine.workbook import read_book
from tests.engine.test_workbook import rewrite

T = TypeVar("T")

SHEET = "xl/worksheets/sheet1.xml"
GRID = "outside Excel's grid (rows 1 to 1,048,576, columns A to XFD)"
HUGE = b"99999999999999999999"
OUTPUT = b'<f>RiskOutput("P")+RiskNormal(1,1)</f>'
MAIN = b"http://schemas.openxmlformats.org/spreadsheetml/2006/main"
DEADLINE = 30.0  # seconds: each read here takes about a second at most; padding never ends


def _within(seconds: float, read: Callable[[], T]) -> T | Exception:
    """What ``read()`` returns or raises, failing the test past ``seconds`` (the thread is a
    daemon: a regression that spins is left behind rather than hanging the run)."""
    outcome: list[T | Exception] = []

    def run() -> None:
        try:
            outcome.append(read())
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still reading after {seconds:.0f} s: rows or cells are being padded"
    return outcome[0]


def _workbook(
    rows: bytes, dimension: bytes = b"A1", *, title: bytes = b"S", part: str = SHEET
) -> bytes:
    """A one-sheet workbook whose sheet data is ``rows``, written by hand, its sheet stored as
    ``part`` (openpyxl reads a worksheet wherever the workbook's relationships point)."""
    book = Workbook()
    book.active.title = "S"
    buffer = io.BytesIO()
    book.save(buffer)
    data = b"<sheetData>" + rows + b"</sheetData>"

    def sheet(xml: bytes) -> bytes:
        xml = re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="%s"' % dimension, xml)
        return re.sub(rb"<sheetData>.*</sheetData>|<sheetData ?/>", lambda _: data, xml)

    def moved(xml: bytes) -> bytes:
        return xml.replace(b"/" + SHEET.encode(), b"/" + part.encode())

    changes: dict[str, Callable[[bytes], bytes]] = {
        SHEET: sheet,
        "xl/workbook.xml": lambda xml: xml.replace(b'name="S"', b'name="%s"' % title),
        "[Content_Types].xml": moved,
        "xl/_rels/workbook.xml.rels": moved,
    }
    return rewrite(buffer.getvalue(), changes, {SHEET: part})


def _refused(data: bytes, location: str, reason: str) -> None:
    outcome = _within(DEADLINE, lambda: read_book(data))
    assert isinstance(outcome, WorkbookRejected), outcome
    assert outcome.location == location, str(outcome)
    assert reason in outcome.reason, str(outcome)


def _row(r: bytes, cells: bytes = b'<c r="B1">' + OUTPUT + b"</c>", attrs: bytes = b"") -> bytes:
    return b'<row%s r="%s">%s</row>' % (attrs, r, cells)


@pytest.mark.parametrize(
    ("rows", "location", "reason"),
    [
        # the reported file: one row numbered 10**20, 4.6 KB in all
        pytest.param(_row(HUGE), "S", f"row {HUGE.decode()} is {GRID}", id="row 10**20"),
        pytest.param(_row(b"1048577"), "S", f"row 1048577 is {GRID}", id="row 1048577"),
        pytest.param(_row(b"5000000"), "S", "row 5000000 is", id="row 5000000"),
        pytest.param(_row(b"0"), "S", "row 0 is", id="row 0"),
        pytest.param(_row(b"abc"), "S", "row number 'abc' is not readable", id="row abc"),
        # a row without r follows the one before it, as openpyxl numbers them
        pytest.param(
            _row(b"1048576") + b"<row><c><v>2</v></c></row>", "S", "row 1048577 is", id="row after"
        ),
        pytest.param(
            _row(b"1", b'<c r="XFE1"><v>1</v></c>'), "S!XFE1", f"the cell is {GRID}", id="XFE1"
        ),
        pytest.param(_row(b"1", b'<c r="B0"><v>1</v></c>'), "S!B0", f"the cell is {GRID}", id="B0"),
        pytest.param(
            _row(b"1", b'<c r="B%s"><v>1</v></c>' % HUGE),
            "S!B" + HUGE.decode(),
            "the cell is",
            id="B10**20",
        ),
        pytest.param(_row(b"1", b'<c r="AAAA1"/>'), "S!AAAA1", "the cell is", id="AAAA1"),
        pytest.param(_row(b"1", b'<c r="1"/>'), "S!1", "the cell is", id="no column"),
        pytest.param(
            _row(b"1", b'<c r="B-1"/>'), "S", "cell reference 'B-1' is not readable", id="B-1"
        ),
        # a cell without r follows the one before: the 16,385th is in column XFE
        pytest.param(
            _row(b"1", b"<c><v>1</v></c>" * 16_385), "S!XFE1", "the cell is", id="16385 cells"
        ),
        pytest.param(
            _row(b"1", b'<c r="XFC1"><v>1</v></c><c/><c/>'), "S!XFE1", "the cell is", id="XFC+2"
        ),
        # written so that a scan for r="…" could miss it; XML reads them all the same
        pytest.param(_row(HUGE, attrs=b' spans="1>2"'), "S", "row 9999", id="> in a value"),
        pytest.param(_row(HUGE, attrs=b" spans=\" r='1' \""), "S", "row 9999", id="r in a value"),
        pytest.param(
            b"<row r = '%s'><c r='B1'>%s</c></row>" % (HUGE, OUTPUT), "S", "row 9999", id="r = '…'"
        ),
        pytest.param(
            _row(b"&#57;" * 8, b"<c><v>1</v></c>"), "S", "row 99999999 is", id="character refs"
        ),
        pytest.param(
            b'<x:row xmlns:x="%s" r="%s"><x:c r="B1"/></x:row>' % (MAIN, HUGE),
            "S",
            "row 9999",
            id="prefix",
        ),
        pytest.param(
            "<é:row xmlns:é='%s' r='%s'/>".encode() % (MAIN, HUGE),
            "S",
            "row 9999",
            id="non-ASCII prefix",
        ),
    ],
)
def test_rows_and_cells_outside_the_grid_are_refused_naming_them(
    rows: bytes, location: str, reason: str
) -> None:
    _refused(_workbook(rows), location, reason)


@pytest.mark.parametrize(
    "dimension",
    [b"A1:B" + HUGE, b"A" + HUGE, b"A1:XFE1", b"A0:B2", b"1:1048577", b"A1:ZZZZ1"],
    ids=lambda dimension: dimension.decode(),
)
def test_a_dimension_beyond_the_grid_is_refused(dimension: bytes) -> None:
    data = _workbook(_row(b"1", b'<c r="A1"><v>1</v></c>'), dimension)
    _refused(data, "S", f"dimension {dimension.decode()} is {GRID}")


def test_the_guard_refuses_before_openpyxl_reads() -> None:
    data = _workbook(_row(HUGE))
    assert len(data) < 8_000
    with pytest.raises(WorkbookRejected) as refused:
        guard.check_workbook(data)
    assert str(refused.value) == f"S: row {HUGE.decode()} is {GRID}"


def test_a_sheet_title_that_needs_quotes_is_quoted() -> None:
    data = _workbook(_row(b"1", b'<c r="B0"><v>1</v></c>'), title=b"My Sheet")
    _refused(data, "'My Sheet'!B0", "the cell is")


def test_markup_longer_than_the_scan_window_is_refused_not_skipped() -> None:
    """A row tag padded past the guard's 1 MiB window is refused, not missed."""
    padding = base64.b64encode(os.urandom(3 * 2**19))  # 2 MiB, random: no zip-bomb ratio
    _refused(_workbook(_row(HUGE, attrs=b' x="%s"' % padding)), "", "markup longer than")


def test_a_worksheet_stored_outside_the_worksheets_folder_is_refused_too() -> None:
    """The guard scans each sheet where the workbook's relationships put it, as openpyxl reads
    it; the reader checks every row openpyxl yields too."""
    data = _workbook(_row(HUGE), part="xl/other/s.xml")
    assert "xl/other/s.xml" in zipfile.ZipFile(io.BytesIO(data)).namelist()
    _refused(data, "S", f"row {HUGE.decode()} is {GRID}")


def test_the_last_row_and_column_of_the_grid_are_read() -> None:
    book = Workbook()
    sheet = book.active
    sheet.title = "S"
    sheet["A1048576"] = 1.5
    sheet["XFD1048576"] = "=RiskOutput()+A1048576"
    buffer = io.BytesIO()
    book.save(buffer)
    outcome = _within(DEADLINE, lambda: read_book(buffer.getvalue()))
    assert not isinstance(outcome, Exception), outcome
    assert set(outcome.sheets["S"]) == {(1_048_576, 1), (1_048_576, 16_384)}


def test_cells_far_right_are_read_without_padding_their_rows() -> None:
    """A row whose one cell is in column XFD was 16,384 cells to openpyxl's iter_rows: 200,000
    such rows (200,000 cells, 1 MB zipped) took over a minute to read; cell by cell, seconds."""
    count = 200_000
    data = _workbook(
        b"".join(
            _row(b"%d" % r, b'<c r="XFD%d"><v>%d</v></c>' % (r, r)) for r in range(1, count + 1)
        )
    )
    book = _within(DEADLINE, lambda: read_book(data))
    assert not isinstance(book, Exception), book
    assert len(book.sheets["S"]) == count
    column = _within(DEADLINE, lambda: read_column(data, column_index=16_384))
    assert not isinstance(column, Exception), column
    assert column.values.size == count


def test_a_dataset_keeps_row_numbers_and_refuses_rows_outside_the_grid() -> None:
    first = _row(b"1", b'<c r="A1"><v>1</v></c>')
    column = _within(
        DEADLINE,
        lambda: read_column(_workbook(first + _row(b"1048576", b'<c r="A1048576"><v>2</v></c>'))),
    )
    assert not isinstance(column, Exception), column
    assert column.values.tolist() == [1.0, 2.0]
    text = b'<c r="A1048576" t="inlineStr"><is><t>x</t></is></c>'
    refused = _within(DEADLINE, lambda: read_column(_workbook(first + _row(b"1048576", text))))
    assert isinstance(refused, DatasetError), refused
    assert "row 1048576: 'x' is not a finite number" in refused.reason
    for data in (_workbook(first + _row(HUGE)), _workbook(_row(HUGE), part="xl/other/s.xml")):
        refused = _within(DEADLINE, lambda data=data: read_column(data))  # type: ignore[misc]
        assert isinstance(refused, DatasetError), refused
        assert (refused.field, refused.reason) == ("file_id", f"S: row {HUGE.decode()} is {GRID}")
