"""``alea admin ...``: the operator's view of the running mesh, and the demo's audit steps.

``overview`` (services, queue, storage, backlogs), ``audit`` (the newest entries of the
audit log), ``checkpoint`` (sign one now; prints the JSON copy to keep elsewhere),
``verify`` (the chain, against the newest checkpoint or a kept copy: exit status 3 when
tampering is found), ``settings`` / ``set`` / ``history``, and ``disable`` / ``enable`` /
``role`` for users. Connection and credentials as every command (``alea simulate --help``).
"""

from __future__ import annotations

import argparse
import base64
import json
import time
from pathlib import Path
from typing import Any

import grpc
from alea.access.v1 import access_pb2
from alea.admin.v1 import admin_pb2 as pb
from alea.admin.v1 import admin_pb2_grpc
from google.protobuf import json_format, struct_pb2

from services.cli.edge_client import edge_channel
from services.cli.simulate import (
    Command,
    _add_connection,
    _credentials,
    _edge_address,
    _guard,
)
from services.runtime.config import alea_home

__all__ = ["DEMO_AUDIT", "checkpoint_json", "format_entry", "register"]

_HEALTH = {
    pb.ServiceHealth.STATUS_SERVING: "SERVING",
    pb.ServiceHealth.STATUS_NOT_SERVING: "NOT_SERVING",
    pb.ServiceHealth.STATUS_UNREACHABLE: "UNREACHABLE",
}
TAMPERED = 3


def _stub(args: argparse.Namespace) -> tuple[grpc.Channel, admin_pb2_grpc.AdminServiceStub]:
    channel = edge_channel(_edge_address(args), alea_home() / "pki")
    return channel, admin_pb2_grpc.AdminServiceStub(channel)


def _bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return ""


def format_overview(view: pb.SystemOverview) -> str:
    """The overview as a readable block of text."""
    scope = "platform" if view.platform else "tenant"
    header = f"{'service':<14}{'health':<13}{'version':<10}{'uptime':>9}{'rpcs/5m':>9}"
    lines = [f"{header}{'errors':>8}  outbox"]
    for s in view.services:
        pending = ", ".join(f"{k} {v}" for k, v in sorted(s.outbox_pending.items()) if v) or "-"
        lines.append(
            f"{s.name:<14}{_HEALTH.get(s.status, '?'):<13}{s.version or '-':<10}"
            f"{s.uptime_seconds / 60:>8.0f}m{s.recent_requests:>9}"
            f"{f'{s.recent_error_ratio:.1%}' if s.recent_requests else '-':>8}  {pending}"
        )
    lines += [
        "",
        f"scope:        {scope}",
        f"users:        {view.users}",
        f"simulations:  {view.simulations_queued} queued, {view.simulations_running} running",
        f"segments:     {view.segments_queued} queued, {view.segments_running} running, "
        f"oldest waiting {view.oldest_queued_seconds:.1f}s",
        f"workers:      {view.workers_cpu} CPU, {view.workers_gpu} GPU "
        f"({view.gpu_devices} devices)",
        f"storage:      {_bytes(view.storage_used_bytes)}"
        + (f" of {_bytes(view.storage_quota_bytes)}" if view.storage_quota_bytes else ""),
        f"backlogs:     events {view.events_backlog}, audit {view.audit_backlog}, "
        f"webhooks {view.webhook_backlog}",
        f"audit log:    {view.audit_events} entries",
    ]
    return "\n".join(lines)


def format_entry(entry: pb.AuditEvent) -> str:
    """One audit entry on one line."""
    when = entry.event_time.ToJsonString()
    rpc = entry.action.rsplit("/", 1)[-1]
    return (
        f"{entry.sequence:>6}  {when}  {entry.service:<12} {rpc:<22} {entry.outcome:<18} "
        f"{entry.actor[:36]:<36} {entry.resource}"
    )


def checkpoint_json(checkpoint: pb.AuditCheckpoint) -> str:
    """A checkpoint as the JSON ``alea admin verify --checkpoint`` reads back."""
    return json_format.MessageToJson(checkpoint, indent=None)


def cmd_overview(args: argparse.Namespace) -> int:
    channel, stub = _stub(args)
    with channel:
        view = stub.GetSystemOverview(
            pb.GetSystemOverviewRequest(), metadata=_credentials(args, channel), timeout=30
        )
    print(format_overview(view))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    channel, stub = _stub(args)
    with channel:
        request = pb.ListAuditEventsRequest(
            page_size=args.limit, filter=args.filter, tenant_id=args.tenant
        )
        page = stub.ListAuditEvents(request, metadata=_credentials(args, channel), timeout=30)
    for entry in reversed(page.audit_events):
        print(format_entry(entry))
    return 0


def cmd_checkpoint(args: argparse.Namespace) -> int:
    channel, stub = _stub(args)
    with channel:
        request = pb.CreateAuditCheckpointRequest(tenant_id=args.tenant)
        signed = stub.CreateAuditCheckpoint(
            request, metadata=_credentials(args, channel), timeout=30
        )
    print(checkpoint_json(signed))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    request = pb.VerifyAuditChainRequest(tenant_id=args.tenant)
    if args.checkpoint is not None:
        json_format.Parse(args.checkpoint.read_text(), request.checkpoint)
    channel, stub = _stub(args)
    with channel:
        verdict = stub.VerifyAuditChain(request, metadata=_credentials(args, channel), timeout=120)
    against = (
        f"checkpoint {verdict.checkpoint.sequence} (key {verdict.checkpoint.key_id})"
        if verdict.HasField("checkpoint")
        else "no checkpoint yet"
    )
    if verdict.valid:
        print(f"chain valid: {verdict.events_checked} entries checked, against {against}")
        return 0
    print(
        f"TAMPERED at entry {verdict.first_invalid_sequence}: {verdict.reason} "
        f"({verdict.events_checked} entries checked before it, against {against})"
    )
    return TAMPERED


def _value(text: str) -> struct_pb2.Value:
    """A setting value from the command line: JSON, or a bare string."""
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = text
    holder = struct_pb2.Struct()
    holder.update({"value": parsed})
    return holder.fields["value"]


def _shown(value: struct_pb2.Value) -> str:
    return json.dumps(json_format.MessageToDict(value))


def cmd_settings(args: argparse.Namespace) -> int:
    channel, stub = _stub(args)
    with channel:
        request = pb.ListSettingsRequest(tenant_id=args.tenant, filter=args.filter)
        listed = stub.ListSettings(request, metadata=_credentials(args, channel), timeout=30)
    for s in listed.settings:
        scope = pb.SettingScope.Name(s.scope).removeprefix("SETTING_SCOPE_").lower()
        origin = "default" if s.from_default else f"set {s.update_time.ToJsonString()}"
        print(f"{s.key:<46} {_shown(s.value):<24} {s.unit:<12} {scope:<9} {origin}")
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    channel, stub = _stub(args)
    with channel:
        request = pb.SetSettingRequest(
            setting=pb.Setting(key=args.key, value=_value(args.value)),
            tenant_id=args.tenant,
            reason=args.reason,
        )
        done = stub.SetSetting(request, metadata=_credentials(args, channel), timeout=30)
    print(f"{done.key} = {_shown(done.value)}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    channel, stub = _stub(args)
    with channel:
        request = pb.ListSettingChangesRequest(tenant_id=args.tenant, page_size=args.limit)
        page = stub.ListSettingChanges(request, metadata=_credentials(args, channel), timeout=30)
    for c in page.changes:
        old = _shown(c.old_value) if c.HasField("old_value") else "(default)"
        print(
            f"{c.change_time.ToJsonString()}  {c.key}: {old} -> {_shown(c.new_value)}  "
            f"by {c.actor}{f' ({c.reason})' if c.reason else ''}"
        )
    return 0


def cmd_user(args: argparse.Namespace) -> int:
    channel, stub = _stub(args)
    with channel:
        metadata = _credentials(args, channel)
        if args.action == "disable":
            user = stub.DisableUser(
                pb.DisableUserRequest(user_id=args.user_id, reason=args.reason),
                metadata=metadata,
                timeout=30,
            )
        elif args.action == "enable":
            user = stub.EnableUser(
                pb.EnableUserRequest(user_id=args.user_id, reason=args.reason),
                metadata=metadata,
                timeout=30,
            )
        else:
            role = f"ROLE_{args.role.upper()}"  # enum fields take their value names
            user = stub.ChangeUserRole(
                pb.ChangeUserRoleRequest(user_id=args.user_id, role=role, reason=args.reason),
                metadata=metadata,
                timeout=30,
            )
    state = "disabled" if user.disabled else "active"
    print(f"{user.email}: {access_pb2.Role.Name(user.role)}, {state}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``alea admin`` and its subcommands."""
    admin = subparsers.add_parser("admin", help="audit log, settings, overview, users")
    commands = admin.add_subparsers(dest="admin_command", required=True)

    def command(name: str, run: Command, text: str, tenant: bool = True) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=text)
        if tenant:
            parser.add_argument(
                "--tenant",
                default="",
                help="another tenant (platform operators; '-': all/platform)",
            )
        _add_connection(parser)
        parser.set_defaults(func=_guard(run))
        return parser

    command("overview", cmd_overview, "services, queue, storage and backlogs", tenant=False)
    audit = command("audit", cmd_audit, "the newest audit entries")
    audit.add_argument("--limit", type=int, default=20)
    audit.add_argument("--filter", default="", help='e.g. outcome != "OK"')
    command("checkpoint", cmd_checkpoint, "sign a checkpoint now and print it (keep a copy)")
    verify = command("verify", cmd_verify, "verify the audit chain (exit 3 when tampered)")
    verify.add_argument("--checkpoint", type=Path, help="a checkpoint copy kept elsewhere (JSON)")
    settings = command("settings", cmd_settings, "every setting and its value")
    settings.add_argument("--filter", default="", help='e.g. key = "quota.*"')
    set_ = command("set", cmd_set, "change a setting (audited, kept in the history)")
    set_.add_argument("key")
    set_.add_argument("value", help="a JSON value (60, true, [1, 5])")
    set_.add_argument("--reason", default="")
    history = command("history", cmd_history, "the changes of settings, newest first")
    history.add_argument("--limit", type=int, default=20)
    helps = {
        "disable": "disable a user: tokens and API keys stop at their next call",
        "enable": "enable a disabled user again",
        "role": "change a user's role",
    }
    for action, text in helps.items():
        user = command(action, cmd_user, text, tenant=False)
        user.add_argument("user_id")
        if action == "role":
            user.add_argument("role", choices=("viewer", "analyst", "admin"))
        user.add_argument("--reason", required=True)
        user.set_defaults(action=action)


# -- alea demo ----------------------------------------------------------------------------


def demo_audit(demo: Any) -> str:
    """alea demo step: the tenant's audit log as its admin sees it, once the demo's
    simulation is in it (entries arrive within a second or so, off the request path)."""
    stub = admin_pb2_grpc.AdminServiceStub(demo.channel)
    request = pb.ListAuditEventsRequest(page_size=6)
    deadline = time.monotonic() + 15
    while True:
        page = stub.ListAuditEvents(request, metadata=demo.grpc_auth(), timeout=30)
        actions = {e.action.rsplit("/", 1)[-1] for e in page.audit_events}
        if "CreateSimulation" in actions or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    excerpt = "\n".join("        " + format_entry(e) for e in reversed(page.audit_events))
    return f"ListAuditEvents: the newest {len(page.audit_events)} entries\n{excerpt}\n       "


def demo_verify(demo: Any) -> str:
    """alea demo step: sign a checkpoint, then verify the chain against it."""
    stub = admin_pb2_grpc.AdminServiceStub(demo.channel)
    auth = demo.grpc_auth()
    signed = stub.CreateAuditCheckpoint(
        pb.CreateAuditCheckpointRequest(), metadata=auth, timeout=30
    )
    verdict = stub.VerifyAuditChain(pb.VerifyAuditChainRequest(), metadata=auth, timeout=60)
    if not verdict.valid:
        raise OSError(f"audit chain invalid: {verdict.reason}")
    signature = base64.b64encode(signed.signature).decode()[:16]
    return (
        f"VerifyAuditChain: valid, {verdict.events_checked} entries, against checkpoint "
        f"{signed.sequence} signed by key {signed.key_id} ({signature}...)"
    )


DEMO_AUDIT = [("grpc", demo_audit), ("grpc", demo_verify)]
