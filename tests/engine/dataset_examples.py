"""The worked example of datasets: the claims history of ``tests/data/datasets/claims.csv``
as a workbook whose model resamples it (``tests/data/make_datasets.py`` writes it as
``tests/data/datasets/claims.xlsx``)."""

from __future__ import annotations

import csv
from pathlib import Path

from openpyxl import Workbook

CLAIMS = Path(__file__).parents[1] / "data" / "datasets" / "claims.csv"
DATA_ROWS = 600  # the model's range reaches past the data: blank cells are skipped
LOADING = 1.1  # the premium loading applied to a resampled loss


def claims() -> list[list[float]]:
    """The CSV's rows (period, loss, claims) as numbers."""
    with CLAIMS.open(newline="") as source:
        rows = list(csv.reader(source))[1:]
    return [[float(v) for v in row] for row in rows]


def resample(function: str = f"RiskResample(2, Data!B2:B{DATA_ROWS})") -> Workbook:
    """Data!A:C the claims history; Model!B1 a loss drawn from it (``function``), Model!B2
    the output ``Premium`` = B1 × 1.1. ``function`` replaces the draw (a test compares
    ``RiskDUniform`` of the same numbers)."""
    book = Workbook()
    data = book.active
    data.title = "Data"
    data.append(["period", "loss", "claims"])
    for row in claims():
        data.append(row)
    model = book.create_sheet("Model")
    model["A1"], model["B1"] = "Loss", f"={function}"
    model["A2"], model["B2"] = "Premium", f'=RiskOutput("Premium")+B1*{LOADING}'
    return book
