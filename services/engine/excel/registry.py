"""The two tables every layer of the engine reads to support an Excel function.

* :data:`PRIMITIVES`: ``Apply.fn`` name → :class:`Primitive`, what a back end evaluates: its
  NumPy implementation (also used to fold constants) and the C++ function of the generated
  source, with the C++ units it needs (:data:`UNITS`, emitted once each, in dependency
  order, only into the sources of models that use them).
* :data:`FUNCTIONS`: Excel name (upper case, ``NORM.S.DIST``) → :class:`XlFunction`, what the
  front end accepts: arity, category, how a call is lowered to primitives and where it runs.

How each function is verified is not declared here: the differential tests' data records
the reference of every case (tests/data/excel_expected.json), and the coverage table of the
README is generated from both.

The category modules of this package fill both tables when :mod:`services.engine.excel` is
imported; nothing here knows a particular function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.engine.formula import Expr
    from services.engine.lowering import Lowerer

#: How a call is lowered: ``(lowerer, argument expressions, sheet) → lowering value``.
Lowering = Callable[["Lowerer", tuple["Expr", ...], str], Any]

#: Where a function runs: per trial on every back end, or folded when the model is built
#: (its arguments must be constant: text functions, OFFSET, INDIRECT...).
RUNS = ("every back end", "compile time")


@dataclass(frozen=True, slots=True)
class Primitive:
    """An ``Apply.fn`` of the IR that every back end evaluates.

    ``numpy(*args)`` takes floats or float64 arrays of one shape (``ir.Table`` arguments as
    they are) and returns values of that shape. The C++ call is ``cpp(args...)`` where a
    Table argument becomes ``table, rows, cols``; a variadic primitive (``fixed`` is the
    number of leading arguments passed as they are) gets the rest as one mutable local
    array: ``cpp(fixed..., values, n)``.
    """

    name: str
    numpy: Callable[..., Any]
    cpp: str
    units: tuple[str, ...] = ()
    fixed: int | None = None


@dataclass(frozen=True, slots=True)
class Unit:
    """A piece of C++ (helper functions) and the units it uses."""

    source: str
    needs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class XlFunction:
    """An Excel function the front end accepts.

    ``runs`` is ``"every back end"``, or ``"compile time"`` for a function whose arguments
    must be constant (text functions, OFFSET, INDIRECT...).
    """

    name: str
    category: str
    min_args: int
    max_args: int
    lower: Lowering
    runs: str = "every back end"


PRIMITIVES: dict[str, Primitive] = {}
UNITS: dict[str, Unit] = {}
FUNCTIONS: dict[str, XlFunction] = {}

MAX_ARGS = 255


def primitive(
    name: str,
    numpy: Callable[..., Any],
    cpp: str,
    units: Iterable[str] = (),
    fixed: int | None = None,
) -> None:
    """Register a primitive (a name may be registered once)."""
    assert name not in PRIMITIVES, name
    PRIMITIVES[name] = Primitive(name, numpy, cpp, tuple(units), fixed)


def unit(name: str, source: str, needs: Iterable[str] = ()) -> None:
    """Register a C++ unit."""
    assert name not in UNITS, name
    UNITS[name] = Unit(source, tuple(needs))


def function(
    name: str,
    category: str,
    min_args: int,
    max_args: int,
    lower: Lowering,
    runs: str = "every back end",
) -> None:
    """Register an Excel function under its upper-case name."""
    key = name.upper()
    assert key not in FUNCTIONS, key
    assert runs in RUNS, runs
    FUNCTIONS[key] = XlFunction(key, category, min_args, max_args, lower, runs)


def cpp_units(names: Iterable[str]) -> str:
    """The C++ of ``names`` and everything they need, each once, dependencies first."""
    done: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for dep in UNITS[name].needs:
            visit(dep)
        done.append(name)

    for name in sorted(names):
        visit(name)
    return "\n".join(UNITS[n].source for n in done)
