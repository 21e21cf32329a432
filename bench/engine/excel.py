"""Per-trial recalculation of the same workbooks by the ``pycel`` and ``formulas`` engines.

They cannot sample @RISK functions, so each trial writes fresh input values into the
``constant`` version of the workbook (``RiskOutput()+`` removed from output cells) and asks
for the outputs: the way such an engine would be driven for a simulation. Few trials are run
and the rate extrapolated.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from openpyxl import Workbook

from tests.engine import models as m

_RISK_OUTPUT = re.compile(r"^=RiskOutput\([^)]*\)\+", re.IGNORECASE)


def plain_workbook(name: str, directory: Path) -> tuple[Path, list[str], list[str]]:
    """The constant workbook of model ``name`` saved for Excel engines, with the addresses
    of its uncertain cells and of its output cells (``Sheet!A1``)."""
    risk, book = m.MODELS[name]("risk"), m.MODELS[name]("constant")
    inputs, outputs = [], []
    for ws_risk, ws in zip(risk.worksheets, book.worksheets, strict=True):
        for row in ws_risk.iter_rows():
            for cell in row:
                text = cell.value if isinstance(cell.value, str) else ""
                if _RISK_OUTPUT.match(text):
                    ws[cell.coordinate] = _RISK_OUTPUT.sub("=", text)
                    outputs.append(f"{ws.title}!{cell.coordinate}")
                elif re.match(r"^=Risk[A-Za-z0-9]+\(", text):
                    inputs.append(f"{ws.title}!{cell.coordinate}")
    _inline_names(book)
    return _save(book, directory, name), inputs, outputs


def _inline_names(book: Workbook) -> None:
    """Replace defined names by their targets (pycel 1.0b30 cannot read openpyxl 3.1's)."""
    names = {n: d.attr_text for n, d in book.defined_names.items()}
    for n in names:
        del book.defined_names[n]
    for ws in book.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and cell.value.startswith("="):
                    for n, target in names.items():
                        cell.value = re.sub(
                            rf"(?<![!\w]){re.escape(n)}(?![\w(])", target, cell.value
                        )


def _save(book: Workbook, directory: Path, name: str) -> Path:
    path = Path(directory) / f"{name}_plain.xlsx"
    book.save(path)
    return path


def pycel_rate(path: Path, inputs: list[str], outputs: list[str], seconds: float) -> float:
    """Trials per second of pycel recalculating ``outputs`` after setting ``inputs``."""
    from pycel import ExcelCompiler

    xl = ExcelCompiler(filename=str(path))
    for o in outputs:  # compile the formulas before timing
        xl.evaluate(o)
    nominal = {a: float(xl.evaluate(a)) for a in inputs}

    def trial(gen: np.random.Generator) -> None:
        for a, v in nominal.items():
            xl.set_value(a, v * (1.0 + 0.01 * gen.standard_normal()))
        for o in outputs:
            xl.evaluate(o)

    return _rate(trial, seconds)


def formulas_rate(path: Path, inputs: list[str], outputs: list[str], seconds: float) -> float:
    """Trials per second of ``formulas`` recalculating the workbook for new inputs."""
    import formulas

    model = formulas.ExcelModel().loads(str(path)).finish()
    book = path.name

    def ref(address: str) -> str:
        sheet, cell = address.split("!")
        return f"'[{book}]{sheet.upper()}'!{cell}"

    solution = model.calculate()
    nominal = {ref(a): float(np.ravel(solution[ref(a)].value)[0]) for a in inputs}
    wanted = [ref(o) for o in outputs]

    def trial(gen: np.random.Generator) -> None:
        values = {k: v * (1.0 + 0.01 * gen.standard_normal()) for k, v in nominal.items()}
        model.calculate(inputs=values, outputs=wanted)

    return _rate(trial, seconds)


def _rate(trial: Callable[[np.random.Generator], None], seconds: float) -> float:
    gen = np.random.default_rng(0)
    trial(gen)  # warm up
    done, start = 0, time.perf_counter()
    while done < 3 or time.perf_counter() - start < seconds:
        trial(gen)
        done += 1
    return done / (time.perf_counter() - start)
