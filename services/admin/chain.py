"""The hash chain of an audit log: canonical form, entry hashes, and the check of a range.

Each tenant's log (and the platform's own, tenant ``""``) is a chain. Entry ``n`` has
``previous_hash`` = the hash of entry ``n - 1`` (64 zeros for entry 1) and

    hash = SHA-256( previous_hash + "\\n" + canonical JSON of the entry )

where the canonical JSON holds every stored field but the two hashes — ``tenant_id``,
``sequence``, ``id``, ``service``, ``actor``, ``api_key_id``, ``action``, ``resource``,
``outcome``, ``request_id``, ``client_address``, ``details``, ``event_time``,
``create_time`` — with keys sorted, no spaces, UTF-8, and times as RFC 3339 UTC with
microseconds (``2026-01-02T03:04:05.000006Z``). Anyone holding an NDJSON export can
recompute it with any SHA-256 and JSON library.

:class:`Walk` goes along entries in sequence order and reports the first that breaks
the chain: a missing sequence number (a deleted entry), an entry whose content no longer
matches its hash (an edited entry), or one whose ``previous_hash`` is not its
predecessor's hash (an entry replaced along with its hash).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "GENESIS",
    "Break",
    "ChainEntry",
    "Walk",
    "canonical",
    "check",
    "entry_hash",
    "rfc3339",
]

GENESIS = "0" * 64


@dataclass(frozen=True)
class ChainEntry:
    """The fields of an audit entry that its hash covers, and its two hashes."""

    tenant_id: str
    sequence: int
    id: str
    service: str
    actor: str
    api_key_id: str
    action: str
    resource: str
    outcome: str
    request_id: str
    client_address: str
    details: dict[str, Any]
    event_time: float  # UNIX seconds, microsecond precision
    create_time: float
    previous_hash: str
    hash: str


def rfc3339(seconds: float) -> str:
    """UNIX seconds as RFC 3339 UTC with exactly six fractional digits."""
    whole, micros = divmod(round(seconds * 1_000_000), 1_000_000)
    t = time.gmtime(whole)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{micros:06d}Z"
    )


def canonical(entry: ChainEntry, details_json: str | None = None) -> bytes:
    """The canonical JSON of ``entry`` (see the module docstring); ``details_json``, when
    the caller has it, is ``entry.details`` already in canonical form."""
    before = {  # the fields whose names sort before "details", then those after
        "action": entry.action,
        "actor": entry.actor,
        "api_key_id": entry.api_key_id,
        "client_address": entry.client_address,
        "create_time": rfc3339(entry.create_time),
    }
    after = {
        "event_time": rfc3339(entry.event_time),
        "id": entry.id,
        "outcome": entry.outcome,
        "request_id": entry.request_id,
        "resource": entry.resource,
        "sequence": entry.sequence,
        "service": entry.service,
        "tenant_id": entry.tenant_id,
    }
    details = _dumps(entry.details) if details_json is None else details_json
    text = f'{_dumps(before)[:-1]},"details":{details},{_dumps(after)[1:]}'
    return text.encode()


def _dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(entry: ChainEntry, previous_hash: str, details_json: str | None = None) -> str:
    """The hash ``entry`` must carry when it follows ``previous_hash``."""
    digest = hashlib.sha256(previous_hash.encode() + b"\n" + canonical(entry, details_json))
    return digest.hexdigest()


@dataclass(frozen=True)
class Break:
    """Where and why a chain stops being trustworthy."""

    sequence: int
    reason: str


@dataclass
class Walk:
    """A walk along a chain from ``start``, whose predecessor carries ``last_hash``
    (GENESIS when ``start`` is 1): feed entries in sequence order to :meth:`step`, which
    stops at the first break."""

    start: int
    last_hash: str = GENESIS
    checked: int = 0
    broken: Break | None = None

    @property
    def last_sequence(self) -> int:
        """The last entry that checked out (``start - 1`` before any)."""
        return self.start - 1 + self.checked

    def step(self, entry: ChainEntry) -> bool:
        """Check the next entry; False (and ``broken`` set) when the chain breaks there."""
        expected = self.last_sequence + 1
        if entry.sequence != expected:
            self.broken = Break(expected, f"entry {expected} is missing")
        elif entry_hash(entry, entry.previous_hash) != entry.hash:
            reason = f"entry {expected}: content does not match its hash"
            self.broken = Break(expected, reason)
        elif entry.previous_hash != self.last_hash:
            reason = f"entry {expected}: previous_hash is not the hash of entry {expected - 1}"
            self.broken = Break(expected, reason)
        else:
            self.checked += 1
            self.last_hash = entry.hash
            return True
        return False


def check(entries: Iterable[ChainEntry], start: int = 1, anchor: str = GENESIS) -> Walk:
    """Walk ``entries`` from ``start`` after ``anchor``, stopping at the first break."""
    walk = Walk(start, anchor)
    for entry in entries:
        if not walk.step(entry):
            break
    return walk
