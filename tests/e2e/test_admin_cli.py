"""``alea usage`` and ``alea admin`` against the whole mesh (processes, Envoy) on SQLite and
PostgreSQL; and tampering with the running admin's database — an entry edited, the newest
entries removed with the head rewound, an entry deleted from the middle — found by
``alea admin verify`` (exit status 3) at the exact entry.

The commands run in this process (``services.cli.main.main``, what the ``alea`` script
calls), which spares each the CLI's start-up; one runs as its own process, to see the
exit status a shell sees."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import time
from collections.abc import Callable

import grpc
import pytest
import sqlalchemy as sa
from alea.access.v1 import access_pb2
from alea.admin.v1 import admin_pb2, admin_pb2_grpc
from alea.identity.v1 import identity_pb2, identity_pb2_grpc
from sqlalchemy.ext.asyncio import create_async_engine

from services.cli.main import main
from services.cli.mesh_procs import implemented_services
from tests.e2e.conftest import Account, register
from tests.e2e.test_simulation_cli import alea
from tests.engine import models
from tests.support.mesh import Mesh

pytestmark = pytest.mark.integration
Cli = Callable[..., tuple[int, str]]


@pytest.fixture
def cli(mesh: Mesh, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """``alea ARGS... --edge <the mesh's>``: its exit status and what it printed."""
    monkeypatch.setenv("ALEA_HOME", str(mesh.layout.home))

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        status = main([*args, "--edge", mesh.edge_address])
        printed = capsys.readouterr()
        return status, printed.out + printed.err

    return run


def test_usage_prints_the_month_plots_it_and_saves_the_report(
    cli: Cli, identity: identity_pb2_grpc.IdentityServiceStub, tmp_path
) -> None:
    account = register(identity, "cli-usage")
    token = ("--token", account.token)
    workbook = models.save(models.small(), tmp_path, "small")
    status, _ = cli("simulate", str(workbook), "--trials", "1000", "--seed", "1", "--watch", *token)
    assert status == 0
    png, report = tmp_path / "usage.png", tmp_path / "report.csv"
    wanted = ("--per-user", "--plot", str(png), "--report", str(report), *token)
    deadline = time.monotonic() + 30  # usage comes from the simulation's events
    while True:
        status, printed = cli("usage", *wanted)
        assert status == 0, printed
        if "1,000.00  trials run" in printed or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert re.search(r"^\s+1,000\.00  trials charged$", printed, re.MULTILINE), printed
    assert re.search(r"^\s+1\.00  simulations\n\s+1\.00    succeeded$", printed, re.MULTILINE)
    assert re.search(r"^\s+1,000\.00  trials run\n\s+1,000\.00    on cpu$", printed, re.MULTILINE)
    assert f"user {account.user_id}:" in printed
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader(io.StringIO(report.read_text())))
    totals = {(r["user_id"], r["metric"]): float(r["value"]) for r in rows}
    assert totals[("", "TRIALS")] == totals[(account.user_id, "TRIALS")] == 1000
    assert {r["tenant_id"] for r in rows} == {account.tenant_id}
    status, empty = cli("usage", "--month", "2001-01", *token)
    assert status == 0 and "usage 2001-01" in empty
    assert re.search(r"^\s+0\.00  trials charged$", empty, re.MULTILINE), empty
    with pytest.raises(SystemExit) as refused:
        cli("usage", "--month", "2026-13", *token)
    assert refused.value.code == 2


def edit_admin_database(mesh: Mesh, *statements: str, **params: object) -> None:
    """Run ``statements`` on the running admin's own database, as someone with access to it."""
    template = mesh.layout.database_url_template
    url = (
        template.format(service="admin")
        if template
        else f"sqlite+aiosqlite:///{mesh.layout.home / 'data' / 'admin.db'}"
    )

    async def run() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                for statement in statements:
                    await connection.execute(sa.text(statement), params)
        finally:
            await engine.dispose()

    asyncio.run(run())


def entries_of(admin, operator: Account, tenant_id: str, count: int) -> None:
    """Wait until ``count`` entries of ``tenant_id``'s log arrived (off the request path)."""
    request = admin_pb2.ListAuditEventsRequest(tenant_id=tenant_id, page_size=100)
    deadline = time.monotonic() + 30
    while True:
        page = admin.ListAuditEvents(request, metadata=operator.metadata, timeout=30)
        if len(page.audit_events) >= count:
            assert len(page.audit_events) == count
            return
        assert time.monotonic() < deadline, f"{len(page.audit_events)} of {count} entries"
        time.sleep(0.3)


def test_admin_commands_and_tampering_found_by_verify(
    mesh: Mesh,
    cli: Cli,
    edge: grpc.Channel,
    identity: identity_pb2_grpc.IdentityServiceStub,
    operator: Account,
    tmp_path,
) -> None:
    """The tenant's own calls write its log; the operator reads, signs and verifies it
    (their calls go to their own tenant's log), so the log holds still while tampered."""
    account = register(identity, "cli-admin")  # entry 1
    for n in range(5):  # entries 2..6
        identity.CreateApiKey(
            identity_pb2.CreateApiKeyRequest(display_name=f"k{n}", role=access_pb2.ROLE_VIEWER),
            metadata=account.metadata,
            timeout=30,
        )
    admin = admin_pb2_grpc.AdminServiceStub(edge)
    entries_of(admin, operator, account.tenant_id, 6)
    tenant = ("--tenant", account.tenant_id, "--token", operator.token)

    status, overview = cli("admin", "overview", "--token", account.token)
    assert status == 0, overview
    for name in implemented_services():
        assert re.search(rf"^{name}\s+SERVING\s", overview, re.MULTILINE), overview
    assert re.search(r"^scope:\s+tenant$", overview, re.MULTILINE)
    assert re.search(r"^audit log:\s+6 entries$", overview, re.MULTILINE)
    _, platform = cli("admin", "overview", "--token", operator.token)
    assert re.search(r"^scope:\s+platform$", platform, re.MULTILINE), platform

    status, audit = cli("admin", "audit", *tenant)
    assert status == 0, audit
    lines = audit.splitlines()
    assert [int(line.split()[0]) for line in lines] == [1, 2, 3, 4, 5, 6]
    assert "Register" in lines[0] and all("CreateApiKey" in line for line in lines[1:])
    assert all(account.user_id in line for line in lines)

    status, signed = cli("admin", "checkpoint", *tenant)
    assert status == 0, signed
    copy = tmp_path / "checkpoint.json"
    copy.write_text(signed)
    assert json.loads(signed)["sequence"] == "6"
    status, verified = cli("admin", "verify", "--checkpoint", str(copy), *tenant)
    assert status == 0, verified
    assert "chain valid: 6 entries checked, against checkpoint 6" in verified

    def verify() -> admin_pb2.VerifyAuditChainResponse:
        request = admin_pb2.VerifyAuditChainRequest(tenant_id=account.tenant_id)
        return admin.VerifyAuditChain(request, metadata=operator.metadata, timeout=60)

    where = "WHERE tenant_id = :t AND sequence"
    # An entry's content edited: found at that entry (exit status 3); put back, valid again.
    edit_admin_database(mesh, f"UPDATE audit_events SET outcome = 'X' {where} = 3", t=tenant[1])
    edited = alea(mesh, "admin", "verify", *tenant)
    assert edited.returncode == 3, edited.stdout + edited.stderr
    assert "TAMPERED at entry 3: entry 3: content does not match its hash" in edited.stdout
    edit_admin_database(mesh, f"UPDATE audit_events SET outcome = 'OK' {where} = 3", t=tenant[1])
    assert verify().valid
    # The newest entries removed and the head rewound to match: only the checkpoint tells.
    edit_admin_database(
        mesh,
        f"DELETE FROM audit_events {where} > 4",
        f"UPDATE audit_heads SET sequence = 4, hash = "
        f"(SELECT hash FROM audit_events {where} = 4) WHERE tenant_id = :t",
        t=tenant[1],
    )
    truncated = verify()
    assert (truncated.valid, truncated.first_invalid_sequence) == (False, 5)
    assert "checkpoint 6" in truncated.reason and "removed" in truncated.reason
    # An entry deleted from the middle: found at the missing entry, against the kept copy.
    edit_admin_database(mesh, f"DELETE FROM audit_events {where} = 2", t=tenant[1])
    status, deleted = cli("admin", "verify", "--checkpoint", str(copy), *tenant)
    assert status == 3, deleted
    assert "TAMPERED at entry 2: entry 2 is missing" in deleted
