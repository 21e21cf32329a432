"""Datasets for fitting: a CSV or XLSX column by header or position, typed as numbers, with
every refusal naming the request field and the row at fault."""

from __future__ import annotations

import io

import numpy as np
import pytest
from openpyxl import Workbook

from services.engine.fitting import dataset
from services.engine.fitting.dataset import DatasetError, read_column


def xlsx(rows: list[list[object]], title: str = "Data") -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = title
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_csv_column_by_header_and_by_position_blanks_skipped() -> None:
    data = b"id,loss\n1,10.5\n2,\n3,7.25\n"
    by_name = read_column(data, column_name="loss")
    assert by_name.name == "loss" and by_name.values.tolist() == [10.5, 7.25]
    by_index = read_column(data, column_index=1)
    assert by_index.name == "id" and by_index.values.tolist() == [1.0, 2.0, 3.0]


def test_headerless_csv_with_semicolons_and_decimal_commas() -> None:
    column = read_column(b"1,5;2\n2,25;3\n", column_index=1)
    assert column.name == "column 1" and column.values.tolist() == [1.5, 2.25]


def test_xlsx_column_of_a_named_sheet() -> None:
    data = xlsx([["amount", "note"], [3.5, "a"], [4, "b"], [None, "c"], [6.25, "d"]])
    column = read_column(data, column_name="amount", sheet="Data")
    assert column.values.tolist() == [3.5, 4.0, 6.25]
    with pytest.raises(DatasetError) as error:
        read_column(data, sheet="Other")
    assert error.value.field == "sheet"


@pytest.mark.parametrize(
    ("data", "kwargs", "field", "words"),
    [
        (b"", {}, "file_id", "empty"),
        (b"x\n1\n2\nabc\n", {}, "column_index", "row 4: 'abc' is not a finite number"),
        (b"x\n1\nnan\n", {}, "column_index", "row 3: 'nan'"),
        (b"x,y\n1,2\n", {"column_name": "z"}, "column_name", "no column 'z'"),
        (b"1,2\n3,4\n", {"column_name": "z"}, "column_name", "no header row"),
        (b"x\n\n\n", {}, "column_index", "holds no numbers"),
        (b"\xff\xfe\x00", {}, "file_id", "neither XLSX nor UTF-8"),
        (b"x\n1\n", {"sheet": "S"}, "sheet", "only an XLSX file"),
        (b"PK\x03\x04 not a zip", {}, "file_id", ""),
    ],
)
def test_refusals_name_the_field(data: bytes, kwargs: dict, field: str, words: str) -> None:
    with pytest.raises(DatasetError) as error:
        read_column(data, **kwargs)
    assert error.value.field == field and words in error.value.reason


def test_size_and_row_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DatasetError, match="at most"):
        read_column(b"1\n" * (dataset.MAX_DATASET_BYTES // 2 + 1))
    monkeypatch.setattr(dataset, "MAX_VALUES", 3)
    with pytest.raises(DatasetError, match="more than 3 values"):
        read_column(b"1\n2\n3\n4\n")
    assert np.array_equal(read_column(b"1\n2\n3\n").values, [1.0, 2.0, 3.0])
