"""One Listing per resource: filters and orders checked against the declared fields, keyset
page tokens that survive concurrent inserts, junk refused as INVALID_ARGUMENT naming it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

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
