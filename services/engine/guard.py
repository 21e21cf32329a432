"""The workbook guard: an .xlsx file checked as a zip before any parser reads it.

Before openpyxl sees a byte, the file is checked as a zip: its size, its number of members,
every member's declared uncompressed size and compression ratio (parts openpyxl parses whole
have a tighter limit than streamed worksheets), and the declared total. Every member is then
inflated once as a stream, counting bytes against the same caps (a member that inflates past
its declared size, or a bad CRC, is refused) and rejecting XML document type declarations
(entity-expansion bombs). The workbook part is parsed for its number of sheets; worksheets
and the shared-strings table are byte-scanned, chunk by chunk, for declared dimensions, cells
and strings. So memory and time are bounded by the constants below, whatever the file claims.
Rows, cells and dimensions must lie within Excel's grid (:data:`OUTSIDE_GRID`): openpyxl's
reader pads every row a sheet skips, so one ``<row r="99999999999999999999">`` in a 4 KB file
would keep a thread padding rows forever.

Standard library only: the files service checks uploads with :func:`check_directory` without
loading NumPy, SciPy or openpyxl. :data:`MAX_WORKBOOK_BYTES` is the one workbook size limit
of the platform (files, the simulation service and ``alea run`` all enforce it).
"""

from __future__ import annotations

import functools
import html
import io
import posixpath
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from xml.etree.ElementTree import Element, ParseError, XMLPullParser

from services.engine.errors import WorkbookRejected
from services.engine.sheet import MAX_COL, MAX_ROW, column_letters, column_number, quote_sheet

__all__ = [
    "MAX_CELLS",
    "MAX_WORKBOOK_BYTES",
    "OUTSIDE_GRID",
    "TOO_LARGE",
    "check_directory",
    "check_workbook",
    "declared_cells",
    "read_limited",
]

MAX_WORKBOOK_BYTES = 20 * 2**20
"""Largest .xlsx file accepted (compressed): the inline ``CreateModel`` field's limit too."""
TOO_LARGE = f"a workbook may be at most {MAX_WORKBOOK_BYTES} bytes (20 MiB)"
"""The refusal of a larger workbook, worded the same by every service."""
MAX_MEMBERS = 10_000
"""Most entries in the zip directory."""
MAX_MEMBER_BYTES = 256 * 2**20
"""Largest uncompressed size of one zip member."""
MAX_TOTAL_BYTES = 512 * 2**20
"""Largest uncompressed size of all members together."""
MAX_PART_BYTES = 16 * 2**20
"""Largest uncompressed XML part other than worksheets (streamed) and shared strings: openpyxl
builds a whole tree of such parts (styles, workbook, relationships) in memory."""
MAX_RATIO = 200
"""Highest compression ratio of a member larger than :data:`RATIO_FLOOR_BYTES`."""
RATIO_FLOOR_BYTES = 2**20
"""Members smaller than this are not ratio-checked (tiny XML compresses extremely well)."""
MAX_SHEETS = 256
"""Most worksheets in one workbook."""
MAX_CELLS = 1_000_000
"""Most non-empty cells over all sheets, declared (sheet dimensions) or actual."""
MAX_SHARED_STRINGS = 1_000_000
"""Most entries in the shared-strings table."""
MAX_SHARED_STRINGS_BYTES = 64 * 2**20
"""Largest uncompressed shared-strings part."""
OUTSIDE_GRID = (
    f"outside Excel's grid (rows 1 to {MAX_ROW:,}, columns A to {column_letters(MAX_COL)})"
)
"""Why a row, cell or dimension past the grid is refused: by the guard, and by the workbook
reader for whatever openpyxl reads."""

_CHUNK = 2**20
_XLSX_PARTS = ("[Content_Types].xml", "xl/workbook.xml")
_DOCTYPE = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
# Markup runs from '<' to the first '>' outside quotes; a quoted value may hold '>' but never
# '<', so no match reaches past the next '<' (possessive: a tag left open fails in one pass).
_ATTRIBUTES = rb"(?:[^<>\"']++|\"[^<\"]*+\"|'[^<']*+')*+"
_TAG = re.compile(
    rb"<(?:[^\s<>/:=\"']+:)?(c|si|row|dimension)(?=[\s/>])(?:\s+r=\"([A-Za-z]*)([0-9]+)\")?("
    + _ATTRIBUTES
    + rb")>"
)
_MARKUP = re.compile(rb"<" + _ATTRIBUTES + rb">")
_ATTRIBUTE = re.compile(rb"([^\s=\"'/]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_REF = re.compile(rb"\s*([A-Za-z]*)([0-9]+)\s*")
_RANGE_REF = re.compile(rb"\$?([A-Za-z]*)\$?([0-9]*)(?::\$?([A-Za-z]*)\$?([0-9]*))?")
_RELATIONSHIP_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


def read_limited(source: str | Path | bytes | IO[bytes]) -> bytes:
    """The bytes of a workbook (path, bytes or binary file), refused past the size limit."""
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if path.stat().st_size > MAX_WORKBOOK_BYTES:
            raise WorkbookRejected(TOO_LARGE)
        data = path.read_bytes()
    else:
        data = source.read(MAX_WORKBOOK_BYTES + 1)
    if len(data) > MAX_WORKBOOK_BYTES:
        raise WorkbookRejected(TOO_LARGE)
    return data


def check_workbook(data: bytes) -> None:
    """Refuse anything but a well-formed, bounded .xlsx zip; inflates each member once."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise WorkbookRejected(f"not an .xlsx file (not a readable zip: {exc})") from None
    with archive:
        check_directory(archive)
        _check_contents(archive)
        _check_structure(archive)


def check_directory(archive: zipfile.ZipFile) -> None:
    """Refuse a zip whose central directory declares too many entries, too many bytes or
    bomb-like compression ratios, or lacks the parts of an .xlsx; inflates nothing."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise WorkbookRejected(f"zip has {len(infos)} entries (limit {MAX_MEMBERS})")
    names = {i.filename for i in infos}
    missing = [p for p in _XLSX_PARTS if p not in names]
    if missing:
        raise WorkbookRejected(f"not an .xlsx file (no {missing[0]})")
    total = 0
    for info in infos:
        size = info.file_size
        ratio = size / max(info.compress_size, 1)
        if size > RATIO_FLOOR_BYTES and ratio > MAX_RATIO:
            raise WorkbookRejected(f"{info.filename} compresses {ratio:.0f}:1, a zip bomb")
        limit = MAX_PART_BYTES if _held_whole(info.filename) else MAX_MEMBER_BYTES
        if size > limit:
            raise WorkbookRejected(f"{info.filename} declares {size} bytes (limit {limit})")
        total += size
    if total > MAX_TOTAL_BYTES:
        raise WorkbookRejected(f"zip declares {total} bytes uncompressed (limit {MAX_TOTAL_BYTES})")


def _held_whole(name: str) -> bool:
    """XML parts openpyxl parses into one tree (worksheets are streamed, strings counted)."""
    streamed = posixpath.dirname(name) == "xl/worksheets" or name == "xl/sharedStrings.xml"
    return name.endswith((".xml", ".rels")) and not streamed


def _check_contents(archive: zipfile.ZipFile) -> None:
    """Inflate every member once as a stream, never past its declared size or the caps."""
    total = 0
    for info in archive.infolist():
        seen = 0
        tail = b""
        for chunk in _stream(archive, info.filename, info.file_size):
            seen += len(chunk)
            total += len(chunk)
            if total > MAX_TOTAL_BYTES:
                raise WorkbookRejected(f"zip inflates past {MAX_TOTAL_BYTES} bytes")
            if _DOCTYPE.search(tail + chunk):
                raise WorkbookRejected(f"{info.filename} has an XML document type declaration")
            tail = chunk[-16:]
        if seen != info.file_size:
            raise WorkbookRejected(f"{info.filename} inflates to a size other than declared")


def _stream(archive: zipfile.ZipFile, name: str, limit: int) -> Iterator[bytes]:
    try:
        with archive.open(name) as member:
            while chunk := member.read(_CHUNK):
                if len(chunk) > limit:
                    raise WorkbookRejected(f"{name} inflates past its declared size")
                limit -= len(chunk)
                yield chunk
    except WorkbookRejected:
        raise
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        EOFError,
        OSError,
    ) as exc:
        raise WorkbookRejected(f"{name} cannot be inflated: {exc}") from None
    except Exception as exc:  # zlib.error and friends
        raise WorkbookRejected(f"{name} cannot be inflated: {exc}") from None


def _elements(archive: zipfile.ZipFile, name: str) -> Iterator[tuple[str, dict[str, str]]]:
    """(local tag name, attributes) of every element of an XML member, streamed."""
    parser = XMLPullParser(events=("start",))  # type: ignore[var-annotated]
    try:
        for chunk in _stream(archive, name, archive.getinfo(name).file_size):
            parser.feed(chunk)
            for _, elem in parser.read_events():  # type: ignore[misc]
                assert isinstance(elem, Element)
                yield elem.tag.rsplit("}", 1)[-1], dict(elem.attrib)
                elem.clear()
        parser.close()
    except ParseError as exc:
        raise WorkbookRejected(f"{name} is not well-formed XML: {exc}") from None


def _tags(archive: zipfile.ZipFile, name: str) -> Iterator[list[tuple[bytes, ...]]]:
    """Each chunk's ``c``, ``si``, ``row`` and ``dimension`` start tags of a member, as (local
    name, column letters and row digits of an ``r`` written first else ``b""``, the other
    attributes), found by a byte scan: counting a million cells is a regex pass, not an XML
    parse (openpyxl parses afterwards).

    Tags are matched whole, quoted values included. Only markup from a chunk's last ``<`` can
    be cut off (markup holds no other ``<``): it is carried into the next chunk, and refused
    once longer than a chunk, since skipping it could skip the row that needs checking.
    """
    tail = b""
    for chunk in _stream(archive, name, archive.getinfo(name).file_size):
        buffer = tail + chunk
        yield _TAG.findall(buffer)
        cut = buffer.rfind(b"<")
        tail = b"" if cut < 0 or _MARKUP.match(buffer, cut) else buffer[cut:]
        if len(tail) > _CHUNK:
            raise WorkbookRejected(f"{name} has markup longer than {_CHUNK} bytes")


def _check_structure(archive: zipfile.ZipFile) -> None:
    """Count sheets, declared and actual cells, and shared strings, and check that rows and
    cells are within the grid, before openpyxl reads."""
    sheets = [attrs for tag, attrs in _elements(archive, "xl/workbook.xml") if tag == "sheet"]
    if len(sheets) > MAX_SHEETS:
        raise WorkbookRejected(f"workbook has {len(sheets)} sheets (limit {MAX_SHEETS})")
    names = archive.namelist()
    if "xl/sharedStrings.xml" in names:
        if archive.getinfo("xl/sharedStrings.xml").file_size > MAX_SHARED_STRINGS_BYTES:
            raise WorkbookRejected(f"shared strings larger than {MAX_SHARED_STRINGS_BYTES} bytes")
        count = 0
        for tags in _tags(archive, "xl/sharedStrings.xml"):
            count += sum(tag[0] == b"si" for tag in tags)
            if count > MAX_SHARED_STRINGS:
                raise WorkbookRejected(f"more than {MAX_SHARED_STRINGS} shared strings")
    titles = _sheet_titles(archive, sheets)
    cells = 0
    for name in names:
        if posixpath.dirname(name) != "xl/worksheets" or not name.endswith(".xml"):
            continue
        cells = _check_sheet(archive, name, titles.get(name, name), cells)


def _sheet_titles(archive: zipfile.ZipFile, sheets: list[dict[str, str]]) -> dict[str, str]:
    """The title of each worksheet part the workbook's relationships name, so that a refusal
    names the sheet as Excel shows it (a part not found there is named by its path)."""
    rels = "xl/_rels/workbook.xml.rels"
    if rels not in archive.namelist():
        return {}
    targets = {
        attrs.get("Id"): attrs.get("Target", "")
        for tag, attrs in _elements(archive, rels)
        if tag == "Relationship"
    }
    titles: dict[str, str] = {}
    for sheet in sheets:
        target = targets.get(sheet.get(_RELATIONSHIP_ID))
        if target and "name" in sheet:
            part = target[1:] if target.startswith("/") else posixpath.join("xl", target)
            titles[posixpath.normpath(part)] = sheet["name"]
    return titles


def _check_sheet(archive: zipfile.ZipFile, name: str, title: str, cells: int) -> int:
    """Refuse a worksheet whose rows, cells or dimension leave the grid, or that takes the
    workbook past :data:`MAX_CELLS`; the cells counted so far, this sheet's added.

    A row or cell without ``r`` follows the one before it, as openpyxl numbers them.
    """
    sheet = quote_sheet(title)
    row = column = 0
    for tags in _tags(archive, name):
        for tag, letters, digits, attrs in tags:
            if not digits:  # r is not first, or not plain: read as openpyxl reads it
                ref = _attribute(attrs, b"r")
                if ref:  # r="" is no r, to openpyxl too
                    m = _REF.fullmatch(ref)
                    if m is None:
                        what = "cell reference" if tag == b"c" else "row number"
                        raise WorkbookRejected(f"{what} {_shown(ref)!r} is not readable", sheet)
                    letters, digits = m.groups()
            if tag == b"c":
                cells += 1
                if cells > MAX_CELLS:
                    raise WorkbookRejected(f"workbook has more than {MAX_CELLS} cells")
                if digits:
                    column = _column(letters) if letters else 0
                    if not (1 <= column <= MAX_COL and 1 <= _row(digits) <= MAX_ROW):
                        where = f"{sheet}!{_shown(letters + digits)}"
                        raise WorkbookRejected(f"the cell is {OUTSIDE_GRID}", where)
                else:
                    column += 1
                    if column > MAX_COL:
                        where = f"{sheet}!{column_letters(column)}{row}"
                        raise WorkbookRejected(f"the cell is {OUTSIDE_GRID}", where)
            elif tag == b"row":
                if letters:
                    shown = _shown(letters + digits)
                    raise WorkbookRejected(f"row number {shown!r} is not readable", sheet)
                row, column = (_row(digits) if digits else row + 1), 0
                if not 1 <= row <= MAX_ROW:
                    shown = _shown(digits) if digits else str(row)
                    raise WorkbookRejected(f"row {shown} is {OUTSIDE_GRID}", sheet)
            elif tag == b"dimension":
                dimension = _attribute(attrs, b"ref") or b""
                if not _within_grid(dimension):
                    shown = _shown(dimension)
                    raise WorkbookRejected(f"dimension {shown} is {OUTSIDE_GRID}", sheet)
                declared = declared_cells(dimension.decode("utf-8", "replace"))
                if declared > MAX_CELLS:
                    raise WorkbookRejected(
                        f"{name} declares {_shown(dimension)} ({declared} cells, limit {MAX_CELLS})"
                    )
    return cells


def _attribute(attrs: bytes, name: bytes) -> bytes | None:
    """The value of an attribute without a prefix (as openpyxl reads ``r``), references to
    characters resolved; None when the tag has none. Attributes are read in order, so text
    inside another attribute's quotes is never taken for one."""
    for m in _ATTRIBUTE.finditer(attrs):
        if m[1] == name:
            value: bytes = m[2] if m[2] is not None else m[3]
            return (
                html.unescape(value.decode("utf-8", "replace")).encode() if b"&" in value else value
            )
    return None


def _row(digits: bytes) -> int:
    """A row number written in digits; past seven digits, MAX_ROW + 1 (a hostile file's
    hundred-digit row is never converted: int() of a long string is slow, and refused past
    4,300 digits)."""
    if len(digits) > 7:
        digits = digits.lstrip(b"0") or b"0"
    return int(digits) if len(digits) <= 7 else MAX_ROW + 1


def _column(letters: bytes) -> int:
    """A column's number; past three letters, MAX_COL + 1."""
    return _column_number(letters) if len(letters) <= 3 else MAX_COL + 1


@functools.lru_cache(maxsize=2**15)
def _column_number(letters: bytes) -> int:
    return column_number(letters.decode("ascii"))


def _within_grid(ref: bytes) -> bool:
    """Whether every row and column a dimension reference (``A1:D20``, ``A:D``, ``1:20``)
    names is within the grid; one openpyxl cannot read either is left to openpyxl."""
    m = _RANGE_REF.fullmatch(ref.strip())
    if m is None:
        return True
    rows = [_row(digits) for digits in (m[2], m[4]) if digits]
    columns = [_column(letters) for letters in (m[1], m[3]) if letters]
    return all(1 <= r <= MAX_ROW for r in rows) and all(c <= MAX_COL for c in columns)


def _shown(value: bytes) -> str:
    """A value from the file as a refusal quotes it: at most 40 characters."""
    text = value.decode("utf-8", "replace")
    return text if len(text) <= 40 else text[:40] + "…"


def declared_cells(ref: str) -> int:
    """Cells in a dimension reference such as ``A1:XFD1048576`` (0 when unreadable)."""
    m = re.fullmatch(r"\$?([A-Z]{1,3})\$?(\d+)(?::\$?([A-Z]{1,3})\$?(\d+))?", ref.upper())
    if m is None:
        return 0
    c1, r1 = column_number(m[1]), _row(m[2].encode())
    c2, r2 = (column_number(m[3]), _row(m[4].encode())) if m[3] else (c1, r1)
    rows = min(abs(r2 - r1), MAX_ROW) + 1
    cols = min(abs(c2 - c1), MAX_COL) + 1
    return rows * cols
