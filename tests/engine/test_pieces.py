"""Long trial functions cut into pieces (services.engine.cuda.pieces): every value a piece
reads is its own or loaded from the scratch array with its type; a local array stays with
the statement that reads it; the native build compiles pieces as units of their own. The
values themselves are checked against NumPy on the ``long`` test model (test_native,
test_cuda_codegen)."""

from __future__ import annotations

import re

from services.engine.cuda import generate
from services.engine.cuda.pieces import PIECE, trial_function
from services.engine.cunits import translation_units
from services.engine.ir import Const, Model, Output, Sample
from services.engine.native import native_source
from tests.engine.ir_models import long_model

_DECLARED = re.compile(r"^\s*(?:const )?(?:double|int) ([a-z]\d+(?:_\d+)?)\b")
_USED = re.compile(r"\b[vasufz]\d+(?:_\d+)?\b")


def _pieces(lines: list[str]) -> list[list[str]]:
    out: list[list[str]] = []
    for line in lines:
        if line.startswith("ALEA_HD_CALL void alea_piece"):
            out.append([])
        elif out and line != "}" and not line.startswith("ALEA_HD void alea_trial"):
            out[-1].append(line)
        elif line.startswith("ALEA_HD void alea_trial"):
            break
    return out


def _filler(start: int, count: int) -> list[str]:
    return [f"  const double v{i} = xl_sqrt(x[{i} * stride]);" for i in range(start, start + count)]


def test_every_name_a_piece_reads_is_declared_in_it() -> None:
    body = _filler(0, PIECE - 1)
    body += ["  int f900 = !isnan(v1);", "  if (!f900) v1 = 2.0;"]  # a flag across the cut
    body += _filler(1000, PIECE - 2)
    body += ["  double a901[2] = {v2, v3};", "  const double v902 = xl_multinomial(a901, 2);"]
    body += ["  y[0 * stride] = xl_add(v902, v1);"]
    pieces = _pieces(trial_function(body, 0))
    assert len(pieces) == 3
    assert "  int f900 = r[0];" in pieces[1]  # reloaded as the int it was
    for lines in pieces:
        declared = {m[1] for line in lines if (m := _DECLARED.match(line))}
        used = {name for line in lines for name in _USED.findall(line)}
        assert used <= declared, used - declared
    assert body.index("  double a901[2] = {v2, v3};") == 2 * PIECE - 1  # where a cut falls
    lines = next(lines for lines in pieces if "  double a901[2] = {v2, v3};" in lines)
    reader = lines.index("  double a901[2] = {v2, v3};") + 1
    assert lines[reader].startswith("  const double v902 = xl_multinomial(a901")


def test_the_long_test_model_carries_a_flag_across_a_cut() -> None:
    """So that its comparisons with NumPy run a cut inside a long sum's first-error scan."""
    source = generate(long_model()).source
    assert re.search(r"^  int f\d+ = r\[\d+\];$", source, re.M)


def test_pieces_move_into_units_of_their_own_declared_in_the_main_one() -> None:
    """Every piece is defined in exactly one unit of pieces and declared in the main one,
    which keeps the rest; a source without pieces stays one unit."""
    source, _ = native_source(long_model())
    units = translation_units(source, 3)
    defined = re.compile(r"^void (alea_(?:piece|columns)\d+)\(.*\) \{$", re.M)
    pieces = re.findall(r"^ALEA_HD_CALL void (alea_(?:piece|columns)\d+)\(", source, re.M)
    assert len(pieces) >= 3 and len(units) == 4
    assert sorted(n for unit in units[1:] for n in defined.findall(unit)) == sorted(pieces)
    main = units[0]
    assert not defined.findall(main) and "ALEA_HD_CALL void alea_piece" not in main
    assert all(re.search(rf"^void {name}\(.*\);$", main, re.M) for name in pieces)
    assert "int alea_summary(" in main and all("int alea_summary(" not in u for u in units[1:])
    one = Sample(0, "normal", (Const(0.0), Const(1.0)), "x", "A1")
    short, _ = native_source(Model((one,), (Output("x", "B1", one),)))
    assert translation_units(short, 3) == [short]
