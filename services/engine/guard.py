"""The workbook guard: an .xlsx file checked as a zip before any parser reads it.

Before openpyxl sees a byte, the file is checked as a zip: its size, its number of members,
every member's declared uncompressed size and compression ratio (parts openpyxl parses whole
have a tighter limit than streamed worksheets), and the declared total. Every member is then
inflated once as a stream, counting bytes against the same caps (a member that inflates past
its declared size, or a bad CRC, is refused) and rejecting XML document type declarations
(entity-expansion bombs) and any encoding but UTF-8 (the byte scans below read UTF-8 only).

The parts are then found as openpyxl finds them, wherever the file stores them: the workbook
and shared-strings parts from ``[Content_Types].xml``, the sheets from the workbook part's
``<sheets>`` and its relationships (:func:`_sheet_parts`). The workbook part is parsed for its
sheets (two sheets on one part are refused: openpyxl would read the part once per sheet);
each worksheet openpyxl will read and the shared-strings table are byte-scanned, chunk by
chunk, for cells and strings. So memory and time are bounded by the constants below, whatever
the file claims. Rows, cells and dimensions must lie within Excel's grid
(:data:`OUTSIDE_GRID`): openpyxl's ``iter_rows`` pads every row a sheet skips, so one
``<row r="99999999999999999999">`` in a 4 KB file would keep a thread padding rows forever.
A dimension's area is not limited: no reader sizes anything by it (``workbook.sheet_rows``
reads the cells present), and the cells present are counted.

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
"""Most cells (``<c>`` elements) over all the worksheets openpyxl reads."""
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
# XML in UTF-16 or UTF-32, told as XML parsers tell it (XML 1.0, appendix F): a byte order
# mark, or '<' or white space next to a NUL at the start. The byte scans here would find no
# tag in it, while openpyxl's parser reads it. (No image or other binary part Excel writes
# starts so.) EBCDIC ("<?xm" in code page 37) is told the same way.
_WIDE = re.compile(
    rb"\A(?:\xfe\xff|\xff\xfe|\x00\x00\xfe\xff|\x00{1,3}[\t\n\r <]|[\t\n\r <]\x00|\x4c\x6f\xa7\x94)"
)
# An XML declaration (only at the very start, after a UTF-8 byte order mark) and its encoding:
# one declared in ASCII may switch the rest of the part to another (expat and libxml2 do).
_DECLARATION = re.compile(rb"\A(?:\xef\xbb\xbf)?<\?xml(?=[\s?])")
_DECLARATION_END = re.compile(rb"\A(?:\xef\xbb\xbf)?<\?xml([^<>]*?)\?>")
_ENCODING = re.compile(rb"\sencoding\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
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
_RELATIONSHIPS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_RELATIONSHIP_ID = f"{{{_RELATIONSHIPS}}}id"
# The content types openpyxl takes for the workbook part, in the order it looks for them
# (openpyxl.reader.excel._find_workbook_part), and for the shared strings.
_WORKBOOK_TYPES = (
    "application/vnd.ms-excel.template.macroEnabled.main+xml",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.template.main+xml",
    "application/vnd.ms-excel.sheet.macroEnabled.main+xml",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
)
_SHARED_STRINGS_TYPE = (
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
)


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
        _check_size(info, MAX_PART_BYTES if _held_whole(info.filename) else MAX_MEMBER_BYTES)
        total += size
    if total > MAX_TOTAL_BYTES:
        raise WorkbookRejected(f"zip declares {total} bytes uncompressed (limit {MAX_TOTAL_BYTES})")


def _check_size(info: zipfile.ZipInfo, limit: int) -> None:
    if info.file_size > limit:
        raise WorkbookRejected(f"{info.filename} declares {info.file_size} bytes (limit {limit})")


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
            if not seen:
                _check_encoding(info.filename, chunk)
            seen += len(chunk)
            total += len(chunk)
            if total > MAX_TOTAL_BYTES:
                raise WorkbookRejected(f"zip inflates past {MAX_TOTAL_BYTES} bytes")
            if _DOCTYPE.search(tail + chunk):
                raise WorkbookRejected(f"{info.filename} has an XML document type declaration")
            tail = chunk[-16:]
        if seen != info.file_size:
            raise WorkbookRejected(f"{info.filename} inflates to a size other than declared")


def _check_encoding(name: str, start: bytes) -> None:
    """Refuse a part in any encoding but UTF-8 (``start``: its first chunk). Excel writes
    UTF-8; the document type and tag scans read bytes, so a part in UTF-16 would hide from
    them what openpyxl's parser reads in it."""
    if _WIDE.match(start):
        raise WorkbookRejected(f"{name} is not encoded in UTF-8 (UTF-16, UTF-32 or EBCDIC)")
    if not _DECLARATION.match(start):
        return
    declaration = _DECLARATION_END.match(start)
    if declaration is None:
        raise WorkbookRejected(f"{name} has an XML declaration not closed in {_CHUNK} bytes")
    encoding = _ENCODING.search(declaration[1])
    if encoding is not None:
        value = encoding[1] if encoding[1] is not None else encoding[2]
        if value.lower() not in (b"utf-8", b"utf8"):
            raise WorkbookRejected(f"{name} is encoded in {_shown(value)}, not UTF-8")


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


def _elements(archive: zipfile.ZipFile, name: str) -> Iterator[tuple[int, str, dict[str, str]]]:
    """(depth, the root's 0; local tag name; attributes) of every element of an XML member,
    streamed. openpyxl reads a part's elements by position (children of the root, of
    ``<sheets>``) and by local name, whatever their namespace: so does the guard."""
    parser = XMLPullParser(events=("start", "end"))  # type: ignore[var-annotated]
    depth = 0
    try:
        for chunk in _stream(archive, name, archive.getinfo(name).file_size):
            parser.feed(chunk)
            for event, elem in parser.read_events():  # type: ignore[misc]
                assert isinstance(elem, Element)
                if event == "end":
                    depth -= 1
                    elem.clear()
                    continue
                yield depth, elem.tag.rsplit("}", 1)[-1], dict(elem.attrib)
                depth += 1
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
    """Count sheets, cells and shared strings, and check that rows and cells are within the
    grid, in the parts openpyxl will read, before it reads them."""
    workbook, strings = _package(archive)
    names = set(archive.namelist())
    if strings in names:
        _check_size(archive.getinfo(strings), MAX_SHARED_STRINGS_BYTES)
        count = 0
        for tags in _tags(archive, strings):
            count += sum(tag[0] == b"si" for tag in tags)
            if count > MAX_SHARED_STRINGS:
                raise WorkbookRejected(f"more than {MAX_SHARED_STRINGS} shared strings")
    cells = 0
    for title, part, chartsheet in _sheet_parts(archive, workbook):
        if chartsheet:  # parsed into one tree, whatever its folder
            _check_size(archive.getinfo(part), MAX_PART_BYTES)
        else:
            cells = _check_sheet(archive, part, title, cells)


def _package(archive: zipfile.ZipFile) -> tuple[str, str | None]:
    """The workbook part and the shared-strings part (None without one), as openpyxl's reader
    finds them in ``[Content_Types].xml``: the first override of the first workbook content
    type it knows, else ``xl/workbook.xml`` where a default names such a type."""
    overrides: list[tuple[str, str]] = []
    defaults: set[str] = set()
    for depth, tag, attrs in _elements(archive, "[Content_Types].xml"):
        if depth == 1 and tag == "Override":
            overrides.append((attrs.get("ContentType", ""), attrs.get("PartName", "")))
        elif depth == 1 and tag == "Default":
            defaults.add(attrs.get("ContentType", ""))

    def first(content_type: str) -> str | None:
        # openpyxl drops the part name's first character, the leading '/', whatever it is
        return next((part[1:] for kind, part in overrides if kind == content_type), None)

    workbook = next(filter(None, map(first, _WORKBOOK_TYPES)), None)
    if workbook is None and defaults.intersection(_WORKBOOK_TYPES):
        workbook = "xl/workbook.xml"
    if workbook is None or workbook not in archive.namelist():
        raise WorkbookRejected("not an .xlsx file ([Content_Types].xml names no workbook part)")
    return workbook, first(_SHARED_STRINGS_TYPE)


def _sheet_parts(archive: zipfile.ZipFile, workbook: str) -> list[tuple[str, str, bool]]:
    """(title, part, whether a chartsheet) of every sheet openpyxl reads, found as its reader
    finds them: the children of the workbook part's last ``<sheets>`` (whatever their tag),
    each with a relationship id, through the workbook part's relationships, to a part the zip
    holds. Refuses more than :data:`MAX_SHEETS` sheets, and two sheets on one part: openpyxl
    reads a part once per sheet, so 256 sheets on one part of a million cells would be 256
    million cells. All are found before any is scanned."""
    sheets: list[dict[str, str]] = []
    within: list[dict[str, str]] | None = None
    for depth, tag, attrs in _elements(archive, workbook):
        if depth == 1:
            within = [] if tag == "sheets" else None
            if within is not None:  # a later <sheets> replaces an earlier one, to openpyxl
                sheets = within
        elif depth == 2 and within is not None:
            within.append(attrs)
    if len(sheets) > MAX_SHEETS:
        raise WorkbookRejected(f"workbook has {len(sheets)} sheets (limit {MAX_SHEETS})")
    relationships = _relationships(archive, workbook)
    names = set(archive.namelist())
    parts: dict[str, tuple[str, str, bool]] = {}
    for sheet in sheets:
        # the relationships' namespaced id, else a plain one: openpyxl takes either
        rid = sheet.get(_RELATIONSHIP_ID, sheet.get("id"))
        target, kind = relationships.get(rid, ("", "")) if rid else ("", "")
        if target not in names:  # skipped, or refused, by openpyxl
            continue
        title = sheet.get("name") or target
        if target in parts:
            first = quote_sheet(parts[target][0])
            raise WorkbookRejected(
                f"the sheet is stored in {target}, as sheet {first} is: openpyxl would read "
                "the part once per sheet; each sheet needs a part of its own",
                quote_sheet(title),
            )
        parts[target] = (title, target, "chartsheet" in kind)
    return list(parts.values())


def _relationships(archive: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    """(target part, type) of each relationship id of a part, the targets resolved as
    openpyxl's ``get_dependents`` resolves them (empty where the part has no relationships)."""
    folder, base = posixpath.split(part)
    rels = posixpath.join(folder, "_rels", base + ".rels")
    if rels not in archive.namelist():
        return {}
    relationships: dict[str, tuple[str, str]] = {}
    for depth, _, attrs in _elements(archive, rels):
        rid, target = attrs.get("Id"), attrs.get("Target")
        if depth != 1 or not rid or target is None:
            continue
        if attrs.get("TargetMode") == "External":
            pass  # read as written: openpyxl opens it all the same where the zip holds it
        elif target.startswith("/"):
            target = target[1:]  # not normalised, by openpyxl either
        else:
            target = posixpath.normpath(posixpath.join(folder, target))
        kind = f"{_RELATIONSHIPS}/{attrs['type']}" if "type" in attrs else attrs.get("Type", "")
        relationships[rid] = (target, kind)
    return relationships


def _check_sheet(archive: zipfile.ZipFile, name: str, title: str, cells: int) -> int:
    """Refuse a worksheet whose rows, cells or dimension leave the grid, or whose cells take
    the workbook past :data:`MAX_CELLS`; the cells counted so far, this sheet's added.

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
