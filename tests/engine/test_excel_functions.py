"""Every Excel function of the registry against an independent implementation, on every back end.

The cases of tests/engine/excel_cases.py (random and edge arguments) have expected values
computed by the ``formulas`` engine, or SciPy / numpy_financial / Python where noted, in
tests/data/excel_expected.json (``tests/data/make_excel_expected.py`` regenerates it). The
engine must agree to 1e-9 relative, or give the same Excel error:

* folded at compile time, every argument constant (the front end and the NumPy functions it
  folds with);
* per trial on the NumPy back end, every numeric argument an uncertain input;
* per trial on the native back end (the generated source the CUDA kernel compiles, built
  by the system C compiler), against the NumPy back end;
* and the same source, for one case of every spec, compiles to PTX for the GPU.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from services.engine import excel, native, xlerror
from services.engine.build import Book, Graph, build_model
from services.engine.cuda import generate
from services.engine.cuda.harness import nvcc_path
from services.engine.errors import ModelError
from services.engine.formula import Formula
from services.engine.ir import Const, Model
from services.engine.lowering import Lowerer
from services.engine.numpy_backend import compile_numpy
from tests.engine import excel_cases as xc

DATA = Path(__file__).parents[1] / "data" / "excel_expected.json"
EXPECTED: list[dict[str, Any]] = json.loads(DATA.read_text())["cases"]
CASES = xc.cases()
BY_FUNCTION: dict[str, list[int]] = defaultdict(list)
for _row, _case in enumerate(CASES, start=1):
    BY_FUNCTION[_case.function].append(_row)
TRIALS = 4


def test_expected_values_are_current() -> None:
    """The JSON holds exactly today's cases (else: run tests/data/make_excel_expected.py)."""
    got = [(c.function, c.template, list(c.args)) for c in CASES]
    want = [(e["function"], e["template"], e["args"]) for e in EXPECTED]
    assert got == want


def test_every_function_is_tested() -> None:
    untested = sorted(set(excel.FUNCTIONS) - set(BY_FUNCTION) - _NOT_CASED)
    assert not untested, f"no differential cases for {untested}"


#: Functions whose values are random (tested in tests/engine/test_excel_random.py).
_NOT_CASED = {"RAND", "RANDBETWEEN"}


def _book(mode: str, rows: list[int] | None = None, outputs: bool = False) -> Book:
    cells = xc.case_cells(CASES, mode)
    if rows is not None:
        keep = set(rows)
        cells = {k: v for k, v in cells.items() if k[0] in keep}
    if outputs:
        for (row, col), content in list(cells.items()):
            if col == 2:
                assert isinstance(content, Formula)
                cells[(row, col)] = Formula(f'=RiskOutput("case {row}")+({content.text[1:]})')
    return Book({"Cases": cells, "Data": xc.data_cells(mode)})


def _lowered(book: Book, rows: list[int] | None = None) -> dict[int, Any]:
    """Each case cell lowered on its own: its value, or the ModelError refusing it."""
    graph = Graph(book)
    lowerer = Lowerer(graph)
    graph.lower_cell = lowerer.lower_cell
    out: dict[int, Any] = {}
    for row in rows if rows is not None else range(1, len(CASES) + 1):
        try:
            graph.resolve(("Cases", row, 2))
            out[row] = graph.values[("Cases", row, 2)], lowerer
        except ModelError as exc:
            out[row] = exc, lowerer
    return out


def _mismatch(got: Any, want: dict[str, Any], lowerer: Lowerer | None = None) -> str | None:
    """None when ``got`` (a lowering value or a float) is the expected value."""
    if isinstance(got, ModelError):
        return f"refused: {got}"
    if "s" in want:
        return None if got == want["s"] else f"{got!r} != text {want['s']!r}"
    if isinstance(got, str):
        return f"text {got!r} != {want}"
    value = got.value if isinstance(got, Const) else float(got)
    if "b" in want:
        if lowerer is not None and not lowerer.is_logical(got):
            return f"{value} is a number, not {want['b']}"
        return None if value == float(want["b"]) else f"{value} != {want['b']}"
    if "e" in want:
        name = xlerror.name(value) if not math.isinf(value) else "#NUM!"
        return None if name == want["e"] else f"{value} ({name or 'a number'}) != {want['e']}"
    if not math.isfinite(value):
        return f"{xlerror.name(value) or value} != {want['n']}"
    return None if xc.isclose(value, want["n"]) else f"{value!r} != {want['n']!r}"


def _report(function: str, problems: list[str]) -> None:
    assert not problems, (
        f"{function}: {len(problems)} of {len(BY_FUNCTION[function])}\n" + "\n".join(problems[:20])
    )


@pytest.fixture(scope="module")
def folded() -> dict[int, Any]:
    return _lowered(_book("constant"))


@pytest.mark.parametrize("function", sorted(BY_FUNCTION))
def test_folded_at_compile_time(function: str, folded: dict[int, Any]) -> None:
    problems = []
    for row in BY_FUNCTION[function]:
        value, lowerer = folded[row]
        problem = _mismatch(value, EXPECTED[row - 1]["expected"], lowerer)
        if problem:
            problems.append(f"  {CASES[row - 1].formula(row)} {CASES[row - 1].args}: {problem}")
    _report(function, problems)


@pytest.fixture(scope="module")
def per_trial() -> tuple[Model, dict[int, str], set[int]]:
    """The cases as outputs of one model whose numeric arguments are uncertain inputs.

    Cases whose value is text are left out (per-trial text does not exist), and so are the
    cases the front end refuses with uncertain arguments (the functions that run at compile
    time: references built from them, OFFSET and INDIRECT, and text functions), which are
    listed.
    """
    numeric = [r for r in range(1, len(CASES) + 1) if "s" not in EXPECTED[r - 1]["expected"]]
    lowered = _lowered(_book("uncertain", numeric), numeric)
    accepted = [r for r in numeric if not isinstance(lowered[r][0], ModelError)]
    refused = set(numeric) - set(accepted)
    model = build_model(_book("uncertain", accepted, outputs=True))
    names = {int(o.name.split()[1]): o.name for o in model.outputs}
    return model, names, refused


@pytest.fixture(scope="module")
def numpy_values(per_trial, ptx_job) -> dict[str, np.ndarray]:
    model, _, _ = per_trial
    outputs, _ = compile_numpy(model, seed=11).evaluate(0, TRIALS)
    return outputs


def test_only_compile_time_functions_are_refused_per_trial(per_trial) -> None:
    _, _, refused = per_trial
    refused_functions = {CASES[r - 1].function for r in refused}
    assert {excel.FUNCTIONS[f].runs for f in refused_functions} <= {"compile time"}


@pytest.mark.parametrize("function", sorted(BY_FUNCTION))
def test_per_trial_on_numpy(function: str, per_trial, numpy_values) -> None:
    _, names, _ = per_trial
    problems = []
    for row in BY_FUNCTION[function]:
        if row not in names:
            continue
        values = numpy_values[names[row]]
        assert np.array_equal(values, np.full(TRIALS, values[0]), equal_nan=True)
        problem = _mismatch(float(values[0]), EXPECTED[row - 1]["expected"])
        if problem:
            problems.append(f"  {CASES[row - 1].formula(row)} {CASES[row - 1].args}: {problem}")
    _report(function, problems)


nvcc = pytest.mark.skipif(nvcc_path() is None, reason="nvcc is not installed")
with_compiler = pytest.mark.skipif(native.available() is not None, reason="no C compiler")


@pytest.fixture(scope="module")
def ptx_job(per_trial, tmp_path_factory) -> Iterator[subprocess.Popen[str] | None]:
    """PTX for one case of every spec, compiled while the tests on the CPU run (None
    without nvcc)."""
    if nvcc_path() is None:
        yield None
        return
    _, names, _ = per_trial
    first: dict[str, int] = {}
    for row in names:
        first.setdefault(CASES[row - 1].spec, row)
    book = _book("uncertain", sorted(first.values()), outputs=True)
    path = tmp_path_factory.mktemp("ptx") / "excel.cu"
    path.write_text(generate(build_model(book)).source)
    command = [nvcc_path(), "-ptx", "-arch=sm_90", "-Xcicc", "-O1", "-w", str(path)]
    job = subprocess.Popen(
        [*command, "-o", str(path.with_suffix(".ptx"))],  # type: ignore[list-item]
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    yield job
    if job.poll() is None:  # a failed or interrupted run leaves no compiler behind
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()


@pytest.fixture(scope="module")
def native_values(per_trial) -> dict[str, np.ndarray]:
    model, _, _ = per_trial
    outputs, _ = native.compile_native(model, seed=11).evaluate(0, TRIALS)
    return outputs


@with_compiler
@pytest.mark.parametrize("function", sorted(BY_FUNCTION))
def test_native_matches_numpy(function: str, per_trial, numpy_values, native_values) -> None:
    """The generated source (the one CUDA compiles), built by the C compiler and run."""
    _, names, _ = per_trial
    problems = []
    for row in BY_FUNCTION[function]:
        if row not in names:
            continue
        got, want = native_values[names[row]], numpy_values[names[row]]
        same_errors = np.array_equal(_codes(got), _codes(want))
        ok = np.isfinite(want)
        close = np.allclose(got[ok], want[ok], rtol=1e-9, atol=1e-12)
        if not (same_errors and close):
            case = CASES[row - 1]
            problems.append(f"  {case.formula(row)} {case.args}: {got[0]!r} != {want[0]!r}")
    _report(function, problems)


def _codes(values: np.ndarray) -> np.ndarray:
    """Error codes per trial (0 for numbers); an infinity is #NUM!."""
    return xlerror.codes(np.where(np.isinf(values), np.nan, values))


@nvcc
def test_generated_source_compiles_to_ptx(ptx_job) -> None:
    """The source of a model with one case of every spec compiles for the GPU."""
    assert ptx_job is not None
    out, _ = ptx_job.communicate(timeout=600)
    assert ptx_job.returncode == 0, out[-3000:]
