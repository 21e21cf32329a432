"""ListFiles: the files a caller can read, filtered (AIP-160 subset), ordered and paged.

Filter: terms joined by ``AND``, each ``field op value``:
``file_name`` (``=`` / ``!=``; ``*`` is a wildcard, e.g. ``file_name = "*.xlsx"``),
``content_type`` (``=`` / ``!=``), ``owner_id`` (``=``), ``create_time``
(``<``, ``<=``, ``>``, ``>=``; quoted RFC 3339) and ``size_bytes`` (any comparison).
Order: ``create_time`` (default, newest first), ``update_time``, ``file_name`` or
``size_bytes``, optionally ``desc``; the id breaks ties so pages never overlap.
Paging uses the shared opaque page tokens of :mod:`services.runtime.listing`.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.files import store
from services.runtime.context import Principal
from services.runtime.errors import InvalidArgument
from services.runtime.listing import compile_order, page_of

__all__ = ["Page", "Query", "list_files"]

T = TypeVar("T")
_TERM = re.compile(r'^\s*(\w+)\s*(<=|>=|!=|=|<|>)\s*(?:"((?:[^"\\]|\\.)*)"|(\S+))\s*$')
_OPS = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_FIELD_OPS = {
    "file_name": {"=", "!="},
    "content_type": {"=", "!="},
    "owner_id": {"="},
    "create_time": {"<", "<=", ">", ">="},
    "size_bytes": set(_OPS),
}
_COLUMNS = {
    "file_name": store.files.c.name,
    "content_type": store.files.c.content_type,
    "owner_id": store.files.c.owner_id,
    "create_time": store.files.c.create_time,
    "update_time": store.files.c.update_time,
    "size_bytes": store.files.c.size,
}


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


def _value(field: str, raw: str) -> Any:
    if field == "size_bytes":
        if not raw.isdigit():
            raise InvalidArgument("filter", f"size_bytes needs an integer, got {raw!r}")
        return int(raw)
    if field == "create_time":
        try:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            value = None
        if value is None or value.tzinfo is None:
            raise InvalidArgument("filter", f"create_time needs an RFC 3339 time, got {raw!r}")
        return value
    return raw.replace('\\"', '"').replace("\\\\", "\\")


def _condition(term: str) -> ColumnElement[bool]:
    match = _TERM.match(term)
    if not match:
        raise InvalidArgument("filter", f"cannot parse {term.strip()!r}: expected field OP value")
    field, op, quoted, bare = match.groups()
    if field not in _FIELD_OPS:
        raise InvalidArgument("filter", f"unknown field {field!r}; use {', '.join(_FIELD_OPS)}")
    if op not in _FIELD_OPS[field]:
        raise InvalidArgument("filter", f"{field} does not support {op}")
    value = _value(field, quoted if quoted is not None else bare)
    column = _COLUMNS[field]
    if field == "file_name" and isinstance(value, str) and "*" in value:
        escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = column.like(escaped.replace("*", "%"), escape="\\")
        return pattern if op == "=" else ~pattern
    return _OPS[op](column, value)


def _conditions(text: str) -> list[ColumnElement[bool]]:
    if not text.strip():
        return []
    return [_condition(term) for term in re.split(r"\s+AND\s+", text.strip())]


async def list_files(session: AsyncSession, caller: Principal, query: Query) -> Page[dict]:
    """Rows of the files visible to ``caller`` matching ``query``."""
    page = page_of(query.page_size, query.page_token, query.filter, query.order_by)
    files = store.files
    order = compile_order(query.order_by, _COLUMNS, default="create_time desc")
    tie = files.c.id.desc() if "desc" in (query.order_by or "create_time desc") else files.c.id
    statement = select(files).where(
        files.c.tenant_id == caller.tenant_id, *_conditions(query.filter)
    )
    if caller.role != "admin":
        shared = select(store.shares.c.file_id).where(store.shares.c.user_id == caller.user_id)
        statement = statement.where(or_(files.c.owner_id == caller.user_id, files.c.id.in_(shared)))
    statement = statement.order_by(*order, tie).offset(page.offset).limit(page.size)
    rows = [dict(row) for row in (await session.execute(statement)).mappings()]
    return Page(rows, page.next_token(len(rows)))
