"""Administration end to end through the edge: disabling a user stops their tokens and API
keys at their next call to any service, a role change applies at once; settings change
behaviour without a restart; the overview of operators and of tenant admins."""

from __future__ import annotations

import time

import grpc
import pytest
from alea.access.v1 import access_pb2
from alea.admin.v1 import admin_pb2, admin_pb2_grpc
from alea.files.v1 import files_pb2, files_pb2_grpc
from alea.identity.v1 import identity_pb2, identity_pb2_grpc
from alea.simulation.v1 import simulation_pb2, simulation_pb2_grpc
from google.protobuf import struct_pb2

from tests.e2e.conftest import Account, Tenants, add_user, register, small_model
from tests.e2e.test_simulation import workbook_bytes
from tests.engine import models

pytestmark = pytest.mark.integration
POLL_BOUND = 6.0  # services poll settings every 2 s; a change must hold within 5 s


@pytest.fixture(scope="module")
def admin(edge: grpc.Channel) -> admin_pb2_grpc.AdminServiceStub:
    return admin_pb2_grpc.AdminServiceStub(edge)


def value(python: object) -> struct_pb2.Value:
    holder = struct_pb2.Struct()
    holder.update({"v": python})
    return holder.fields["v"]


def code(call, request, metadata) -> grpc.StatusCode:
    try:
        result = call(request, metadata=metadata, timeout=30)
        if hasattr(result, "__iter__") and not hasattr(result, "ListFields"):
            list(result)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_a_disabled_user_is_stopped_at_the_next_call(edge: grpc.Channel, admin) -> None:
    ids = identity_pb2_grpc.IdentityServiceStub(edge)
    sims = simulation_pb2_grpc.SimulationServiceStub(edge)
    files = files_pb2_grpc.FilesServiceStub(edge)
    owner = register(ids, "disabler")
    user, token = add_user(ids, owner, access_pb2.ROLE_ANALYST)
    key = ids.CreateApiKey(
        identity_pb2.CreateApiKeyRequest(display_name="k", role=access_pb2.ROLE_ANALYST),
        metadata=(("authorization", f"Bearer {token.access_token}"),),
    ).secret
    as_token = (("authorization", f"Bearer {token.access_token}"),)
    as_key = (("x-api-key", key),)
    calls = [
        (sims.ListModels, simulation_pb2.ListModelsRequest()),
        (files.ListFiles, files_pb2.ListFilesRequest()),
        (ids.GetUser, identity_pb2.GetUserRequest(user_id=user.id)),
    ]
    for call, request in calls:  # warm every service's caches with the user still active
        for credentials in (as_token, as_key):
            assert code(call, request, credentials) == grpc.StatusCode.OK

    disable = admin_pb2.DisableUserRequest(user_id=user.id, reason="left the company")
    disabled = admin.DisableUser(disable, metadata=owner.metadata, timeout=30)
    assert disabled.disabled
    for call, request in calls:
        for credentials in (as_token, as_key):
            assert code(call, request, credentials) == grpc.StatusCode.UNAUTHENTICATED
    refresh = identity_pb2.RefreshRequest(refresh_token=token.refresh_token)
    assert code(ids.Refresh, refresh, ()) == grpc.StatusCode.UNAUTHENTICATED

    enable = admin_pb2.EnableUserRequest(user_id=user.id, reason="came back")
    assert not admin.EnableUser(enable, metadata=owner.metadata, timeout=30).disabled
    for call, request in calls:
        assert code(call, request, as_key) == grpc.StatusCode.OK

    with pytest.raises(grpc.RpcError) as self_disable:
        admin.DisableUser(
            admin_pb2.DisableUserRequest(user_id=owner.user_id, reason="oops"),
            metadata=owner.metadata,
        )
    assert self_disable.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_a_role_change_applies_at_the_next_call(edge: grpc.Channel, admin) -> None:
    ids = identity_pb2_grpc.IdentityServiceStub(edge)
    sims = simulation_pb2_grpc.SimulationServiceStub(edge)
    owner = register(ids, "demoter")
    user, token = add_user(ids, owner, access_pb2.ROLE_ANALYST)
    as_user = (("authorization", f"Bearer {token.access_token}"),)
    create = simulation_pb2.CreateModelRequest(
        display_name="m", workbook=workbook_bytes(models.small())
    )
    assert code(sims.CreateModel, create, as_user) == grpc.StatusCode.OK
    change = admin_pb2.ChangeUserRoleRequest(
        user_id=user.id, role=access_pb2.ROLE_VIEWER, reason="read only now"
    )
    assert admin.ChangeUserRole(change, metadata=owner.metadata).role == access_pb2.ROLE_VIEWER
    assert code(sims.CreateModel, create, as_user) == grpc.StatusCode.PERMISSION_DENIED
    assert code(sims.ListModels, simulation_pb2.ListModelsRequest(), as_user) == grpc.StatusCode.OK
    entries = admin.ListAuditEvents(
        admin_pb2.ListAuditEventsRequest(filter='action = "*ChangeUserRole"'),
        metadata=owner.metadata,
    )
    deadline = time.monotonic() + 20
    while not entries.audit_events and time.monotonic() < deadline:
        time.sleep(0.3)
        entries = admin.ListAuditEvents(
            admin_pb2.ListAuditEventsRequest(filter='action = "*ChangeUserRole"'),
            metadata=owner.metadata,
        )
    (entry,) = entries.audit_events
    assert dict(entry.details) == {
        "reason": "read only now",
        "old_role": "analyst",
        "new_role": "viewer",
    }
    assert entry.resource == f"users/{user.id}"


def test_a_tenant_setting_changes_behaviour_without_a_restart(edge: grpc.Channel, admin) -> None:
    """The result cache's lifetime: identical simulations are served from the cache until
    the tenant's admin sets it to 0; then, within the poll bound, they run again."""
    ids = identity_pb2_grpc.IdentityServiceStub(edge)
    sims = simulation_pb2_grpc.SimulationServiceStub(edge)
    owner = register(ids, "cache-setter")
    model = small_model(edge, owner)
    same = simulation_pb2.CreateSimulationRequest(model_id=model.id, trials=2000, seed=11)
    first = sims.CreateSimulation(same, metadata=owner.metadata, timeout=30)
    list(
        sims.WatchSimulation(
            simulation_pb2.WatchSimulationRequest(simulation_id=first.id),
            metadata=owner.metadata,
            timeout=60,
        )
    )
    assert sims.CreateSimulation(same, metadata=owner.metadata, timeout=30).cached

    setting = admin_pb2.Setting(key="simulation.result_cache_ttl_seconds", value=value(0))
    changed = admin.SetSetting(
        admin_pb2.SetSettingRequest(setting=setting, reason="always fresh"),
        metadata=owner.metadata,
    )
    assert changed.value.number_value == 0 and not changed.from_default
    deadline = time.monotonic() + POLL_BOUND
    while sims.CreateSimulation(same, metadata=owner.metadata, timeout=30).cached:
        assert time.monotonic() < deadline, "the new cache lifetime never applied"
        time.sleep(0.5)
    # Another tenant keeps the default.
    history = admin.ListSettingChanges(
        admin_pb2.ListSettingChangesRequest(), metadata=owner.metadata
    )
    (change,) = history.changes
    assert (change.new_value.number_value, change.HasField("old_value")) == (0, False)
    assert change.reason == "always fresh" and change.actor == owner.user_id


def test_a_platform_setting_is_the_operators_and_applies_everywhere(
    edge: grpc.Channel, admin, operator: Account, tenants: Tenants
) -> None:
    """The advisory rate every response carries (``ratelimit-policy``) follows the
    operator's setting in every service, without a restart."""
    ids = identity_pb2_grpc.IdentityServiceStub(edge)
    sims = simulation_pb2_grpc.SimulationServiceStub(edge)
    setting = admin_pb2.Setting(key="edge.rate_limit_per_second", value=value(123))
    with pytest.raises(grpc.RpcError) as denied:
        admin.SetSetting(admin_pb2.SetSettingRequest(setting=setting), metadata=tenants.a.metadata)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED

    def policies() -> set[str]:
        found = set()
        for call, request in (
            (ids.GetUser, identity_pb2.GetUserRequest(user_id=tenants.a.user_id)),
            (sims.ListModels, simulation_pb2.ListModelsRequest()),
        ):
            _, rpc = call.with_call(request, metadata=tenants.a.metadata, timeout=30)
            found |= {v for k, v in rpc.trailing_metadata() if k == "ratelimit-policy"}
        return found

    admin.SetSetting(admin_pb2.SetSettingRequest(setting=setting), metadata=operator.metadata)
    try:
        deadline = time.monotonic() + POLL_BOUND
        while policies() != {"123;w=1"}:
            assert time.monotonic() < deadline, policies()
            time.sleep(0.5)
    finally:
        restore = admin_pb2.Setting(key="edge.rate_limit_per_second", value=value(1000))
        admin.SetSetting(admin_pb2.SetSettingRequest(setting=restore), metadata=operator.metadata)
    bad = admin_pb2.Setting(key="edge.rate_limit_per_second", value=value("fast"))
    with pytest.raises(grpc.RpcError) as refused:
        admin.SetSetting(admin_pb2.SetSettingRequest(setting=bad), metadata=operator.metadata)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "setting.value" in refused.value.details()


def test_the_overview_shows_every_service(admin, operator: Account, tenants: Tenants) -> None:
    platform = admin.GetSystemOverview(
        admin_pb2.GetSystemOverviewRequest(), metadata=operator.metadata, timeout=30
    )
    assert platform.platform
    assert {s.name for s in platform.services} == {
        "identity",
        "files",
        "simulation",
        "notification",
        "admin",
        "analytics",
    }
    assert {s.status for s in platform.services} == {admin_pb2.ServiceHealth.STATUS_SERVING}
    assert all(s.version and s.instance for s in platform.services)
    assert platform.workers_cpu + platform.workers_gpu >= 1 and platform.users >= 3
    assert platform.audit_events > 0
    tenant = admin.GetSystemOverview(
        admin_pb2.GetSystemOverviewRequest(), metadata=tenants.a.metadata, timeout=30
    )
    assert not tenant.platform and tenant.users == 2  # tenant A: its admin and a viewer
    assert tenant.storage_quota_bytes == 1 << 30
    assert tenant.audit_events < platform.audit_events


def test_a_tier_quota_changes_behaviour_without_a_restart(
    edge: grpc.Channel, admin, operator: Account
) -> None:
    """Identity reads the free tier's limits from the platform settings on every quota
    answer and reservation: a lowered limit refuses the next larger simulation."""
    ids = identity_pb2_grpc.IdentityServiceStub(edge)
    sims = simulation_pb2_grpc.SimulationServiceStub(edge)
    owner = register(ids, "quota")
    model = small_model(edge, owner)
    key = "quota.free.trials_per_simulation"
    lowered = admin_pb2.Setting(key=key, value=value(5000))
    admin.SetSetting(admin_pb2.SetSettingRequest(setting=lowered), metadata=operator.metadata)
    try:
        deadline = time.monotonic() + POLL_BOUND
        while (
            ids.GetQuota(
                identity_pb2.GetQuotaRequest(), metadata=owner.metadata
            ).trials_per_simulation
            != 5000
        ):
            assert time.monotonic() < deadline, "the lowered quota never applied"
            time.sleep(0.5)
        big = simulation_pb2.CreateSimulationRequest(model_id=model.id, trials=6000, seed=1)
        with pytest.raises(grpc.RpcError) as refused:
            sims.CreateSimulation(big, metadata=owner.metadata, timeout=30)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "5000" in refused.value.details()
    finally:
        default = admin_pb2.Setting(key=key, value=value(1_000_000))
        admin.SetSetting(admin_pb2.SetSettingRequest(setting=default), metadata=operator.metadata)
    deadline = time.monotonic() + POLL_BOUND
    while (
        ids.GetQuota(identity_pb2.GetQuotaRequest(), metadata=owner.metadata).trials_per_simulation
        != 1_000_000
    ):
        assert time.monotonic() < deadline, "the restored quota never applied"
        time.sleep(0.5)
