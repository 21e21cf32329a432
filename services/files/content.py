"""Content checks applied while an upload streams: a workbook must really be a safe xlsx.

Only workbooks (an ``.xlsx``/``.xlsm`` name or the OOXML spreadsheet content type) are
checked: the zip signature as soon as the first bytes arrive, then the zip directory
once the upload is complete. The directory is at the end of a zip, so a workbook is
held in memory (never on disk in plaintext), which bounds its size.
"""

from __future__ import annotations

import io
import zipfile

from services.engine.errors import WorkbookRejected
from services.engine.guard import MAX_WORKBOOK_BYTES, TOO_LARGE, check_directory
from services.runtime.errors import InvalidArgument

__all__ = ["MAX_WORKBOOK_BYTES", "check_zip_directory", "checker_for"]

WORKBOOK_TYPES = frozenset(
    {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-excel.sheet.macroenabled.12",
    }
)
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
_ZIP_MAGIC = b"PK\x03\x04"


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
