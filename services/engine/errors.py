"""Errors the engine raises for models it refuses; each names where the problem is.

ModelError
 ├── FormulaError        a formula that cannot be parsed or uses an unsupported function
 ├── CircularReference   a cell that depends on itself
 ├── ParameterError      invalid distribution parameters (``RiskNormal(0,-1)``)
 ├── CorrelationError    a correlation matrix that is not a valid rank-correlation matrix
 └── WorkbookRejected    a file refused before parsing (not xlsx, zip bomb, absurd size)
"""

from __future__ import annotations


class ModelError(Exception):
    """A model the engine refuses; ``location`` is ``Sheet!A1`` (or a spec field path)."""

    def __init__(self, reason: str, location: str = "", function: str = "") -> None:
        self.reason = reason
        self.location = location
        self.function = function
        where = f"{location}: " if location else ""
        what = f"{function}: " if function else ""
        super().__init__(f"{where}{what}{reason}")


class FormulaError(ModelError):
    """A formula that cannot be parsed, or uses a function or operand Alea does not support."""


class CircularReference(ModelError):
    """A cell whose value depends on itself."""


class ParameterError(ModelError):
    """Distribution parameters outside their domain."""


class CorrelationError(ModelError):
    """A correlation matrix that is not symmetric, unit-diagonal and positive semi-definite."""


class WorkbookRejected(ModelError):
    """A file refused before any formula is read: not a workbook, too large, a zip bomb."""
