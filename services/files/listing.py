"""ListFiles: the visible files of a caller, filtered (AIP-160 subset), ordered and paged.

Filter: terms joined by ``AND``, each ``field op "value"``:
``name`` (``=`` / ``!=``; ``*`` is a wildcard), ``content_type`` (``=`` / ``!=``),
``owner_id`` (``=``), ``create_time`` (``<``, ``<=``, ``>``, ``>=``; RFC 3339) and
``size`` (all comparisons; an integer). Example:
``name = "q3*" AND create_time >= "2026-01-01T00:00:00Z"``.
Order: ``create_time``, ``update_time``, ``name`` or ``size``, optionally ``desc``
(default ``create_time desc``). Page tokens are opaque and bound to filter and order.
"""

from __future__ import annotations

import base64
import hashlib
import json
import operator
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.files import store
from services.runtime.context import Principal
from services.runtime.errors import InvalidArgument

__all__ = ["Page", "Query", "list_files"]

T = TypeVar("T")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_TERM = re.compile(r'^\s*(\w+)\s*(<=|>=|!=|=|<|>)\s*(?:"((?:[^"\\]|\\.)*)"|(\S+))\s*$')
_OPS = {
    "=": operator.eq, "!=": operator.ne, "<": operator.lt,
    "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip
_FIELD_OPS = {
    "name": {"=", "!="},
    "content_type": {"=", "!="},
    "owner_id": {"="},
    "create_time": {"<", "<=", ">", ">="},
    "size": set(_OPS),
}
_ORDER_FIELDS = ("create_time", "update_time", "name", "size")


@dataclass(frozen=True)
class Query:
    """AIP-132 list parameters."""

    page_size: int = 0
    page_token: str = ""
    filter: str = ""
    order_by: str = ""


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results and the token of the next (empty on the last page)."""

    items: list[T]
    next_page_token: str


def _value(field: str, raw: str) -> object:
    if field == "size":
        if not raw.isdigit():
            raise InvalidArgument("filter", f"size must be compared with an integer, got {raw!r}")
        return int(raw)
    if field == "create_time":
        try:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            message = f"create_time needs an RFC 3339 time: {raw!r}"
            raise InvalidArgument("filter", message) from None
        if value.tzinfo is None:
            raise InvalidArgument("filter", f"create_time needs a time zone: {raw!r}")
        return value
    return raw.replace('\\"', '"').replace("\\\\", "\\")


def _condition(term: str) -> ColumnElement[bool]:
    match = _TERM.match(term)
    if not match:
        raise InvalidArgument("filter", f"cannot parse {term.strip()!r}")
    field, op, quoted, bare = match.groups()
    if field not in _FIELD_OPS:
        raise InvalidArgument("filter", f"unknown field {field!r}; use {', '.join(_FIELD_OPS)}")
    if op not in _FIELD_OPS[field]:
        raise InvalidArgument("filter", f"{field} does not support {op}")
    value = _value(field, quoted if quoted is not None else bare)
    column = store.files.c[field]
    if field == "name" and isinstance(value, str) and "*" in value:
        escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = column.like(escaped.replace("*", "%"), escape="\\")
        return pattern if op == "=" else ~pattern
    return _OPS[op](column, value)


def _conditions(text: str) -> list[ColumnElement[bool]]:
    if not text.strip():
        return []
    return [_condition(term) for term in re.split(r"\s+AND\s+", text.strip())]


def _order(text: str) -> list:
    spec = (text or "create_time desc").strip()
    parts = spec.split()
    if len(parts) not in (1, 2) or parts[0] not in _ORDER_FIELDS or (
        len(parts) == 2 and parts[1].lower() not in ("asc", "desc")
    ):
        raise InvalidArgument("order_by", f"use one of {', '.join(_ORDER_FIELDS)} [desc]")
    descending = len(parts) == 2 and parts[1].lower() == "desc"
    column, tie = store.files.c[parts[0]], store.files.c.id
    return [column.desc(), tie.desc()] if descending else [column.asc(), tie.asc()]


def _fingerprint(query: Query) -> str:
    return hashlib.sha256(f"{query.filter}\0{query.order_by}".encode()).hexdigest()[:16]


def _offset(query: Query) -> int:
    if not query.page_token:
        return 0
    try:
        token = json.loads(base64.urlsafe_b64decode(query.page_token.encode()))
        offset, fingerprint = int(token["o"]), token["q"]
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument("page_token", "malformed page token") from None
    if fingerprint != _fingerprint(query) or offset < 0:
        raise InvalidArgument("page_token", "the page token belongs to another filter or order")
    return offset


def _token(query: Query, offset: int) -> str:
    raw = json.dumps({"o": offset, "q": _fingerprint(query)}).encode()
    return base64.urlsafe_b64encode(raw).decode()


async def list_files(session: AsyncSession, caller: Principal, query: Query) -> Page[dict]:
    """Rows of the files visible to ``caller`` matching ``query``."""
    if query.page_size < 0:
        raise InvalidArgument("page_size", "must not be negative")
    size = min(query.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    files = store.files
    conditions = _conditions(query.filter)
    statement = select(files).where(files.c.tenant_id == caller.tenant_id, *conditions)
    if caller.role != "admin":
        shared = select(store.shares.c.file_id).where(store.shares.c.user_id == caller.user_id)
        statement = statement.where(or_(files.c.owner_id == caller.user_id, files.c.id.in_(shared)))
    offset = _offset(query)
    statement = statement.order_by(*_order(query.order_by)).offset(offset).limit(size + 1)
    rows = [dict(row) for row in (await session.execute(statement)).mappings()]
    more = len(rows) > size
    return Page(rows[:size], _token(query, offset + size) if more else "")
