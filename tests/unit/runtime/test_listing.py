"""One Listing per resource: filters and orders checked against the declared fields, keyset
page tokens that survive concurrent inserts, junk refused as INVALID_ARGUMENT naming it."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    select,
)

from services.runtime.errors import InvalidArgument
from services.runtime.listing import (
    MAX_PAGE_SIZE,
    Listing,
    ListRequest,
    enum,
    flag,
    number,
    text,
    timestamp,
)

things = Table(
    "things",
    MetaData(),
    Column("id", String, primary_key=True),
    Column("tenant", String),
    Column("name", String),
    Column("size", Integer),
    Column("hidden", Boolean),
    Column("state", String),
    Column("create_time", DateTime(timezone=True)),
    Column("seen", Float),  # UNIX seconds
)
THINGS = Listing(
    {
        "name": text(things.c.name),
        "size": number(things.c.size),
        "hidden": flag(things.c.hidden),
        "state": enum(things.c.state, {"STATE_ON": "ON", "STATE_OFF": "OFF"}),
        "create_time": timestamp(things.c.create_time),
        "seen_time": timestamp(things.c.seen, epoch=True),
    },
    key=things.c.id,
    default_order="create_time desc",
)
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _row(i: int, **values: object) -> dict[str, object]:
    return {
        "id": f"id-{i:03d}",
        "tenant": "t1",
        "name": f"report-{i}.xlsx" if i % 2 else f"notes_{i}.csv",
        "size": i % 5,
        "hidden": i % 3 == 0,
        "state": "ON" if i % 4 else "OFF",
        "create_time": (T0 + dt.timedelta(hours=i)).replace(tzinfo=None),
        "seen": (T0 + dt.timedelta(hours=i)).timestamp(),
        **values,
    }


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = create_engine("sqlite://")
    things.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(things), [_row(i) for i in range(20)])
    yield engine
    engine.dispose()


def _list(engine: Engine, request: ListRequest, tenant: str = "t1") -> tuple[list[str], str]:
    query = THINGS.query(request, tenant)
    with engine.connect() as connection:
        statement = query.apply(select(things).where(things.c.tenant == tenant))
        items, token = query.page(connection.execute(statement).all())
    return [str(item["id"]) for item in items], token


def _all_pages(engine: Engine, request: ListRequest) -> list[str]:
    ids, token = _list(engine, request)
    while token:
        more, token = _list(
            engine, ListRequest(request.page_size, token, request.filter, request.order_by)
        )
        ids += more
    return ids


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ('name = "report-*"', [i for i in range(20) if i % 2]),
        ("name != *.csv", [i for i in range(20) if i % 2]),
        ('name = "notes_4.csv"', [4]),  # `_` is literal, not a LIKE wildcard
        ("size >= 3 AND hidden = false", [i for i in range(20) if i % 5 >= 3 and i % 3]),
        ('state = "STATE_OFF"', [0, 4, 8, 12, 16]),
        ("state = STATE_OFF AND size != 0", [4, 8, 12, 16]),
        ('create_time < "2026-01-01T03:00:00Z"', [0, 1, 2]),
        ('create_time <= "2026-01-01T05:00:00+02:00"', [0, 1, 2, 3]),  # compared in UTC
        ('seen_time > "2026-01-01T17:00:00Z"', [18, 19]),
        ("hidden = true AND size = 0", [0, 15]),
    ],
)
def test_filters_select_by_the_declared_fields(
    engine: Engine, filter_: str, expected: list[int]
) -> None:
    ids = _all_pages(engine, ListRequest(filter=filter_, order_by="size, create_time"))
    assert sorted(ids) == [f"id-{i:03d}" for i in expected]


@pytest.mark.parametrize(
    ("filter_", "message"),
    [
        ("colour = red", "cannot filter on 'colour'; filterable: create_time, hidden, name,"),
        ("id = 3", "cannot filter on 'id'"),  # the key orders pages but is not a declared field
        ("size = big", "size needs an integer, got 'big'"),
        ('size = "3"', "size needs an integer"),
        ("hidden = yes", "hidden needs true or false"),
        ('state = "RUNNING"', "state must be one of STATE_ON, STATE_OFF, got 'RUNNING'"),
        ("state > STATE_ON", "state takes the operators != =, not >"),
        ("name < b", "name takes the operators != =, not <"),
        ('create_time > "yesterday"', "create_time needs a quoted RFC 3339 time"),
        ('create_time > "2026-01-01T00:00:00"', "create_time needs a time zone"),
        ("size >= 3 OR hidden = true", "cannot parse"),
        ("size", "cannot parse 'size'"),
        ("size = 1; drop table things", "cannot parse"),
        ("size = 1 AND", "cannot parse"),
    ],
)
def test_a_bad_filter_is_invalid_argument_saying_why(filter_: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        THINGS.query(ListRequest(filter=filter_))
    ((field, reason),) = raised.value.violations
    assert field == "filter"
    assert message in reason


ALL = [f"id-{i:03d}" for i in range(20)]


@pytest.mark.parametrize(
    ("within", "past", "message"),
    [
        (
            "size < 9223372036854775807",
            "size > 99999999999999999999999",
            "size: 99999999999999999999999 is outside the 64-bit integer range",
        ),
        (
            "size > -9223372036854775808",
            "size > -9223372036854775809",
            "size: -9223372036854775809 is outside the 64-bit integer range",
        ),
        (
            'create_time > "0001-01-01T00:00:00Z"',
            'create_time > "0001-01-01T00:00:00+14:00"',  # the year 0 in UTC
            "create_time: '0001-01-01T00:00:00+14:00' is outside the years 1 to 9999 in UTC",
        ),
        (
            'create_time < "9999-12-31T23:59:59+14:00"',
            'create_time < "9999-12-31T23:59:59-14:00"',  # the year 10000 in UTC
            "create_time: '9999-12-31T23:59:59-14:00' is outside the years 1 to 9999 in UTC",
        ),
        (
            'seen_time > "0001-01-01T00:00:00Z"',
            'seen_time > "0001-01-01T00:00:00+00:01"',
            "seen_time: '0001-01-01T00:00:00+00:01' is outside the years 1 to 9999 in UTC",
        ),
    ],
)
def test_a_filter_value_no_column_can_hold_is_invalid_argument(
    engine: Engine, within: str, past: str, message: str
) -> None:
    # Past the columns' range the driver (Python int too large to convert to SQLite
    # INTEGER; PostgreSQL's value out of int64 range) or datetime raised: INTERNAL.
    assert _all_pages(engine, ListRequest(filter=within)) == ALL[::-1]
    with pytest.raises(InvalidArgument) as raised:
        _list(engine, ListRequest(filter=past))
    assert raised.value.violations == [("filter", message)]


JUNK_ORDERS = [
    "id; drop table things",
    "name; DELETE FROM things",
    "size desc, ",
    ", size",
    "size descending",
    "size desc asc",
    "size, size",
    "hidden",  # booleans and enums do not sort
    "state desc",
    "colour",
    "1",
    "size -- comment",
    "(select 1)",
    "create_time desc nulls first",
]


@pytest.mark.parametrize("order_by", JUNK_ORDERS)
def test_a_junk_order_by_is_invalid_argument(order_by: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        THINGS.query(ListRequest(order_by=order_by))
    assert raised.value.violations[0][0] == "order_by"


def test_orders_are_total_and_follow_each_direction(engine: Engine) -> None:
    ids = _all_pages(engine, ListRequest(page_size=3, order_by="size desc, name"))
    rows = sorted((_row(i) for i in range(20)), key=lambda r: (-int(r["size"]), r["name"], r["id"]))
    assert ids == [r["id"] for r in rows]
    assert _all_pages(engine, ListRequest(page_size=7)) == [
        f"id-{i:03d}" for i in reversed(range(20))
    ]


def test_pages_stay_put_while_rows_are_inserted(engine: Engine) -> None:
    first, token = _list(engine, ListRequest(page_size=5))
    with engine.begin() as connection:  # newer rows land before the first page
        connection.execute(insert(things), [_row(i) for i in range(100, 103)])
    second, _ = _list(engine, ListRequest(page_size=5, page_token=token))
    assert first == [f"id-{i:03d}" for i in range(19, 14, -1)]
    assert second == [f"id-{i:03d}" for i in range(14, 9, -1)]


def test_the_last_page_has_no_token(engine: Engine) -> None:
    ids, token = _list(engine, ListRequest(page_size=20))
    assert len(ids) == 20 and token == ""
    ids, token = _list(engine, ListRequest(page_size=19))
    assert len(ids) == 19 and token


def test_a_token_belongs_to_its_query(engine: Engine) -> None:
    _, token = _list(engine, ListRequest(page_size=2, filter="size > 0"))
    for other in (
        ListRequest(page_size=2, page_token=token, filter="size > 1"),
        ListRequest(page_size=2, page_token=token, filter="size > 0", order_by="name"),
    ):
        with pytest.raises(InvalidArgument, match="different query"):
            THINGS.query(other, "t1")
    with pytest.raises(InvalidArgument, match="different query"):
        THINGS.query(ListRequest(page_size=2, page_token=token, filter="size > 0"), "t2")
    assert THINGS.query(ListRequest(page_size=9, page_token=token, filter="size > 0"), "t1")


@pytest.mark.parametrize(
    "token", ["x", "!!!", "eyJhIjogMX0", "e30", "eyJhIjpbMSwyXSwicSI6IngifQ", "W10"]
)
def test_a_malformed_token_is_invalid_argument(token: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        THINGS.query(ListRequest(page_token=token))
    assert raised.value.violations[0][0] == "page_token"


@pytest.mark.parametrize("size", [-1, MAX_PAGE_SIZE + 1])
def test_page_size_is_bounded(size: int) -> None:
    with pytest.raises(InvalidArgument) as raised:
        THINGS.query(ListRequest(page_size=size))
    assert raised.value.violations[0][0] == "page_size"


def test_a_wrong_default_order_fails_when_declared() -> None:
    with pytest.raises(InvalidArgument):
        Listing({"size": number(things.c.size)}, key=things.c.id, default_order="colour")


def _forged(token: str, index: int, value: Any) -> str:
    """``token`` with its cursor's value ``index`` replaced, the fingerprint kept."""
    data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    data["a"][index] = value
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("order_by", "index", "value"),
    [  # (order_by, which sort value, the forged value); the key is the last sort value
        ("size", 0, 2**70),
        ("size", 0, -(2**63) - 1),
        ("size", 0, True),
        ("size", 0, 1.5),
        ("", 0, "2026-01-01T00:00:00"),  # naive: UtcDateTime refuses to bind it
        ("", 0, "0001-01-01T00:00:00+14:00"),  # the year 0 in UTC
        ("seen_time", 0, 2**70),
        ("seen_time", 0, 1e300),  # far beyond the year 9999
        ("seen_time", 0, float("nan")),  # JSON's NaN
        ("seen_time", 0, float("-inf")),
        ("seen_time", 0, True),
        ("seen_time", 0, "1767225600"),
        ("name", 0, "\udcff"),  # a lone surrogate: UTF-8 cannot hold it
        ("name", 1, "\ud800"),  # the key
        ("name", 0, "a\x00b"),  # a NUL: PostgreSQL cannot bind it in text
    ],
)
def test_a_forged_cursor_value_is_invalid_argument(
    engine: Engine, order_by: str, index: int, value: Any
) -> None:
    # The fingerprint is kept, so only the values' types and ranges can tell; each of these
    # reached SQL and failed there (OverflowError, ArgumentError, naive datetime,
    # UnicodeEncodeError), or compared a column with a value of another type.
    _, token = _list(engine, ListRequest(page_size=2, order_by=order_by))
    forged = ListRequest(page_size=2, page_token=_forged(token, index, value), order_by=order_by)
    with pytest.raises(InvalidArgument) as raised:
        _list(engine, forged)
    assert raised.value.violations == [("page_token", "not a page token of this listing")]


@pytest.mark.parametrize(
    ("order_by", "within", "expected", "past"),
    [
        ("size", 2**63 - 1, [], 2**63),
        ("size", -(2**63), ALL[:11:5], -(2**63) - 1),
        ("", "0001-01-01T00:00:00+00:00", [], "0001-01-01T00:00:00+00:01"),
        ("", "9999-12-31T23:59:59+14:00", ALL[:16:-1], "9999-12-31T23:59:59-14:00"),
        ("seen_time", -62135596800, ALL[:3], -62135596801),
        ("seen_time", 253402300799.5, [], 253402300801),
    ],
)
def test_cursor_values_at_the_ends_of_a_column_still_page(
    engine: Engine, order_by: str, within: Any, expected: list[str], past: Any
) -> None:
    _, token = _list(engine, ListRequest(page_size=3, order_by=order_by))
    resumed = ListRequest(page_size=3, page_token=_forged(token, 0, within), order_by=order_by)
    assert _list(engine, resumed)[0] == expected
    beyond = ListRequest(page_size=3, page_token=_forged(token, 0, past), order_by=order_by)
    with pytest.raises(InvalidArgument, match="not a page token of this listing"):
        _list(engine, beyond)


others = Table(
    "others",
    MetaData(),
    Column("id", String, primary_key=True),
    Column("name", String),
    Column("size", Integer),
)
OTHERS = Listing(
    {"name": text(others.c.name), "size": number(others.c.size)},
    key=others.c.id,
    default_order="name",
)


def test_a_token_of_another_listing_is_refused(engine: Engine) -> None:
    # The same tenant, filter and order over another resource (a ListUsers token given to
    # ListSimulations): its values would resume a listing whose columns they do not describe.
    request = ListRequest(page_size=2, filter="size > 0", order_by="name")
    _, token = _list(engine, request)
    with pytest.raises(InvalidArgument, match="different query") as raised:
        OTHERS.query(ListRequest(2, token, request.filter, request.order_by), "t1")
    assert raised.value.violations[0][0] == "page_token"


changes = Table(
    "changes",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("key", String),
)
CHANGES = Listing({"key": text(changes.c.key)}, key=changes.c.id, default_order="key")


def test_an_integer_key_pages() -> None:
    # The key is a text field over whatever type the column has: admin's setting changes
    # are keyed by an integer, and their second page was refused as a malformed token.
    engine = create_engine("sqlite://")
    changes.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(changes), [{"id": i, "key": "k"} for i in range(1, 8)])
    pages: list[list[int]] = []
    tokens = [""]
    with engine.connect() as connection:
        while not pages or tokens[-1]:
            query = CHANGES.query(ListRequest(page_size=3, page_token=tokens[-1]))
            items, token = query.page(connection.execute(query.apply(select(changes))).all())
            pages.append([int(item["id"]) for item in items])
            tokens.append(token)
    engine.dispose()
    assert pages == [[1, 2, 3], [4, 5, 6], [7]]
    for forged in ("3", 2**64, 3.5, True):
        with pytest.raises(InvalidArgument, match="not a page token of this listing"):
            CHANGES.query(ListRequest(page_size=3, page_token=_forged(tokens[1], 1, forged)))
