"""Write tests/data/metalog_reference.json: metalog coefficients fitted by the reference package
``pymetalog`` (0.2.2, ordinary least squares) to fixed data, for tests/engine/test_metalog.py.

pymetalog needs pandas, which the project does not: run it in a separate environment,

    python -m venv /tmp/ref && /tmp/ref/bin/pip install pymetalog==0.2.2 pandas
    /tmp/ref/bin/python tests/data/make_metalog_reference.py

The data: 80 values (pymetalog uses each value at probability (i + 0.5)/n below 100 values)
of a lognormal drawn with NumPy's PCG64 from seed 2026, sorted, for every boundedness.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pymetalog

OUT = Path(__file__).with_name("metalog_reference.json")
CASES = {"u": [0, 1], "sl": [0], "su": [60], "b": [0, 60]}
TERMS = (2, 3, 5, 7, 9)


def main() -> None:
    x = np.sort(np.random.default_rng(2026).lognormal(2.0, 0.5, 80))
    cases = []
    for boundedness, bounds in CASES.items():
        fitted = pymetalog.metalog(
            x,
            bounds=bounds,
            boundedness=boundedness,
            term_limit=max(TERMS),
            term_lower_bound=2,
            fit_method="OLS",
        )
        for terms in TERMS:
            a = fitted.output_dict["A"][f"a{terms}"].to_numpy()[:terms]
            cases.append(
                {
                    "boundedness": boundedness,
                    "bounds": bounds,
                    "terms": terms,
                    "coefficients": [float(v) for v in a],
                }
            )
    OUT.write_text(json.dumps({"x": x.tolist(), "cases": cases}, indent=1) + "\n")


if __name__ == "__main__":
    main()
