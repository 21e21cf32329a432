"""The guard checks the parts openpyxl reads, wherever the file stores them and however encoded.

openpyxl finds the workbook part through ``[Content_Types].xml`` and the sheets through the
workbook part's relationships: a sheet stored outside ``xl/worksheets/``, two sheets on one
part, or a part in UTF-16 must not slip past the guard's scans. Every package here is built by
hand, and every read runs with a deadline (a regression fails instead of hanging).
"""

from __future__ import annotations

import io
import zipfile

import pytest
from openpyxl import Workbook

from services.engine import guard
from services.engine.errors import WorkbookRejected
from services.engine.workbook import read_book
from tests.engine.test_workbook_grid import DEADLINE, GRID, _within

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELATIONSHIPS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
WORKBOOK = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
STRINGS = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


def _cells(count: int, first: int = 1) -> str:
    """A worksheet holding ``count`` numbers in column A from row ``first``."""
    rows = "".join(
        f'<row r="{r}"><c r="A{r}"><v>{r}</v></c></row>' for r in range(first, first + count)
    )
    return f'{DECLARATION}<worksheet xmlns="{MAIN}"><sheetData>{rows}</sheetData></worksheet>'


def _package(
    sheets: list[tuple[str, str]],
    parts: dict[str, bytes | str],
    *,
    workbook: str = "xl/workbook.xml",
    overrides: dict[str, str] | None = None,
) -> bytes:
    """An .xlsx whose workbook part is ``workbook``, its sheets (title, relationship target as
    written) in order, with ``parts`` stored as given (str as UTF-8) and ``overrides`` (part:
    content type) in ``[Content_Types].xml``."""
    named = {workbook: WORKBOOK, **(overrides or {})}
    types = "".join(f'<Override PartName="/{p}" ContentType="{t}"/>' for p, t in named.items())
    folder, base = workbook.rsplit("/", 1) if "/" in workbook else ("", workbook)
    rels = "".join(
        f'<Relationship Id="rId{i}" Type="{RELATIONSHIPS}/worksheet" Target="{target}"/>'
        for i, (_, target) in enumerate(sheets, start=1)
    )
    listed = "".join(
        f'<sheet name="{title}" sheetId="{i}" r:id="rId{i}"/>'
        for i, (title, _) in enumerate(sheets, start=1)
    )
    members: dict[str, bytes | str] = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            f'<Default Extension="xml" ContentType="application/xml"/>{types}</Types>'
        ),
        "_rels/.rels": (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{RELATIONSHIPS}/officeDocument" Target="/{workbook}"/>'
            "</Relationships>"
        ),
        workbook: (
            f'{DECLARATION}<workbook xmlns="{MAIN}" xmlns:r="{RELATIONSHIPS}">'
            f"<sheets>{listed}</sheets></workbook>"
        ),
        f"{folder}/_rels/{base}.rels".lstrip("/"): (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f"{rels}</Relationships>"
        ),
        **parts,
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content.encode() if isinstance(content, str) else content)
    return out.getvalue()


def _read(data: bytes) -> object:
    """What reading ``data`` returns or raises, within the deadline."""
    return _within(DEADLINE, lambda: read_book(data))


def _refused(data: bytes, location: str, reason: str) -> WorkbookRejected:
    outcome = _read(data)
    assert isinstance(outcome, WorkbookRejected), outcome
    assert (outcome.location, reason in outcome.reason) == (location, True), str(outcome)
    return outcome


def test_a_hand_built_package_is_read() -> None:
    """The packages below differ from this one only in what each test changes."""
    book = _read(
        _package([("S", "worksheets/sheet1.xml")], {"xl/worksheets/sheet1.xml": _cells(3)})
    )
    assert not isinstance(book, Exception), book
    assert sorted(book.sheets["S"]) == [(1, 1), (2, 1), (3, 1)]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "target", ["other/s.xml", "/xl/other/s.xml", "../xl/other/s.xml", "worksheets/../other/s.xml"]
)
def test_cells_of_a_sheet_stored_outside_the_worksheets_folder_are_counted(
    monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    monkeypatch.setattr(guard, "MAX_CELLS", 20)
    data = _package([("S", target)], {"xl/other/s.xml": _cells(21)})
    _refused(data, "", "more than 20 cells")


def test_a_cell_outside_the_grid_in_a_sheet_stored_elsewhere_is_refused_by_the_guard() -> None:
    sheet = f'<worksheet xmlns="{MAIN}"><sheetData><row r="1"><c r="XFE1"><v>1</v></c></row>'
    data = _package([("S", "other/s.xml")], {"xl/other/s.xml": sheet + "</sheetData></worksheet>"})
    with pytest.raises(WorkbookRejected) as refused:
        guard.check_workbook(data)
    assert (refused.value.location, refused.value.reason) == ("S!XFE1", f"the cell is {GRID}")


def test_the_workbook_part_named_in_the_content_types_is_the_one_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """openpyxl takes the workbook part from [Content_Types].xml; xl/workbook.xml is a decoy
    here, listing a harmless sheet."""
    monkeypatch.setattr(guard, "MAX_CELLS", 20)
    decoy = _package([("D", "worksheets/d.xml")], {"xl/worksheets/d.xml": _cells(1)})
    with zipfile.ZipFile(io.BytesIO(decoy)) as archive:
        kept = {n: archive.read(n) for n in ("xl/workbook.xml", "xl/_rels/workbook.xml.rels")}
    data = _package(
        [("S", "/data/s.xml")],
        {"data/s.xml": _cells(21), "xl/worksheets/d.xml": _cells(1), **kept},
        workbook="xl/book.xml",
    )
    _refused(data, "", "more than 20 cells")


@pytest.mark.parametrize("count", [2, guard.MAX_SHEETS])
def test_sheets_sharing_one_part_are_refused_naming_it(count: int) -> None:
    """openpyxl reads a part once per sheet: 256 sheets on a part of a million cells would be
    256 million cells. Here the part is small, so without the check the file loads."""
    spellings = ["worksheets/sheet1.xml", "/xl/worksheets/sheet1.xml", "./worksheets/sheet1.xml"]
    sheets = [(f"S{i}", spellings[i % 3]) for i in range(count)]
    data = _package(sheets, {"xl/worksheets/sheet1.xml": _cells(3)})
    refused = _refused(data, "S1", "stored in xl/worksheets/sheet1.xml, as sheet S0 is")
    assert "a part of its own" in refused.reason


def test_shared_strings_stored_elsewhere_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guard, "MAX_SHARED_STRINGS", 20)
    items = "".join(f"<si><t>s{i}</t></si>" for i in range(21))
    data = _package(
        [("S", "worksheets/sheet1.xml")],
        {
            "xl/worksheets/sheet1.xml": _cells(1),
            "xl/other/t.xml": f'<sst xmlns="{MAIN}">{items}</sst>',
        },
        overrides={"xl/other/t.xml": STRINGS},
    )
    _refused(data, "", "more than 20 shared strings")


@pytest.mark.parametrize(
    ("encode", "reason"),
    [
        pytest.param(
            lambda xml: xml.replace("UTF-8", "UTF-16").encode("utf-16"),
            "is not encoded in UTF-8",
            id="UTF-16",
        ),
        pytest.param(
            lambda xml: xml.replace(DECLARATION, "").encode("utf-16-le"),
            "is not encoded in UTF-8",
            id="UTF-16LE without BOM or declaration",
        ),
        pytest.param(
            lambda xml: xml.replace("UTF-8", "ISO-8859-1").encode(),
            "is encoded in ISO-8859-1, not UTF-8",
            id="declared ISO-8859-1",
        ),
    ],
)
def test_a_sheet_not_in_utf8_is_refused_naming_its_part(
    monkeypatch: pytest.MonkeyPatch, encode: object, reason: str
) -> None:
    """The guard's scans read bytes: in UTF-16 they would find none of the 21 cells that
    openpyxl reads (the cell limit is lowered to 20)."""
    monkeypatch.setattr(guard, "MAX_CELLS", 20)
    assert callable(encode)
    data = _package(
        [("S", "worksheets/sheet1.xml")], {"xl/worksheets/sheet1.xml": encode(_cells(21))}
    )
    _refused(data, "", f"xl/worksheets/sheet1.xml {reason}")


def test_a_sparse_sheet_spanning_the_grid_is_read() -> None:
    """Cells at A1 and XFD1048576: openpyxl declares the dimension A1:XFD1048576 (17 billion
    cells), and two cells are read."""
    book = Workbook()
    book.active.title = "S"
    book.active["A1"] = 1.5
    book.active["XFD1048576"] = "=RiskOutput()+A1"
    buffer = io.BytesIO()
    book.save(buffer)
    with zipfile.ZipFile(buffer) as archive:
        assert b'<dimension ref="A1:XFD1048576"' in archive.read("xl/worksheets/sheet1.xml")
    outcome = _read(buffer.getvalue())
    assert not isinstance(outcome, Exception), outcome
    assert set(outcome.sheets["S"]) == {(1, 1), (1_048_576, 16_384)}  # type: ignore[attr-defined]
