"""Settings: typed and ranged on Set, scoped (platform settings are the operators', tenant
settings each tenant's own), every change kept with its old value, and the version that
services poll."""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from google.protobuf import json_format, struct_pb2

from services.admin import convert
from services.admin.app import MIGRATIONS
from services.admin.settings import SettingValues
from services.admin.store import SettingsStore
from services.runtime.context import Principal
from services.runtime.db import Database
from services.runtime.errors import InvalidArgument, NotFound, PermissionDenied
from services.runtime.listing import ListRequest
from services.runtime.platform_settings import (
    CACHE_TTL,
    RATE_LIMIT,
    SCHEMA,
    WEBHOOK_RETRY_SCHEDULE,
)

TENANT, OTHER = str(uuid.uuid4()), str(uuid.uuid4())
ADMIN = Principal(user_id="admin-1", tenant_id=TENANT, role="admin")
OPERATOR = Principal(user_id="op-1", tenant_id=OTHER, role="admin", platform=True)


@pytest.fixture
async def values(tmp_path: Path) -> AsyncIterator[SettingValues]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/admin.db", MIGRATIONS)
    await db.open()
    yield SettingValues(SettingsStore(db))
    await db.close()


async def test_a_tenant_setting_is_per_tenant_with_history(values: SettingValues) -> None:
    assert (await values.get(ADMIN, CACHE_TTL, "")).row is None
    await values.set(ADMIN, CACHE_TTL, 60, "", "shorter")
    await values.set(ADMIN, CACHE_TTL, 0, "", "off")
    mine = await values.get(ADMIN, CACHE_TTL, "")
    assert (mine.value, mine.row.updater_id if mine.row else "") == (0, "admin-1")
    assert (await values.get(OPERATOR, CACHE_TTL, "")).value == SCHEMA[CACHE_TTL].default
    changes = (await values.changes(ADMIN, "", ListRequest())).items
    assert [(c.old_value, c.new_value, c.reason) for c in changes] == [
        (60, 0, "off"),
        (None, 60, "shorter"),
    ]
    assert (await values.changes(OPERATOR, "", ListRequest())).items == []


async def test_platform_settings_belong_to_operators(values: SettingValues) -> None:
    with pytest.raises(PermissionDenied):
        await values.set(ADMIN, RATE_LIMIT, 10, "", "")
    await values.set(OPERATOR, RATE_LIMIT, 10, "", "load test")
    assert (await values.get(ADMIN, RATE_LIMIT, "")).value == 10  # every admin sees it
    listed = {v.spec.key: v for v in (await values.page(ADMIN, "", ListRequest())).items}
    assert listed[RATE_LIMIT].value == 10 and len(listed) == len(SCHEMA)
    assert [c.key for c in (await values.changes(ADMIN, "", ListRequest())).items] == [RATE_LIMIT]


async def test_other_tenants_are_out_of_reach_but_for_operators(values: SettingValues) -> None:
    with pytest.raises(NotFound):
        await values.set(ADMIN, CACHE_TTL, 1, OTHER, "")
    with pytest.raises(NotFound):
        await values.get(ADMIN, CACHE_TTL, OTHER)
    await values.set(OPERATOR, CACHE_TTL, 5, TENANT, "support")
    assert (await values.get(ADMIN, CACHE_TTL, "")).value == 5


async def test_bad_keys_and_values_name_the_field(values: SettingValues) -> None:
    with pytest.raises(InvalidArgument) as unknown:
        await values.set(ADMIN, "simulation.nope", 1, "", "")
    assert unknown.value.violations[0][0] == "setting.key"
    with pytest.raises(InvalidArgument) as bad:
        await values.set(ADMIN, CACHE_TTL, "soon", "", "")
    assert bad.value.violations[0][0] == "setting.value"
    with pytest.raises(NotFound):
        await values.get(ADMIN, "simulation.nope", "")


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
async def test_a_number_json_cannot_write_names_the_value(
    values: SettingValues, number: float
) -> None:
    # SetSetting's value as the servicer reads it: json_format raised ValueError ("Fail to
    # serialize NaN for Value.number_value"), an INTERNAL, before the setting's check.
    scalar = struct_pb2.Value(number_value=number)
    listed = struct_pb2.Value(
        list_value=struct_pb2.ListValue(values=[struct_pb2.Value(number_value=1), scalar])
    )
    for principal, key, value in (
        (ADMIN, CACHE_TTL, scalar),
        (OPERATOR, WEBHOOK_RETRY_SCHEDULE, listed),
    ):
        with pytest.raises(InvalidArgument) as refused:
            await values.set(principal, key, convert.value(value), "", "")
        assert refused.value.violations == [("setting.value", f"{key} takes a finite number")]
    assert (await values.changes(ADMIN, "", ListRequest())).items == []


def test_values_read_as_json_does_and_keep_numbers_json_cannot_write() -> None:
    struct = struct_pb2.Struct()
    struct.update({"a": [1, "x", True, None, {"b": 2.5}]})
    nested = struct_pb2.Value(struct_value=struct)
    assert convert.value(nested) == json_format.MessageToDict(nested)
    assert convert.value(struct_pb2.Value()) is None
    assert math.isnan(convert.value(struct_pb2.Value(number_value=math.nan)))
    assert convert.value(struct_pb2.Value(number_value=-math.inf)) == -math.inf


async def test_setting_changes_page(values: SettingValues) -> None:
    # Their key is an integer id: the second page's token was refused as malformed.
    for seconds in range(1, 6):
        await values.set(ADMIN, CACHE_TTL, seconds, "", "")
    pages: list[list[object]] = []
    token = ""
    while not pages or token:
        page = await values.changes(ADMIN, "", ListRequest(page_size=2, page_token=token))
        pages.append([change.new_value for change in page.items])
        token = page.next_page_token
    assert pages == [[5, 4], [3, 2], [1]]


async def test_lists_filter_and_page(values: SettingValues) -> None:
    await values.set(ADMIN, CACHE_TTL, 1, "", "")
    quotas = await values.page(ADMIN, "", ListRequest(filter='key = "quota.*"'))
    assert all(v.spec.key.startswith("quota.") for v in quotas.items) and len(quotas.items) == 9
    changed = await values.page(ADMIN, "", ListRequest(filter="from_default = false"))
    assert [v.spec.key for v in changed.items] == [CACHE_TTL]
    first = await values.page(ADMIN, "", ListRequest(page_size=4))
    rest = await values.page(
        ADMIN, "", ListRequest(page_size=100, page_token=first.next_page_token)
    )
    assert len(first.items) + len(rest.items) == len(SCHEMA) and rest.next_page_token == ""
    for bad in ('value = "1"', "key ~ x", "from_default = maybe"):
        with pytest.raises(InvalidArgument):
            await values.page(ADMIN, "", ListRequest(filter=bad))


async def test_the_version_grows_with_each_change(values: SettingValues) -> None:
    assert await values.effective(0) == (0, True, [])
    await values.set(ADMIN, CACHE_TTL, 1, "", "")
    await values.set(OPERATOR, RATE_LIMIT, 7, "", "")
    version, unchanged, rows = await values.effective(0)
    assert (version, unchanged) == (2, False)
    assert {(r.tenant_id, r.key, r.value) for r in rows} == {
        (TENANT, CACHE_TTL, 1),
        ("", RATE_LIMIT, 7),
    }
    assert await values.effective(2) == (2, True, [])
