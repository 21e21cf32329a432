"""GetQuota and ReserveTrials: tier limits, month-to-date use, idempotent reservations."""

from __future__ import annotations

import uuid

import grpc
import pytest
from alea.identity.v1 import identity_pb2 as pb
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.integration.identity.conftest import Identity, auth
from tests.integration.identity.test_accounts import code_of

pytestmark = pytest.mark.integration


def reserve(identity: Identity, tenant_id: str, trials: int, request_id: str = "") -> pb.Quota:
    request = pb.ReserveTrialsRequest(
        tenant_id=tenant_id, trials=trials, request_id=request_id or str(uuid.uuid4())
    )
    return identity.stub("simulation").ReserveTrials(request)


def test_quota_of_the_free_tier(identity: Identity) -> None:
    admin = identity.register()
    quota = identity.stub().GetQuota(pb.GetQuotaRequest(), metadata=auth(admin))
    assert (quota.tenant_id, quota.tier) == (admin.tenant.id, pb.TIER_FREE)
    assert (quota.trials_per_month, quota.trials_per_simulation) == (10_000_000, 1_000_000)
    assert quota.storage_bytes == 1 << 30
    assert quota.trials_used_this_month == 0
    assert quota.period_start_time.ToDatetime().day == 1


def test_reservations_count_once_per_request_id(identity: Identity) -> None:
    tenant = identity.register().tenant.id
    request_id = str(uuid.uuid4())
    assert reserve(identity, tenant, 1000, request_id).trials_used_this_month == 1000
    assert reserve(identity, tenant, 1000, request_id).trials_used_this_month == 1000
    assert reserve(identity, tenant, 500).trials_used_this_month == 1500


def test_limits_are_resource_exhausted_with_quota_failure(identity: Identity) -> None:
    tenant = identity.register().tenant.id
    with pytest.raises(grpc.RpcError) as raised:
        reserve(identity, tenant, 1_000_001)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    (detail,) = rpc_status.from_call(raised.value).details
    failure = error_details_pb2.QuotaFailure()
    assert detail.Unpack(failure)
    assert failure.violations[0].quota_id == "trials_per_simulation"
    for _ in range(10):
        reserve(identity, tenant, 1_000_000)
    with pytest.raises(grpc.RpcError) as raised:
        reserve(identity, tenant, 1)
    assert "trials_per_month" in str(rpc_status.from_call(raised.value).details[0].value)


def test_users_see_only_their_own_quota(identity: Identity) -> None:
    a, b = identity.register(), identity.register()
    request = pb.GetQuotaRequest(tenant_id=b.tenant.id)
    assert code_of(identity.stub().GetQuota, request, metadata=auth(a)) == grpc.StatusCode.NOT_FOUND
    assert identity.stub("files").GetQuota(request).tenant_id == b.tenant.id
    with pytest.raises(grpc.RpcError) as raised:
        identity.stub("files").GetQuota(pb.GetQuotaRequest())
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "tenant_id" in raised.value.details()
