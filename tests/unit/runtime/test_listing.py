"""Page tokens are opaque and bound to their query; filters name the bad field."""

import pytest
from sqlalchemy import Boolean, Column, DateTime, Integer, MetaData, String, Table

from services.runtime.errors import InvalidArgument
from services.runtime.listing import compile_filter, compile_order, page_of

table = Table(
    "things",
    MetaData(),
    Column("name", String),
    Column("size", Integer),
    Column("hidden", Boolean),
    Column("create_time", DateTime(timezone=True)),
)
COLUMNS = {c.name: c for c in table.columns}


def test_page_tokens_continue_the_same_query() -> None:
    first = page_of(2, "", "tenant", "filter")
    token = first.next_token(2)
    assert token
    second = page_of(2, token, "tenant", "filter")
    assert (second.offset, second.size) == (2, 2)
    assert second.next_token(1) == ""


def test_a_token_from_another_query_is_rejected() -> None:
    token = page_of(2, "", "tenant", "a").next_token(2)
    with pytest.raises(InvalidArgument) as raised:
        page_of(2, token, "tenant", "b")
    assert raised.value.violations[0][0] == "page_token"


@pytest.mark.parametrize("token", ["%%%", "e30", "bm90IGpzb24"])
def test_garbage_tokens_are_invalid_arguments(token: str) -> None:
    with pytest.raises(InvalidArgument, match="page_token"):
        page_of(10, token, "q")


def test_filter_compiles_comparisons_joined_by_and() -> None:
    condition = compile_filter('name = "a b" AND size >= 3 AND hidden = false', COLUMNS)
    sql = str(condition.compile(compile_kwargs={"literal_binds": True}))
    assert sql == "things.name = 'a b' AND things.size >= 3 AND things.hidden = false"


def test_filter_translates_enum_spellings() -> None:
    condition = compile_filter('name = "ROLE_ADMIN"', COLUMNS, {"name": {"ROLE_ADMIN": "admin"}})
    assert "'admin'" in str(condition.compile(compile_kwargs={"literal_binds": True}))


@pytest.mark.parametrize("text", ["colour = 1", "name ~ 1", 'create_time > "yesterday"', "name = "])
def test_bad_filters_name_the_filter_field(text: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        compile_filter(text, COLUMNS)
    assert raised.value.violations[0][0] == "filter"


def test_order_by_parses_directions_and_rejects_unknown_fields() -> None:
    clauses = compile_order("size desc, name", COLUMNS)
    assert [str(c) for c in clauses] == ["things.size DESC", "things.name ASC"]
    with pytest.raises(InvalidArgument, match="order_by"):
        compile_order("colour", COLUMNS)
