"""Workbook content checks: a real xlsx passes; non-zips and zip bombs are refused."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest

from services.engine.errors import WorkbookRejected
from services.engine.guard import MAX_WORKBOOK_BYTES, TOO_LARGE, read_limited
from services.files.content import check_zip_directory, checker_for
from services.runtime.errors import InvalidArgument

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def workbook_bytes() -> bytes:
    book = openpyxl.Workbook()
    book.active["A1"] = 42
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def feed_all(checker, data: bytes, step: int = 3) -> None:
    for start in range(0, len(data), step):
        checker.feed(data[start : start + step])
    checker.finish()


def test_real_workbook_passes() -> None:
    feed_all(checker_for("model.xlsx", "application/octet-stream"), workbook_bytes(), 1000)


def test_non_zip_refused_from_its_first_bytes() -> None:
    checker = checker_for("model.bin", XLSX)
    with pytest.raises(InvalidArgument) as err:
        checker.feed(b"not a zip at all")
    assert err.value.violations[0][0] == "content_type"


def test_zip_that_is_not_a_workbook_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(InvalidArgument, match=r"not an \.xlsx"):
        check_zip_directory(out.getvalue())


def test_zip_bomb_refused_by_declared_ratio() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<x/>")
        archive.writestr("xl/workbook.xml", b"\0" * (20 * 1024 * 1024))
    with pytest.raises(InvalidArgument, match="zip bomb") as err:
        check_zip_directory(out.getvalue())
    assert err.value.violations[0][0] == "content_type"


def test_other_content_is_not_checked() -> None:
    feed_all(checker_for("notes.txt", "text/plain"), b"anything")


def test_the_check_loads_neither_numpy_scipy_nor_openpyxl() -> None:
    """files checks a zip directory with the engine's guard alone, not the whole engine."""
    code = (
        "import sys, services.files.content\n"
        "print(','.join(m for m in ('numpy', 'scipy', 'openpyxl') if m in sys.modules))"
    )
    root = Path(__file__).parents[3]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""


def test_one_size_limit_worded_as_the_engine_does() -> None:
    """A workbook one byte over the guard's limit is refused by files and by the engine."""
    too_big = b"PK\x03\x04" + bytes(MAX_WORKBOOK_BYTES - 3)
    with pytest.raises(InvalidArgument) as err:
        checker_for("model.xlsx", XLSX).feed(too_big)
    assert err.value.violations == [("size_bytes", TOO_LARGE)]
    with pytest.raises(WorkbookRejected, match=re.escape(TOO_LARGE)):
        read_limited(too_big)
