"""The .xlsx reader: every hostile file is built here and refused before openpyxl reads it."""

from __future__ import annotations

import io
import math
import re
import tracemalloc
import zipfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from openpyxl import Workbook
from openpyxl.worksheet.formula import ArrayFormula

from services.engine import guard
from services.engine.errors import FormulaError, WorkbookRejected
from services.engine.formula import Formula
from services.engine.workbook import load_workbook, read_book
from tests.engine import models


def _xlsx(wb: Workbook | None = None) -> bytes:
    wb = wb or models.small()
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def rewrite(
    data: bytes,
    changes: dict[str, Callable[[bytes], bytes]],
    moves: dict[str, str] | None = None,
) -> bytes:
    """The zip with members changed by ``changes`` and renamed by ``moves``."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            content = src.read(info.filename)
            change = changes.get(info.filename)
            content = change(content) if change else content
            dst.writestr((moves or {}).get(info.filename, info.filename), content)
    return out.getvalue()


def _rewrite(data: bytes, name: str, change: Callable[[bytes], bytes]) -> bytes:
    """The same zip with member ``name`` replaced by ``change(old content)``."""
    return rewrite(data, {name: change})


def _add(data: bytes, name: str, content: bytes) -> bytes:
    out = io.BytesIO(data)
    with zipfile.ZipFile(out, "a", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, content)
    return out.getvalue()


def _add_strings(data: bytes, table: bytes) -> bytes:
    """The workbook with ``table`` as its shared strings, named in ``[Content_Types].xml``
    (where openpyxl looks for the part)."""
    kind = b"application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
    override = b'<Override PartName="/xl/sharedStrings.xml" ContentType="%s"/></Types>' % kind
    data = _rewrite(data, "[Content_Types].xml", lambda old: old.replace(b"</Types>", override))
    return _add(data, "xl/sharedStrings.xml", table)


def _refused(data: bytes, reason: str) -> None:
    with pytest.raises(WorkbookRejected) as err:
        read_book(data)
    assert reason in str(err.value)


def test_a_valid_workbook_is_read_from_bytes_a_path_or_a_file(tmp_path: Path) -> None:
    data = _xlsx()
    path = tmp_path / "small.xlsx"
    path.write_bytes(data)
    for source in (data, path, str(path), io.BytesIO(data)):
        assert [o.name for o in load_workbook(source).outputs] == ["Profit"]


def test_cell_contents_are_converted() -> None:
    wb = Workbook()
    ws = wb.active
    ws.title = "S"
    ws["A1"], ws["A2"], ws["A3"], ws["A4"] = 1.5, "text", True, date(1900, 1, 10)
    ws["A5"] = "=A1*2"
    ws["A6"] = ArrayFormula("A6", "=SUM(A1:A2)")
    ws.cell(7, 1).value = "#N/A"
    ws.cell(7, 1).data_type = "e"
    cells = read_book(_xlsx(wb)).sheets["S"]
    assert cells[(1, 1)] == 1.5 and cells[(2, 1)] == "text" and cells[(3, 1)] is True
    assert cells[(4, 1)] == 10.0
    assert cells[(5, 1)] == Formula("=A1*2") and cells[(6, 1)] == Formula("=SUM(A1:A2)")
    assert math.isnan(cells[(7, 1)])  # type: ignore[arg-type]


def test_multi_cell_array_formulas_are_refused_naming_the_cell() -> None:
    wb = Workbook()
    wb.active.title = "S"
    wb.active["B1"] = ArrayFormula("B1:B3", "=A1:A3*2")
    with pytest.raises(FormulaError) as err:
        read_book(_xlsx(wb))
    assert err.value.location == "S!B1"


def test_not_a_zip() -> None:
    _refused(b"this is not a workbook at all", "not an .xlsx file")
    _refused(b"PK\x03\x04" + b"\0" * 100, "not an .xlsx file")


def test_a_zip_that_is_not_a_workbook() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("hello.txt", "hi")
    _refused(out.getvalue(), "no [Content_Types].xml")


def test_a_zip_bomb_is_refused_from_the_directory_alone() -> None:
    # 16 MiB of zeros deflate to ~16 KiB: a ratio near 1000:1.
    data = _add(_xlsx(), "xl/media/bomb.bin", b"\0" * (16 * 2**20))
    _refused(data, "a zip bomb")


def test_declared_sizes_over_the_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _add(_xlsx(), "xl/media/big.bin", bytes(range(256)) * 4096)
    monkeypatch.setattr(guard, "MAX_MEMBER_BYTES", 2**19)
    _refused(data, "declares 1048576 bytes")
    monkeypatch.setattr(guard, "MAX_MEMBER_BYTES", 2**30)
    monkeypatch.setattr(guard, "MAX_TOTAL_BYTES", 2**20)
    _refused(data, "uncompressed (limit 1048576)")


def test_a_large_part_openpyxl_would_hold_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _rewrite(_xlsx(), "xl/styles.xml", lambda old: old + b"<!-- %s -->" % (b"x" * 20000))
    monkeypatch.setattr(guard, "MAX_PART_BYTES", 16000)
    _refused(data, "xl/styles.xml declares")
    read_book(_xlsx())  # worksheets are streamed, so they are not held to this limit


def test_a_member_lying_about_its_size_is_refused() -> None:
    """The directory says 100 bytes but the data inflates to far more: cut off, bad CRC."""
    data = bytearray(_xlsx())
    name = b"xl/worksheets/sheet1.xml"
    entry = 0
    while True:
        entry = data.find(b"PK\x01\x02", entry)
        length = int.from_bytes(data[entry + 28 : entry + 30], "little")
        if data[entry + 46 : entry + 46 + length] == name:
            break
        entry += 4
    data[entry + 24 : entry + 28] = (100).to_bytes(4, "little")
    _refused(bytes(data), "sheet1.xml")


def test_too_many_members(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guard, "MAX_MEMBERS", 5)
    _refused(_xlsx(), "entries (limit 5)")


def test_a_file_over_the_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guard, "MAX_WORKBOOK_BYTES", 1000)
    _refused(_xlsx(), "at most")


def test_an_entity_expansion_bomb_is_refused() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    )
    data = _rewrite(_xlsx(), "xl/workbook.xml", lambda old: laughs + old)
    _refused(data, "document type declaration")


def test_a_dimension_spanning_the_grid_is_read_by_the_cells_present() -> None:
    """A dimension's area is no limit (no reader sizes anything by it): the cells are counted."""
    data = _rewrite(
        _xlsx(),
        "xl/worksheets/sheet1.xml",
        lambda old: re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:XFD1048576"', old),
    )
    guard.check_workbook(data)
    assert read_book(data).sheets == read_book(_xlsx()).sheets


def test_too_many_cells(monkeypatch: pytest.MonkeyPatch) -> None:
    wb = Workbook()
    other = wb.create_sheet("Other")
    for r in range(1, 16):  # each sheet's cells are within the limit, the total is not
        wb.active.cell(r, 1, r)
        other.cell(r, 1, r)
    monkeypatch.setattr(guard, "MAX_CELLS", 20)
    _refused(_xlsx(wb), "more than 20 cells")


def test_a_real_million_string_table_is_refused() -> None:
    count = guard.MAX_SHARED_STRINGS + 1
    items = b"".join(b"<si><t>s%d</t></si>" % i for i in range(count))
    table = (
        b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">%s</sst>' % items
    )
    _refused(_add_strings(_xlsx(), table), f"more than {count - 1} shared strings")


def test_a_huge_shared_strings_table(monkeypatch: pytest.MonkeyPatch) -> None:
    items = b"".join(b"<si><t>label %d</t></si>" % i for i in range(30))
    table = (
        b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="30" '
        b'uniqueCount="30">' + items + b"</sst>"
    )
    data = _add_strings(_xlsx(), table)
    monkeypatch.setattr(guard, "MAX_SHARED_STRINGS", 20)
    _refused(data, "more than 20 shared strings")
    monkeypatch.setattr(guard, "MAX_SHARED_STRINGS_BYTES", 100)
    _refused(data, "xl/sharedStrings.xml declares")
    _refused(data, "bytes (limit 100)")


def test_too_many_sheets() -> None:
    """A workbook part listing MAX_SHEETS + 1 sheets, no lowered limit."""
    count = guard.MAX_SHEETS + 1

    def many(part: bytes) -> bytes:
        # Copies of the sheet's own element keep its namespace prefixes (openpyxl writes them
        # differently with and without lxml), renamed and renumbered.
        sheet = re.search(rb"<[^<>]*sheet [^>]*/>", part)
        assert sheet is not None, part
        copies = (
            re.sub(
                rb' name="[^"]*"(.*) sheetId="\d+"',
                b' name="S%d"\\1 sheetId="%d"' % (i, i + 1),
                sheet.group(),
            )
            for i in range(count)
        )
        return part.replace(sheet.group(), b"".join(copies), 1)

    data = _rewrite(_xlsx(), "xl/workbook.xml", many)
    _refused(data, f"{count} sheets (limit {guard.MAX_SHEETS})")


def test_malformed_xml_is_refused() -> None:
    data = _rewrite(_xlsx(), "xl/worksheets/sheet1.xml", lambda old: old[: len(old) // 2])
    _refused(data, "unreadable workbook")


def test_refusing_a_bomb_stays_within_a_small_memory_bound() -> None:
    data = _add(_xlsx(), "xl/media/bomb.bin", b"\0" * (64 * 2**20))
    tracemalloc.start()
    try:
        with pytest.raises(WorkbookRejected):
            read_book(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20  # the 64 MiB member is never inflated


def test_shared_formulas_are_expanded_per_cell() -> None:
    wb = Workbook()
    ws = wb.active
    ws.title = "S"
    for r in range(1, 4):
        ws.cell(r, 1, r)
        ws.cell(r, 2, f"=A{r}*2")
    ws["C1"] = "=RiskOutput()+SUM(B1:B3)"

    def share(xml: bytes) -> bytes:
        xml = xml.replace(b"<f>A1*2</f>", b'<f t="shared" ref="B1:B3" si="0">A1*2</f>')
        return xml.replace(b"<f>A2*2</f>", b'<f t="shared" si="0"/>').replace(
            b"<f>A3*2</f>", b'<f t="shared" si="0"/>'
        )

    data = _rewrite(_xlsx(wb), "xl/worksheets/sheet1.xml", share)
    assert b'si="0"/>' in zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    assert read_book(data).sheets["S"][(3, 2)] == Formula("=A3*2")
    assert load_workbook(data).outputs[0].node.value == 12.0  # type: ignore[union-attr]


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_committed_fixtures_are_the_shared_models(name: str) -> None:
    path = Path(__file__).parents[1] / "data" / "workbooks" / f"{name}.xlsx"
    assert load_workbook(path) == load_workbook(_xlsx(models.MODELS[name]("risk")))


def test_a_sheet_openpyxl_cannot_parse_is_refused_not_crashed() -> None:
    data = _rewrite(
        _xlsx(), "xl/worksheets/sheet1.xml", lambda old: old.replace(b"summaryBelow=", b"bogus=")
    )
    assert b"bogus=" in zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    _refused(data, "unreadable workbook")


def test_a_million_real_cells_are_counted_and_refused() -> None:
    """No lowered limit here: a sheet that really holds MAX_CELLS + 1 cells."""
    rows = b"".join(
        b'<row r="%d"><c r="A%d"><v>%d</v></c></row>' % (r, r, r)
        for r in range(1, guard.MAX_CELLS + 2)
    )

    def flood(old: bytes) -> bytes:
        old = re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1"', old)
        return re.sub(
            rb"<sheetData>.*</sheetData>|<sheetData ?/>",
            b"<sheetData>" + rows + b"</sheetData>",
            old,
            flags=re.S,
        )

    data = _rewrite(_xlsx(Workbook()), "xl/worksheets/sheet1.xml", flood)
    assert len(data) < guard.MAX_WORKBOOK_BYTES
    _refused(data, f"more than {guard.MAX_CELLS} cells")
