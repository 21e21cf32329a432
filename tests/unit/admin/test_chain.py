"""The hash chain: the documented formula, recomputed independently, and each kind of break."""

from __future__ import annotations

import dataclasses
import hashlib
import json

from services.admin.chain import GENESIS, ChainEntry, Walk, canonical, check, entry_hash, rfc3339


def _entry(sequence: int, previous: str, **changes: object) -> ChainEntry:
    entry = ChainEntry(
        tenant_id="7c9e6679-7425-40de-944b-e07fc1f90ae7",
        sequence=sequence,
        id=f"00000000-0000-4000-8000-{sequence:012d}",
        service="files",
        actor="u-1",
        api_key_id="",
        action="alea.files.v1.FilesService/DeleteFile",
        resource=f"files/{sequence}",
        outcome="OK",
        request_id=f"r{sequence}",
        client_address="127.0.0.1",
        details={"fields": ["name"], "ünïcode": "é"},
        event_time=1_767_225_600.000_006 + sequence,
        create_time=1_767_225_601.5 + sequence,
        previous_hash=previous,
        hash="",
    )
    entry = dataclasses.replace(entry, **changes)
    return dataclasses.replace(entry, hash=entry_hash(entry, previous))


def _chain(length: int) -> list[ChainEntry]:
    entries, previous = [], GENESIS
    for sequence in range(1, length + 1):
        entries.append(_entry(sequence, previous))
        previous = entries[-1].hash
    return entries


def test_the_hash_is_the_documented_formula() -> None:
    entry = _entry(1, GENESIS)
    fields = {
        "action": entry.action,
        "actor": entry.actor,
        "api_key_id": "",
        "client_address": "127.0.0.1",
        "create_time": "2026-01-01T00:00:02.500000Z",
        "details": {"fields": ["name"], "ünïcode": "é"},
        "event_time": "2026-01-01T00:00:01.000006Z",
        "id": entry.id,
        "outcome": "OK",
        "request_id": "r1",
        "resource": "files/1",
        "sequence": 1,
        "service": "files",
        "tenant_id": entry.tenant_id,
    }
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical(entry) == text.encode()
    assert entry.hash == hashlib.sha256(f"{GENESIS}\n{text}".encode()).hexdigest()


def test_times_keep_exactly_microseconds() -> None:
    assert rfc3339(0.000_001) == "1970-01-01T00:00:00.000001Z"
    assert rfc3339(1_767_225_600.999_999) == "2026-01-01T00:00:00.999999Z"


def test_an_intact_chain_checks_out() -> None:
    walk = check(_chain(5))
    assert walk.broken is None and walk.checked == 5 and walk.last_sequence == 5


def test_an_edited_entry_is_found_at_its_sequence() -> None:
    entries = _chain(5)
    entries[2] = dataclasses.replace(entries[2], outcome="PERMISSION_DENIED")
    walk = check(entries)
    assert walk.broken is not None and walk.broken.sequence == 3
    assert "content does not match its hash" in walk.broken.reason
    assert walk.checked == 2


def test_a_missing_entry_is_found_at_its_sequence() -> None:
    entries = _chain(5)
    del entries[1]
    walk = check(entries)
    assert walk.broken is not None and walk.broken.sequence == 2
    assert walk.broken.reason == "entry 2 is missing"


def test_an_entry_replaced_with_a_fresh_hash_breaks_the_link_after_it() -> None:
    entries = _chain(4)
    forged = dataclasses.replace(entries[1], actor="someone-else")
    entries[1] = dataclasses.replace(forged, hash=entry_hash(forged, forged.previous_hash))
    walk = check(entries)
    assert walk.broken is not None and walk.broken.sequence == 3
    assert "previous_hash" in walk.broken.reason


def test_a_range_starts_after_its_anchor() -> None:
    entries = _chain(6)
    walk = Walk(4, entries[2].hash)
    assert all(walk.step(e) for e in entries[3:])
    assert walk.last_sequence == 6
    wrong_anchor = Walk(4, GENESIS)
    assert not wrong_anchor.step(entries[3])
