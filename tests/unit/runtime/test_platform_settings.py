"""The settings schema refuses what does not fit, naming the field; live values follow
admin's answers and fall back to the schema's defaults."""

from __future__ import annotations

import math

import pytest
from alea.admin.v1 import admin_pb2
from google.protobuf import struct_pb2

from services.runtime.errors import InvalidArgument
from services.runtime.platform_settings import (
    CACHE_TTL,
    RATE_LIMIT,
    SCHEMA,
    WEBHOOK_RETRY_SCHEDULE,
    LiveSettings,
)


def test_every_setting_is_documented_with_a_valid_default() -> None:
    for key, spec in SCHEMA.items():
        assert spec.key == key and spec.description.endswith(".") and spec.unit
        assert (
            spec.check(list(spec.default) if isinstance(spec.default, tuple) else spec.default)
            == spec.default
        )


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (RATE_LIMIT, 0, "at least 1"),
        (RATE_LIMIT, 1.5, "whole number"),
        (RATE_LIMIT, True, "takes a number"),
        (RATE_LIMIT, "100", "takes a number"),
        (RATE_LIMIT, 2_000_000, "at most 1000000"),
        (CACHE_TTL, -1, "at least 0"),
        (CACHE_TTL, math.inf, "finite"),
        ("quota.free.trials_per_month", 2**60, "whole number"),
        (WEBHOOK_RETRY_SCHEDULE, [], "list of 1 to 50"),
        (WEBHOOK_RETRY_SCHEDULE, 5, "list of 1 to 50"),
        (WEBHOOK_RETRY_SCHEDULE, [1, -2], "at least 0"),
        (WEBHOOK_RETRY_SCHEDULE, [1, "x"], "takes a number"),
    ],
)
def test_a_value_that_does_not_fit_is_refused(key: str, value: object, reason: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        SCHEMA[key].check(value)
    field, message = refused.value.violations[0]
    assert field == "setting.value" and reason in message and key in message


def test_values_come_back_in_their_type() -> None:
    assert SCHEMA[RATE_LIMIT].check(250.0) == 250 and isinstance(
        SCHEMA[RATE_LIMIT].check(250.0), int
    )
    assert SCHEMA[WEBHOOK_RETRY_SCHEDULE].check([0, 1.5]) == (0, 1.5)


def _value(python: object) -> struct_pb2.Value:
    holder = struct_pb2.Struct()
    holder.update({"v": python})
    return holder.fields["v"]


async def test_live_settings_follow_admin_and_keep_defaults_meanwhile() -> None:
    answers = [
        admin_pb2.EffectiveSettings(
            version=3,
            values=[
                admin_pb2.SettingValue(key=RATE_LIMIT, value=_value(50)),
                admin_pb2.SettingValue(key=CACHE_TTL, tenant_id="t-1", value=_value(0)),
                admin_pb2.SettingValue(key="some.future_setting", value=_value(1)),
                admin_pb2.SettingValue(key=RATE_LIMIT + "x", value=_value("bad")),
            ],
        ),
        admin_pb2.EffectiveSettings(version=3, unchanged=True),
    ]
    asked: list[int] = []

    async def source(known: int) -> admin_pb2.EffectiveSettings:
        asked.append(known)
        return answers.pop(0)

    live = LiveSettings(source)
    assert live.get(RATE_LIMIT) == 1000 and live.get(CACHE_TTL, "t-1") == 86_400
    assert await live.refresh()
    assert live.get(RATE_LIMIT) == 50
    assert live.get(CACHE_TTL, "t-1") == 0 and live.get(CACHE_TTL, "t-2") == 86_400
    assert not await live.refresh()
    assert asked == [0, 3] and live.get(RATE_LIMIT) == 50
