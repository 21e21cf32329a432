"""The modelling functions that are neither distributions nor Excel functions, by name.

Each entry lowers a call (``RiskSimtable``...) to IR nodes; :mod:`.lowering` asks here
before the @RISK distributions and the Excel registry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import compound, resample, simtable

if TYPE_CHECKING:
    from .formula import Call
    from .lowering import Lowerer

__all__ = ["LOWERINGS"]

LOWERINGS: dict[str, Callable[[Lowerer, Call, str], Any]] = {
    simtable.FUNCTION: simtable.lower,
    compound.FUNCTION: compound.lower,
    resample.FUNCTION: resample.lower,
}
