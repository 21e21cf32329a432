"""Excel functions: the registry (:mod:`.registry`) filled by one module per category.

Importing this package registers every function; :data:`FUNCTIONS` (Excel name → entry) is
what the front end accepts and :data:`PRIMITIVES` (``Apply.fn`` → implementation) what the
back ends evaluate. :data:`REFERENCES` holds the functions that return a reference
(OFFSET, INDIRECT, INDEX, CHOOSE) for arguments that must be ranges.
"""

from services.engine.excel import (
    conditional,
    dates,
    financial,
    logical,
    lookup,
    mathtrig,
    probability,
    registry,
    statistical,
    text,
)

FUNCTIONS = registry.FUNCTIONS
PRIMITIVES = registry.PRIMITIVES
REFERENCES = lookup.REFERENCES

__all__ = [
    "FUNCTIONS",
    "PRIMITIVES",
    "REFERENCES",
    "conditional",
    "dates",
    "financial",
    "logical",
    "mathtrig",
    "probability",
    "registry",
    "statistical",
    "text",
]
