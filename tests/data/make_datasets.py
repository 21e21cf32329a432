"""Write the worked example of datasets: ``tests/data/datasets/claims.csv`` and a workbook
holding it, ``claims.xlsx``, whose model resamples the losses (``RiskResample``).

500 rows of a claims history with known distributions, so a fit has a right answer: ``loss``,
a lognormal with mean 12,000 and standard deviation 6,000 (rounded to cents), and ``claims``,
a count per period, negative binomial with s = 4 and p = 0.55. Run from the repository root:

    .venv/bin/python -m tests.data.make_datasets
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from tests.engine import dataset_examples

OUT = Path(__file__).with_name("datasets")
ROWS = 500
LOSS_MEAN, LOSS_SD = 12_000.0, 6_000.0
CLAIMS_S, CLAIMS_P = 4, 0.55
SEED = 20261204


def main() -> None:
    rng = np.random.default_rng(SEED)
    sigma2 = math.log1p((LOSS_SD / LOSS_MEAN) ** 2)
    loss = rng.lognormal(math.log(LOSS_MEAN) - sigma2 / 2, math.sqrt(sigma2), ROWS)
    claims = rng.negative_binomial(CLAIMS_S, CLAIMS_P, ROWS)
    OUT.mkdir(exist_ok=True)
    with (OUT / "claims.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["period", "loss", "claims"])
        for period, (amount, count) in enumerate(zip(loss, claims, strict=True), 1):
            writer.writerow([period, f"{amount:.2f}", int(count)])
    print(OUT / "claims.csv")
    dataset_examples.resample().save(OUT / "claims.xlsx")
    print(OUT / "claims.xlsx")


if __name__ == "__main__":
    main()
