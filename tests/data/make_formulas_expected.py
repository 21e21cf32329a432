"""Write tests/data/formulas_expected.json: the shared models' outputs by the `formulas` package.

Each model of tests/engine/models.py is built in "constant" mode (every uncertain cell holds its
nominal value), ``RiskOutput(...)+`` is removed from the output formulas, and the independent
Excel engine `formulas` computes the workbook. The engine's tests compare their own folding and
the NumPy backend against these numbers. Run from the repository root:

    .venv/bin/python tests/data/make_formulas_expected.py
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import formulas

from services.engine.sheet import address
from tests.engine import models

OUT = Path(__file__).with_name("formulas_expected.json")
_OUTPUT = re.compile(r"RiskOutput\((?:[^()\"]|\"[^\"]*\")*\)\+", re.IGNORECASE)


def expected(name: str, directory: Path) -> dict[str, float]:
    wb = models.MODELS[name]("constant")
    outputs = {}
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and _OUTPUT.search(cell.value):
                    cell.value = _OUTPUT.sub("", cell.value)
                    where = address(ws.title, cell.row, cell.column)
                    outputs[(ws.title.upper(), cell.coordinate)] = where
    path = models.save(wb, directory, name)
    solution = formulas.ExcelModel().loads(str(path)).finish().calculate()
    values = {}
    for key, result in solution.items():
        m = re.fullmatch(r"'\[[^\]]+\](.+)'!([A-Z]+[0-9]+)", key)
        if m and (m[1], m[2]) in outputs:
            values[outputs[(m[1], m[2])]] = float(result.value[0, 0])
    assert len(values) == len(outputs), (name, sorted(outputs), sorted(values))
    return values


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = {name: expected(name, Path(tmp)) for name in models.MODELS}
    OUT.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
