"""Paging, filtering and ordering of every List RPC (AIP-132, AIP-158, AIP-160).

Each listed resource declares once, in its service's ``store.py``, a :class:`Listing`:
which API fields filter and sort, the column behind each, and how values of the field
are written (:func:`text`, :func:`number`, :func:`flag`, :func:`timestamp`,
:func:`enum`). ``Listing.query(request, *scope)`` checks a request against it and
raises InvalidArgument naming ``filter``, ``order_by``, ``page_size`` or
``page_token``; the resulting :class:`Query` adds the conditions, the order and the
page bounds to a SELECT, and cuts the rows into a page and the next page token.

Filters are the AIP-160 subset the contracts document: comparisons ``field OP value``
joined by ``AND``. Text is compared with ``=`` / ``!=`` (``*`` matches any run of
characters: ``file_name = "*.xlsx"``); numbers and times with any of ``= != < <= > >=``;
booleans are ``true`` / ``false``; enums are written as their value names, as in the
contracts' examples (``state = "STATE_RUNNING"``); times are quoted RFC 3339
(``create_time > "2026-01-01T00:00:00Z"``). Quotes around text and enum values are
optional. ``order_by`` is a comma-separated list of sortable fields, each optionally
``asc`` or ``desc``.

Page tokens are keyset cursors (base64url JSON): the sort values of the last row
returned, and a fingerprint of the listing, scope, filter and order. Rows inserted or
changed while a client pages therefore never shift a page (no row is skipped or returned
twice for an unchanged order), and a token used with a different query, or with another
List RPC, is INVALID_ARGUMENT. Every sort ends with the resource's unique key, so the
order is total.

Nothing a client writes reaches SQL unchecked: a filter value, or a value in a page token
(which the client holds and can forge), must be one the column can hold: an integer within
64 bits, a finite number, a string, a time zone-aware time between the years 1 and 9999
UTC. Beyond those the database driver or ``datetime`` raise (OverflowError, "value out of
int64 range"), which would be INTERNAL; here they are INVALID_ARGUMENT naming ``filter``
or ``page_token``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Row, Select, and_, false, or_

from services.runtime.errors import InvalidArgument

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "Field",
    "ListRequest",
    "Listing",
    "Page",
    "Query",
    "enum",
    "flag",
    "number",
    "text",
    "timestamp",
]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
EQUALITY = frozenset({"=", "!="})
_OPERATORS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
COMPARISONS = frozenset(_OPERATORS)

_TERM = re.compile(
    r"""\s*(?P<field>[A-Za-z_][A-Za-z0-9_.]*)\s*(?P<op>!=|<=|>=|=|<|>)\s*
        (?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^\s"]+))\s*""",
    re.VERBOSE,
)
_AND = re.compile(r"\s+AND\s+")
_ESCAPE = re.compile(r"\\(.)")
_INTEGER = re.compile(r"-?[0-9]+")
_SORT_LABEL = "_sort{}"
# What the columns can hold: SQLite and PostgreSQL integers are signed 64-bit, and
# ``datetime`` spans the years 1 to 9999 (UNIX seconds of the same span for epoch times).
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_FIRST_TIME = dt.datetime.min.replace(tzinfo=dt.UTC)
_LAST_TIME = dt.datetime.max.replace(tzinfo=dt.UTC)
_EPOCH_RANGE = (_FIRST_TIME.timestamp(), _LAST_TIME.timestamp())
_NOT_THIS_LISTING = "not a page token of this listing"
T = TypeVar("T")


class Kind(Enum):
    """How values of a field are written in a filter."""

    TEXT = "text"
    NUMBER = "an integer"
    FLAG = "true or false"
    TIME = 'a quoted RFC 3339 time such as "2026-01-01T00:00:00Z"'
    ENUM = "one of its value names"


@dataclass(frozen=True)
class Field:
    """One API field of a listed resource; build it with the functions below."""

    column: ColumnElement[Any]
    kind: Kind
    ops: frozenset[str]
    sortable: bool
    # ENUM: API name → stored value, or a tuple of the stored values it stands for
    values: Mapping[str, Any] = field(default_factory=dict)
    epoch: bool = False  # TIME stored as UNIX seconds rather than a datetime


def text(column: ColumnElement[Any], *, sortable: bool = True) -> Field:
    """A string field: ``=`` and ``!=``, where ``*`` is a wildcard."""
    return Field(column, Kind.TEXT, EQUALITY, sortable)


def number(column: ColumnElement[Any], *, sortable: bool = True) -> Field:
    """An integer field: every comparison."""
    return Field(column, Kind.NUMBER, COMPARISONS, sortable)


def flag(column: ColumnElement[Any]) -> Field:
    """A boolean field: ``= true``, ``!= false``..."""
    return Field(column, Kind.FLAG, EQUALITY, False)


def timestamp(column: ColumnElement[Any], *, epoch: bool = False, sortable: bool = True) -> Field:
    """A time field: every comparison with a quoted RFC 3339 time; ``epoch`` when the
    column holds UNIX seconds."""
    return Field(column, Kind.TIME, COMPARISONS, sortable, epoch=epoch)


def enum(column: ColumnElement[Any], values: Mapping[str, Any]) -> Field:
    """An enum field: ``=`` and ``!=`` with the API's value names, mapped to ``values``
    (a tuple when one name stands for several stored values)."""
    return Field(column, Kind.ENUM, EQUALITY, False, values)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing and the token of the next (empty on the last page)."""

    items: list[T]
    next_page_token: str


@dataclass(frozen=True)
class ListRequest:
    """The AIP-132 parameters of a List RPC, as the request carried them."""

    page_size: int = 0
    page_token: str = ""
    filter: str = ""
    order_by: str = ""


@dataclass(frozen=True)
class Query:
    """A checked list request, ready to apply to a SELECT of the resource's rows."""

    conditions: tuple[ColumnElement[bool], ...]
    order: tuple[tuple[Field, bool], ...]  # (field, descending), ending with the unique key
    after: tuple[Any, ...] | None  # sort values of the last row of the previous page
    size: int
    fingerprint: str

    def apply(self, statement: Select[Any]) -> Select[Any]:
        """``statement`` filtered, resumed after the previous page, ordered and limited
        to one row more than the page (which tells whether another page follows)."""
        keys = [f.column.label(_SORT_LABEL.format(i)) for i, (f, _) in enumerate(self.order)]
        statement = statement.add_columns(*keys).where(*self.conditions)
        if self.after is not None:
            statement = statement.where(self._resume())
        ordering = [f.column.desc() if desc else f.column.asc() for f, desc in self.order]
        return statement.order_by(*ordering).limit(self.size + 1)

    def _resume(self) -> ColumnElement[bool]:
        # (a, b, id) after (x, y, z): a > x OR (a = x AND (b > y OR (b = y AND id > z))),
        # with < for the descending keys.
        assert self.after is not None
        condition: ColumnElement[bool] = false()
        for (f, desc), value in reversed(list(zip(self.order, self.after, strict=True))):
            beyond = f.column < value if desc else f.column > value
            condition = or_(beyond, and_(f.column == value, condition))
        return condition

    def page(self, rows: Sequence[Row[Any]]) -> tuple[list[dict[str, Any]], str]:
        """The rows of this page (as mappings, without the sort keys) and the next token."""
        labels = [_SORT_LABEL.format(i) for i in range(len(self.order))]
        items = [
            {k: v for k, v in row._mapping.items() if k not in labels} for row in rows[: self.size]
        ]
        if len(rows) <= self.size:
            return items, ""
        last = rows[self.size - 1]._mapping
        cursor = [_encode(last[label]) for label in labels]
        payload = json.dumps({"a": cursor, "q": self.fingerprint}, separators=(",", ":"))
        return items, base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


class Listing:
    """What a List RPC of one resource accepts: its fields, default order and unique key."""

    def __init__(
        self, fields: Mapping[str, Field], *, key: ColumnElement[Any], default_order: str
    ) -> None:
        self.fields = dict(fields)
        self.key = text(key)
        self.default_order = default_order
        self._parse_order(default_order)  # a wrong default fails at import, not per request
        # Which listing a token belongs to (the key's table and the declared fields): the
        # List RPCs of one tenant share scope, filter and order, and a token of one must
        # not resume another, whose columns it does not describe.
        self._identity = f"{key}\x02{','.join(sorted(self.fields))}"

    def query(self, request: ListRequest, *scope: str) -> Query:
        """Check ``request`` (scope: whatever else selects the rows, e.g. the tenant)."""
        size = request.page_size or DEFAULT_PAGE_SIZE
        if not 0 < size <= MAX_PAGE_SIZE:
            raise InvalidArgument("page_size", f"must be between 0 and {MAX_PAGE_SIZE}")
        conditions = tuple(self._conditions(request.filter))
        order = self._parse_order(request.order_by or self.default_order)
        parts = (
            self._identity,
            "\x00".join(scope),
            request.filter.strip(),
            request.order_by.strip(),
        )
        fingerprint = hashlib.sha256("\x01".join(parts).encode()).hexdigest()[:16]
        after = self._cursor(request.page_token, fingerprint, order) if request.page_token else None
        return Query(conditions, order, after, size, fingerprint)

    # -- order_by -------------------------------------------------------------------------

    def _parse_order(self, text_: str) -> tuple[tuple[Field, bool], ...]:
        sortable = sorted(name for name, f in self.fields.items() if f.sortable)
        order: list[tuple[Field, bool]] = []
        seen: set[str] = set()
        for part in text_.split(","):
            words = part.split()
            if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
                raise InvalidArgument(
                    "order_by", f"cannot parse {part.strip()!r}: expected `field` or `field desc`"
                )
            name = words[0]
            if name not in self.fields or not self.fields[name].sortable:
                raise InvalidArgument(
                    "order_by", f"cannot sort by {name!r}; sortable: {', '.join(sortable)}"
                )
            if name in seen:
                raise InvalidArgument("order_by", f"{name!r} appears twice")
            seen.add(name)
            order.append((self.fields[name], words[-1] == "desc"))
        order.append((self.key, order[-1][1]))  # the unique key makes the order total
        return tuple(order)

    # -- filter ---------------------------------------------------------------------------

    def _conditions(self, text_: str) -> list[ColumnElement[bool]]:
        if not text_.strip():
            return []
        return [self._condition(term) for term in _AND.split(text_.strip())]

    def _condition(self, term: str) -> ColumnElement[bool]:
        match = _TERM.fullmatch(term)
        if match is None:
            raise InvalidArgument(
                "filter", f"cannot parse {term.strip()!r}: expected `field OP value`"
            )
        name, op = match["field"], match["op"]
        if name not in self.fields:
            known = ", ".join(sorted(self.fields))
            raise InvalidArgument("filter", f"cannot filter on {name!r}; filterable: {known}")
        found = self.fields[name]
        if op not in found.ops:
            allowed = " ".join(sorted(found.ops))
            raise InvalidArgument("filter", f"{name} takes the operators {allowed}, not {op}")
        quoted = match["quoted"]
        raw = _ESCAPE.sub(r"\1", quoted) if quoted is not None else match["bare"]
        value = _value(name, found, raw, quoted is not None)
        column = found.column
        if found.kind is Kind.TEXT and "*" in raw:
            escaped = raw.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            like = column.like(escaped.replace("*", "%"), escape="\\")
            return like if op == "=" else ~like
        if isinstance(value, tuple):
            return column.in_(value) if op == "=" else column.not_in(value)
        return _compare(column, op, value)

    # -- page tokens ----------------------------------------------------------------------

    def _cursor(
        self, token: str, fingerprint: str, order: tuple[tuple[Field, bool], ...]
    ) -> tuple[Any, ...]:
        try:
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            cursor, same_query = data["a"], data["q"] == fingerprint
        except (ValueError, KeyError, TypeError, RecursionError):
            raise InvalidArgument("page_token", "malformed page token") from None
        if not same_query:
            raise InvalidArgument("page_token", "page token belongs to a different query")
        # The fingerprint is not a signature: the client can keep it and change the values,
        # so each must still be one the order's column can hold before it reaches SQL.
        if not isinstance(cursor, list) or len(cursor) != len(order):
            raise InvalidArgument("page_token", _NOT_THIS_LISTING)
        try:
            return tuple(_decode(f, v) for (f, _), v in zip(order, cursor, strict=True))
        except (ValueError, OverflowError):
            raise InvalidArgument("page_token", _NOT_THIS_LISTING) from None


def _value(name: str, found: Field, raw: str, quoted: bool) -> Any:
    """The stored form of a filter value, or InvalidArgument naming what was expected."""
    wrong = InvalidArgument("filter", f"{name} needs {found.kind.value}, got {raw!r}")
    if found.kind is Kind.TEXT:
        return raw
    if found.kind is Kind.ENUM:
        if raw not in found.values:
            names = ", ".join(found.values)
            raise InvalidArgument("filter", f"{name} must be one of {names}, got {raw!r}")
        return found.values[raw]
    if found.kind is Kind.NUMBER:
        if quoted or not _INTEGER.fullmatch(raw):
            raise wrong
        number_ = int(raw)
        if not _INT64_MIN <= number_ <= _INT64_MAX:
            raise InvalidArgument("filter", f"{name}: {raw} is outside the 64-bit integer range")
        return number_
    if found.kind is Kind.FLAG:
        if quoted or raw not in ("true", "false"):
            raise wrong
        return raw == "true"
    try:
        moment = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise wrong from None
    if moment.tzinfo is None:
        raise InvalidArgument("filter", f"{name} needs a time zone (Z or +hh:mm), got {raw!r}")
    try:
        moment = moment.astimezone(dt.UTC)  # "0001-01-01T00:00:00+14:00" is in the year 0
    except OverflowError:
        raise InvalidArgument(
            "filter", f"{name}: {raw!r} is outside the years 1 to 9999 in UTC"
        ) from None
    return moment.timestamp() if found.epoch else moment


def _compare(column: ColumnElement[Any], op: str, value: Any) -> ColumnElement[bool]:
    return _OPERATORS[op](column, value)


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        # A column that drops the zone (SQLite's DateTime) hands back UTC without one.
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    return value


def _decode(found: Field, value: Any) -> Any:
    """A cursor value back in the column's Python type; ValueError (or OverflowError) when
    the column could not hold it, so that no row can have given it."""
    if found.kind is Kind.TIME and not found.epoch:
        if not isinstance(value, str):
            raise ValueError("time")
        moment = dt.datetime.fromisoformat(value)
        if moment.tzinfo is None:  # UtcDateTime refuses to bind a naive time
            raise ValueError("naive time")
        return moment.astimezone(dt.UTC)
    stored = _python_type(found)
    if stored is bool:
        if not isinstance(value, bool):
            raise ValueError("flag")
        return value
    if isinstance(value, bool):  # JSON true is an int to Python, and no column's number
        raise ValueError("flag")
    if stored is int or stored is float or found.kind is Kind.TIME:
        if isinstance(value, int):
            if not _INT64_MIN <= value <= _INT64_MAX:  # the driver cannot bind it
                raise ValueError("integer")
        elif not isinstance(value, float) or stored is int or not math.isfinite(value):
            raise ValueError("number")  # also JSON's NaN and Infinity, or 1e999
        if found.kind is Kind.TIME and not _EPOCH_RANGE[0] <= value <= _EPOCH_RANGE[1]:
            raise ValueError("time")
        return float(value) if stored is float else value  # asyncpg binds FLOAT from float
    if not isinstance(value, str):
        raise ValueError("text")
    value.encode()  # UnicodeEncodeError (a ValueError) for a lone surrogate such as "\udcff"
    if "\x00" in value:  # no stored text holds one (requests with one are refused), and
        raise ValueError("text")  # PostgreSQL fails on binding it
    return value


def _python_type(found: Field) -> type[Any]:
    """What the field's column holds in Python: its SQL type's, else the kind's (a Field's
    kind says how filters write it, and the unique key is a ``text`` field over whatever
    type the key has, an integer for some)."""
    try:
        stored: type[Any] = found.column.type.python_type
    except NotImplementedError:
        stored = object
    if stored in (bool, int, float, str):
        return stored
    return {Kind.NUMBER: int, Kind.FLAG: bool}.get(found.kind, str)
