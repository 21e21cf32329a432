"""Content checks applied while an upload streams: a workbook must really be a safe xlsx.

Only workbooks (an ``.xlsx``/``.xlsm`` name or the OOXML spreadsheet content type) are
checked: the zip signature as soon as the first bytes arrive, then the zip directory
once the upload is complete. The directory is at the end of a zip, so a workbook is
held in memory (never on disk in plaintext), which bounds its size.
"""

from __future__ import annotations

import io
import re
import zipfile

from services.engine.errors import WorkbookRejected
from services.engine.guard import MAX_WORKBOOK_BYTES, TOO_LARGE, check_directory
from services.runtime.errors import InvalidArgument

__all__ = [
    "MAX_WORKBOOK_BYTES",
    "OPAQUE",
    "check_media_type",
    "check_zip_directory",
    "checker_for",
    "is_media_type",
]

WORKBOOK_TYPES = frozenset(
    {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-excel.sheet.macroenabled.12",
    }
)
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
OPAQUE = "application/octet-stream"
_ZIP_MAGIC = b"PK\x03\x04"

# A media type as HTTP defines it (RFC 9110 §8.3.1), in ASCII: type/subtype, then
# parameters whose values are tokens or quoted strings. A download serves the stored type
# as its Content-Type header, so anything else (a CR or LF above all) could add headers of
# its own to the response.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[\t !#-\[\]-~]|\\[\t -~])*"'
_MEDIA_TYPE = re.compile(
    rf"{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))*", re.ASCII
)


def is_media_type(content_type: str) -> bool:
    """Whether ``content_type`` is a media type such as ``text/csv; charset=utf-8``."""
    return _MEDIA_TYPE.fullmatch(content_type) is not None


def check_media_type(content_type: str) -> None:
    """InvalidArgument unless ``content_type`` is a media type (:func:`is_media_type`)."""
    if not is_media_type(content_type):
        raise InvalidArgument(
            "content_type",
            f"{content_type[:80]!r} is not a media type (type/subtype, then optional "
            "'; name=value' parameters, in printable ASCII)",
        )


class _NoCheck:
    def feed(self, piece: bytes) -> None:
        pass

    def finish(self) -> None:
        pass


class _WorkbookCheck:
    def __init__(self) -> None:
        self._data = bytearray()

    def feed(self, piece: bytes) -> None:
        was_short = len(self._data) < len(_ZIP_MAGIC)
        self._data += piece
        if len(self._data) > MAX_WORKBOOK_BYTES:
            raise InvalidArgument("size_bytes", TOO_LARGE)
        if was_short and len(self._data) >= len(_ZIP_MAGIC) and not self._is_zip():
            raise InvalidArgument("content_type", "a workbook must be an xlsx (zip) file")

    def _is_zip(self) -> bool:
        return self._data.startswith(_ZIP_MAGIC)

    def finish(self) -> None:
        if not self._is_zip():
            raise InvalidArgument("content_type", "a workbook must be an xlsx (zip) file")
        check_zip_directory(bytes(self._data))
        self._data.clear()


def checker_for(name: str, content_type: str) -> _NoCheck | _WorkbookCheck:
    """The check an upload of this name and content type needs."""
    if content_type.lower() in WORKBOOK_TYPES or name.lower().endswith(WORKBOOK_SUFFIXES):
        return _WorkbookCheck()
    return _NoCheck()


def check_zip_directory(data: bytes) -> None:
    """Refuse a zip that is malformed, not a workbook, or a bomb by its declared sizes.

    The rules are the simulation engine's own (one guard for the whole platform); only
    the zip directory is read here, the engine inflates and parses when it loads a model.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            check_directory(archive)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise InvalidArgument("content_type", f"not a readable xlsx (zip): {exc}") from None
    except WorkbookRejected as exc:
        raise InvalidArgument("content_type", str(exc)) from None
