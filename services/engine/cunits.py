"""A generated source compiled as several translation units at once, then linked.

A long model's trial function and column transforms come in pieces (:mod:`.cuda.pieces`),
each a function the compiler never inlines. :func:`compile_library` moves the pieces into
translation units of their own, each with the source's head (prelude, Excel units, tables:
what a unit does not call costs the compiler next to nothing) and its pieces given external
linkage; the rest, the driver included, keeps prototypes of them. The units, two per CPU so
that they even out, compile side by side and are linked into one shared library: the cold
build of a 500-cell model takes its compiler time divided by the CPUs. The pieces are
straight-line code, which ``-O1`` optimises nearly as well as ``-O3`` in half the time; the
main unit (the driver's loops) gets ``-O3``.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

__all__ = ["compile_library", "translation_units"]

_PIECE = re.compile(r"^ALEA_HD_CALL void (alea_(?:piece|columns)\d+)\(([^)]*)\) \{$", re.MULTILINE)
PIECE_FLAGS = ("-O1",)
"""Optimisation of the units of pieces (straight-line code)."""
MAIN_FLAGS = ("-O3",)
"""Optimisation of the main unit once its pieces have left it (the driver's loops)."""


def translation_units(source: str, units: int) -> list[str]:
    """``source`` as the main unit followed by at most ``units`` units of its pieces
    (contiguous runs of about equal length); ``[source]`` when it has no pieces to move."""
    found = list(_PIECE.finditer(source))
    if units < 1 or len(found) < 2:
        return [source]
    blocks = []
    for match in found:
        end = source.index("\n}\n", match.end()) + 3
        blocks.append((match.start(), end, match[1], match[2]))
    head = source[: blocks[0][0]]
    main, at = [], 0
    for start, end, name, signature in blocks:
        main += [source[at:start], f"void {name}({signature});\n"]
        at = end
    main.append(source[at:])
    bodies = [
        source[start:end].replace("ALEA_HD_CALL void ", "void ", 1) for start, end, *_ in blocks
    ]
    groups = min(units, len(bodies))
    cuts = [len(bodies) * g // groups for g in range(groups + 1)]
    return ["".join(main)] + [
        head + "".join(bodies[a:b]) for a, b in itertools.pairwise(cuts) if b > a
    ]


def compile_library(cc: str, flags: tuple[str, ...], source: str, target: str) -> str | None:
    """Build ``source`` into the shared library ``target``: None, or the compiler's error.

    With one CPU, or no pieces, it is one compiler run with ``flags``; else the units compile
    with ``flags`` but their ``-O`` level: :data:`MAIN_FLAGS` for the main unit,
    :data:`PIECE_FLAGS` for the pieces'.
    """
    cpus = os.cpu_count() or 1
    units = translation_units(source, 2 * cpus if cpus > 1 else 0)  # two each: they even out
    if len(units) == 1:
        return _run([cc, *flags, "-o", target, "-x", "c", "-", "-lm"], source)
    shared = tuple(f for f in flags if not f.startswith("-O") and f != "-shared")
    with tempfile.TemporaryDirectory(dir=Path(target).parent, prefix=".units-") as tmp:
        objects = [str(Path(tmp) / f"u{i}.o") for i in range(len(units))]
        levels = [MAIN_FLAGS] + [PIECE_FLAGS] * (len(units) - 1)
        commands = [
            [cc, *shared, *level, "-c", "-o", obj, "-x", "c", "-"]
            for level, obj in zip(levels, objects, strict=True)
        ]
        with ThreadPoolExecutor(cpus) as pool:
            errors = list(pool.map(_run, commands, units))
        failed = next((e for e in errors if e is not None), None)
        if failed is not None:
            return failed
        link = [f for f in flags if f.startswith(("-Wl,", "-march"))]
        return _run([cc, "-shared", "-fPIC", *link, "-o", target, *objects, "-lm"], "")


def _run(command: list[str], source: str) -> str | None:
    done = subprocess.run(command, input=source, capture_output=True, text=True, timeout=600)
    return None if done.returncode == 0 else done.stderr[-2000:]
