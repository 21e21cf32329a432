"""Who may call what: the mTLS peer table and the ``(alea.access.v1.rule)`` of each RPC.

Two layers, both enforced before any handler runs:

1. :data:`PEERS` — the one table of which mTLS identities (``spiffe://alea/<peer>``)
   may open RPCs on each service at all. Users arrive through ``edge``; services call
   each other directly. The ``client`` certificate (the CLI's, curl's) is for the edge
   only: a service admits it solely when the development switch ``ALEA_DEV_DIRECT_CALLS``
   is on (:func:`admitted_peers`), so nothing bypasses the edge's rate limit and access
   log by default. Every ``rule.peers`` of a service's RPCs is in its row (a contract
   test holds them together).
2. The RPC's ``AccessRule`` read off the service descriptor: ``public`` (no user
   credentials), ``internal`` (service peers only, optionally limited to
   ``rule.peers``), or a least ``role`` for users; ``rule.peers`` on a user RPC names
   services that may call it without user credentials. An admitted service may also call
   a user RPC with the user's own credentials forwarded: the user's role and tenant then
   apply exactly as through the edge (the simulation service reading a user's workbook).

The rule also says what the audit log records of the RPC (``MethodRule.audit_calls``):
by default every call of an RPC that changes something, none of a read (its name starts
with one of :data:`READ_PREFIXES`); refused calls are recorded whatever the rule says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache

from google.protobuf import descriptor_pool

__all__ = [
    "DEV_CLIENT",
    "EDGE",
    "PEERS",
    "READ_PREFIXES",
    "ROLE_NAMES",
    "ROLE_RANK",
    "SERVICES",
    "MethodRule",
    "admitted_peers",
    "method_rule",
    "peer_identity",
]

SERVICES = ("identity", "files", "simulation", "notification", "admin", "analytics")
EDGE = "edge"
DEV_CLIENT = "client"
_ALL = frozenset(SERVICES)

PEERS: dict[str, frozenset[str]] = {
    # identity: every service authenticates API keys and reads quotas through it.
    "identity": _ALL | {EDGE},
    "files": frozenset({EDGE, "simulation", "admin", "analytics"}),
    "simulation": frozenset({EDGE, "admin", "analytics", "notification"}),
    "notification": frozenset({EDGE, "simulation", "files", "admin", "identity"}),
    "admin": _ALL | {EDGE},
    "analytics": _ALL | {EDGE},
}
"""Which mTLS peers may call each service (anything else is PERMISSION_DENIED)."""


def admitted_peers(service: str, direct_client_calls: bool = False) -> frozenset[str]:
    """The mTLS identities ``service`` accepts: its :data:`PEERS` row (the edge alone for a
    service without one), plus ``client`` when direct calls are switched on."""
    admitted = PEERS.get(service, frozenset({EDGE}))
    return admitted | {DEV_CLIENT} if direct_client_calls else admitted


ROLE_RANK = {"viewer": 1, "analyst": 2, "admin": 3}
ROLE_NAMES = {rank: name for name, rank in ROLE_RANK.items()}
"""Role names by ``alea.access.v1.Role`` number."""
READ_PREFIXES = (
    "Get",
    "List",
    "Search",
    "Watch",
    "Verify",
    "Check",
    "Download",
    "Export",
    "Subscribe",
)
"""Method names of reads (AIP standard and custom methods): not audited by default."""
"""Role order, matching ``alea.access.v1.Role`` numbers: viewer < analyst < admin."""

_SPIFFE_PREFIX = "spiffe://alea/"
# Framework services mounted on every server; any admitted peer may call them.
_FRAMEWORK = ("grpc.health.v1.", "grpc.reflection.")


@dataclass(frozen=True)
class MethodRule:
    """The access rule of one RPC, in runtime terms."""

    public: bool = False
    internal: bool = False
    role: str = ""
    peers: frozenset[str] = frozenset()
    framework: bool = False
    audit_calls: bool = False  # record every call, not only refused ones


def peer_identity(auth_context: Mapping[str, Iterable[bytes]]) -> str | None:
    """The ``<peer>`` of the client certificate's ``spiffe://alea/<peer>`` URI SAN, if any."""
    for raw in auth_context.get("x509_subject_alternative_name", []):
        value = raw.decode(errors="replace")
        if value.startswith(_SPIFFE_PREFIX):
            return value.removeprefix(_SPIFFE_PREFIX)
    return None


@cache
def method_rule(full_method: str) -> MethodRule | None:
    """The rule of ``/package.Service/Method``; None when the method declares none.

    Importing the generated ``access_pb2`` registers the extension; the service's own
    ``*_pb2`` must have been imported (it has, since its servicer is mounted).
    """
    from alea.access.v1 import access_pb2

    name = full_method.lstrip("/").replace("/", ".")
    if name.startswith(_FRAMEWORK):
        return MethodRule(framework=True)
    try:
        method = descriptor_pool.Default().FindMethodByName(name)
    except KeyError:
        return None
    options = method.GetOptions()
    # The stubs type extensions generically; the generated descriptor is the right one.
    if not options.HasExtension(access_pb2.rule):  # type: ignore[arg-type]
        return None
    rule: access_pb2.AccessRule = options.Extensions[access_pb2.rule]  # type: ignore[index]
    role = access_pb2.Role.Name(rule.role).removeprefix("ROLE_").lower() if rule.role else ""
    if rule.audit == access_pb2.AUDIT_UNSPECIFIED:
        audit_calls = not method.name.startswith(READ_PREFIXES)
    else:
        audit_calls = rule.audit == access_pb2.AUDIT_ALL
    return MethodRule(rule.public, rule.internal, role, frozenset(rule.peers), False, audit_calls)
