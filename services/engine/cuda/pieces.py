"""A long trial function cut into pieces that compilers optimise in linear time.

gcc and nvcc optimise a function in time superlinear in its length: one trial function of
3,400 statements (a 500-cell workbook) took 10 s at ``-O1`` and 17 s at ``-O3``. Cut into
pieces of :data:`PIECE` statements, each a function of its own that is never inlined, the
same model builds in a second. Values that cross a cut are spilled: the piece that last
writes one stores it in the trial's scratch array ``r`` (one slot per value) and the pieces
that read it later load it from there. Names in the generated statements are ``v``, ``a``,
``s``, ``u``, ``f`` followed by digits and ``z<group>_<k>``; a statement defines at most one,
a ``double`` or an ``int`` (a flag). A local array (the arguments of a variadic primitive)
is read by the next statement alone, so no cut falls between the two.
"""

from __future__ import annotations

import itertools
import re

__all__ = ["PIECE", "column_function", "trial_function"]

PIECE = 256
_NAME = re.compile(r"\b[vasufz]\d+(?:_\d+)?\b")
_DEFINES = re.compile(r"^\s*(?:const )?(double|int) ([vasufz]\d+(?:_\d+)?) =")
_ARRAY = re.compile(r"^\s*double [a-z]\d+\[")
_SIGNATURE = "double* x, double* y, u64 stride, const double* q"
_COLUMNS = "double* x, u64 stride, u64 n, const double* q"


def trial_function(body: list[str], head: int) -> list[str]:
    """The lines of ``alea_trial`` running ``body``: itself when short, else pieces and a
    caller. The first ``head`` statements (the copulas, which update their uniforms in
    place) stay in the first piece."""
    if len(body) <= PIECE:
        return [f"ALEA_HD void alea_trial({_SIGNATURE}) {{", *body, "}"]
    cuts = [0]
    for cut in range(max(head, PIECE), len(body), PIECE):
        while cut < len(body) and _ARRAY.match(body[cut - 1]):
            cut += 1
        if cut > cuts[-1]:
            cuts.append(cut)
    cuts.append(len(body))
    pieces = [body[a:b] for a, b in itertools.pairwise(cuts) if b > a]
    defined: dict[str, tuple[int, str]] = {}
    names: list[set[str]] = []
    for p, lines in enumerate(pieces):
        seen: set[str] = set()
        for line in lines:
            seen.update(_NAME.findall(line))
            found = _DEFINES.match(line)
            if found:
                defined.setdefault(found[2], (p, found[1]))
        names.append(seen)
    later: list[set[str]] = [set() for _ in pieces]
    for p in range(len(pieces) - 2, -1, -1):
        later[p] = later[p + 1] | names[p + 1]
    slots: dict[str, int] = {}
    out: list[str] = []
    for p, lines in enumerate(pieces):
        loads = sorted(v for v in names[p] if v in defined and defined[v][0] < p)
        stores = sorted(v for v in names[p] & later[p] if v in defined)
        for v in (*loads, *stores):
            slots.setdefault(v, len(slots))
        out.append(f"ALEA_HD_CALL void alea_piece{p}({_SIGNATURE}, double* r) {{")
        out += [f"  {defined[v][1]} {v} = r[{slots[v]}];" for v in loads]
        out += lines
        out += [f"  r[{slots[v]}] = {v};" for v in stores]
        out.append("}")
    out.append(f"ALEA_HD void alea_trial({_SIGNATURE}) {{")
    out.append(f"  double r[{max(1, len(slots))}];  /* the values that cross pieces */")
    out += [f"  alea_piece{p}(x, y, stride, q, r);" for p in range(len(pieces))]
    out.append("}")
    return out


def column_function(loops: list[str]) -> list[str]:
    """The lines of ``alea_columns`` running ``loops`` (independent statements, each
    transforming inputs over the ``n`` trials of ``x``), in pieces of :data:`PIECE`."""
    pieces = [loops[a : a + PIECE] for a in range(0, len(loops), PIECE)]
    out: list[str] = []
    for p, lines in enumerate(pieces):
        out += [f"ALEA_HD_CALL void alea_columns{p}({_COLUMNS}) {{", *lines, "}"]
    out.append(f"ALEA_HD void alea_columns({_COLUMNS}) {{")
    out += [f"  alea_columns{p}(x, stride, n, q);" for p in range(len(pieces))]
    out.append("}")
    return out
