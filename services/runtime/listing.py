"""AIP-132/158/160 list support shared by every service: page tokens, filters, ordering.

Page tokens are opaque (base64url JSON of an offset plus a fingerprint of the query),
so a token reused with a different filter or order is INVALID_ARGUMENT. Filters are
the AIP-160 subset every List here needs: comparisons ``field OP value`` joined by
``AND``, where OP is one of ``= != < <= > >=`` and value is a quoted string, number,
``true``/``false`` or an RFC 3339 timestamp (quoted) for time fields.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_
from sqlalchemy.sql.elements import ColumnClause

from services.runtime.errors import InvalidArgument

__all__ = ["DEFAULT_PAGE_SIZE", "Page", "compile_filter", "compile_order", "page_of"]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

_TERM = re.compile(
    r"""\s*(?P<field>[a-z_][a-z0-9_.]*)\s*(?P<op>!=|<=|>=|=|<|>)\s*
        (?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s"']+)\s*""",
    re.VERBOSE,
)
_OPS = {
    "=": lambda c, v: c == v,
    "!=": lambda c, v: c != v,
    "<": lambda c, v: c < v,
    "<=": lambda c, v: c <= v,
    ">": lambda c, v: c > v,
    ">=": lambda c, v: c >= v,
}


@dataclass(frozen=True)
class Page:
    """Where a page starts and how many rows to return."""

    offset: int
    size: int
    fingerprint: str

    def next_token(self, returned: int) -> str:
        """The token of the following page, or empty when this page was the last."""
        if returned < self.size:
            return ""
        payload = json.dumps({"o": self.offset + returned, "f": self.fingerprint}).encode()
        return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def page_of(page_size: int, page_token: str, *query: str) -> Page:
    """Decode ``page_token`` for the query described by ``query`` (filter, order, ...)."""
    size = page_size or DEFAULT_PAGE_SIZE
    if not 0 < size <= MAX_PAGE_SIZE:
        raise InvalidArgument("page_size", f"must be between 0 and {MAX_PAGE_SIZE}")
    fingerprint = hashlib.sha256("\x00".join(query).encode()).hexdigest()[:16]
    if not page_token:
        return Page(0, size, fingerprint)
    try:
        padded = page_token + "=" * (-len(page_token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded))
        offset = int(data["o"])
        same_query = data["f"] == fingerprint
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument("page_token", "malformed page token") from None
    if not same_query or offset < 0:
        raise InvalidArgument("page_token", "page token belongs to a different query")
    return Page(offset, size, fingerprint)


def _literal(raw: str, column: ColumnClause) -> Any:
    if raw[0] in "\"'":
        text = raw[1:-1].encode().decode("unicode_escape")
    elif raw in ("true", "false"):
        return raw == "true"
    else:
        try:
            return float(raw) if "." in raw else int(raw)
        except ValueError:
            text = raw
    python_type = getattr(column.type, "python_type", str)
    if python_type is dt.datetime:
        try:
            return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidArgument("filter", f"{text!r} is not an RFC 3339 timestamp") from None
    return text


def compile_filter(
    text: str,
    columns: Mapping[str, ColumnClause],
    values: Mapping[str, Mapping[str, Any]] | None = None,
) -> ColumnElement[bool] | None:
    """SQL condition for an AIP-160 filter over ``columns`` (None when empty).

    ``values`` translates API spellings to stored ones per field, e.g.
    ``{"role": {"ROLE_ADMIN": "admin"}}``.
    """
    if not text.strip():
        return None
    conditions = []
    for clause in re.split(r"\s+AND\s+", text.strip()):
        match = _TERM.fullmatch(clause)
        if match is None:
            raise InvalidArgument(
                "filter", f"cannot parse {clause.strip()!r}: expected field OP value"
            )
        name = match["field"]
        if name not in columns:
            allowed = ", ".join(sorted(columns))
            raise InvalidArgument("filter", f"unknown field {name!r}; filterable: {allowed}")
        column = columns[name]
        value = _literal(match["value"], column)
        if values and name in values:
            if value not in values[name]:
                raise InvalidArgument("filter", f"{value!r} is not a valid {name}")
            value = values[name][value]
        conditions.append(_OPS[match["op"]](column, value))
    return and_(*conditions)


def compile_order(
    text: str, columns: Mapping[str, ColumnClause], default: str = "create_time"
) -> list[ColumnElement[Any]]:
    """ORDER BY clauses for an AIP-132 ``order_by`` such as ``create_time desc, email``."""
    clauses: list[ColumnElement[Any]] = []
    for part in (text or default).split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise InvalidArgument("order_by", f"cannot parse {part.strip()!r}")
        if words[0] not in columns:
            allowed = ", ".join(sorted(columns))
            raise InvalidArgument("order_by", f"unknown field {words[0]!r}; sortable: {allowed}")
        column = columns[words[0]]
        clauses.append(column.desc() if words[-1] == "desc" else column.asc())
    return clauses
