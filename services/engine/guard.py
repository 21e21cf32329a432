"""The workbook guard: an .xlsx file checked as a zip before any parser reads it.

Before openpyxl sees a byte, the file is checked as a zip: its size, its number of members,
every member's declared uncompressed size and compression ratio (parts openpyxl parses whole
have a tighter limit than streamed worksheets), and the declared total. Every member is then
inflated once as a stream, counting bytes against the same caps (a member that inflates past
its declared size, or a bad CRC, is refused) and rejecting XML document type declarations
(entity-expansion bombs). The workbook part is parsed for its number of sheets; worksheets
and the shared-strings table are byte-scanned, chunk by chunk, for declared dimensions, cells
and strings. So memory and time are bounded by the constants below, whatever the file claims.

Standard library only: the files service checks uploads with :func:`check_directory` without
loading NumPy, SciPy or openpyxl. :data:`MAX_WORKBOOK_BYTES` is the one workbook size limit
of the platform (files, the simulation service and ``alea run`` all enforce it).
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from xml.etree.ElementTree import Element, ParseError, XMLPullParser

from services.engine.errors import WorkbookRejected
from services.engine.sheet import MAX_COL, MAX_ROW, column_number

__all__ = [
    "MAX_CELLS",
    "MAX_WORKBOOK_BYTES",
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

_CHUNK = 2**20
_XLSX_PARTS = ("[Content_Types].xml", "xl/workbook.xml")
_DOCTYPE = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
_TAG = re.compile(rb"<(?:[\w.-]+:)?(c|si|dimension)(?=[\s/>])([^>]*)")
_REF = re.compile(rb"\bref\s*=\s*[\"']([^\"']*)")


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


def _tags(archive: zipfile.ZipFile, name: str) -> Iterator[tuple[bytes, bytes]]:
    """(local name, attribute text) of each ``c``, ``si`` and ``dimension`` start tag of a
    member, found by a byte scan: counting a million cells is a regex pass, not an XML parse
    (openpyxl parses the XML afterwards; a tag is never split, the scan stops at the last ``<``).
    """
    tail = b""
    for chunk in _stream(archive, name, archive.getinfo(name).file_size):
        buffer = tail + chunk
        cut = buffer.rfind(b"<")
        cut = len(buffer) if cut < 0 else cut
        for m in _TAG.finditer(buffer, 0, cut):
            yield m[1], m[2]
        tail = buffer[cut:] if len(buffer) - cut <= _CHUNK else b""
    for m in _TAG.finditer(tail):
        yield m[1], m[2]


def _check_structure(archive: zipfile.ZipFile) -> None:
    """Count sheets, declared and actual cells, and shared strings, before openpyxl reads."""
    sheets = sum(1 for tag, _ in _elements(archive, "xl/workbook.xml") if tag == "sheet")
    if sheets > MAX_SHEETS:
        raise WorkbookRejected(f"workbook has {sheets} sheets (limit {MAX_SHEETS})")
    names = archive.namelist()
    if "xl/sharedStrings.xml" in names:
        if archive.getinfo("xl/sharedStrings.xml").file_size > MAX_SHARED_STRINGS_BYTES:
            raise WorkbookRejected(f"shared strings larger than {MAX_SHARED_STRINGS_BYTES} bytes")
        count = 0
        for tag, _ in _tags(archive, "xl/sharedStrings.xml"):
            count += tag == b"si"
            if count > MAX_SHARED_STRINGS:
                raise WorkbookRejected(f"more than {MAX_SHARED_STRINGS} shared strings")
    cells = 0
    for name in names:
        if posixpath.dirname(name) != "xl/worksheets" or not name.endswith(".xml"):
            continue
        for tag, attrs in _tags(archive, name):
            if tag == b"dimension":
                ref = _REF.search(attrs)
                declared = declared_cells(ref[1].decode("ascii", "replace")) if ref else 0
                if declared > MAX_CELLS:
                    raise WorkbookRejected(
                        f"{name} declares {ref[1].decode('ascii', 'replace')} "  # type: ignore[index]
                        f"({declared} cells, limit {MAX_CELLS})"
                    )
            elif tag == b"c":
                cells += 1
                if cells > MAX_CELLS:
                    raise WorkbookRejected(f"workbook has more than {MAX_CELLS} cells")


def declared_cells(ref: str) -> int:
    """Cells in a dimension reference such as ``A1:XFD1048576`` (0 when unreadable)."""
    m = re.fullmatch(r"\$?([A-Z]{1,3})\$?(\d+)(?::\$?([A-Z]{1,3})\$?(\d+))?", ref.upper())
    if m is None:
        return 0
    c1, r1 = column_number(m[1]), int(m[2])
    c2, r2 = (column_number(m[3]), int(m[4])) if m[3] else (c1, r1)
    rows = min(abs(r2 - r1), MAX_ROW) + 1
    cols = min(abs(c2 - c1), MAX_COL) + 1
    return rows * cols
