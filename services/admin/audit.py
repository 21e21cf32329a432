"""The audit log: append relayed entries, list and export them, sign checkpoints, verify.

Who sees what: a tenant's admins read their tenant's log; platform operators
(``Principal.platform``) may name any tenant, ``-`` for every log when listing, or ``-``
for the platform's own log (calls refused before a tenant was known) elsewhere. Another
tenant's log is NOT_FOUND for everyone else, as with every resource.

Verification (:meth:`AuditLog.verify`) recomputes the chain over a range and compares it
with a signed checkpoint (the newest stored, or a copy the caller kept elsewhere):

- an entry whose content was edited: its hash no longer matches — that exact sequence;
- an entry deleted from the middle: a gap — that exact sequence;
- an entry replaced together with its hash: the next entry's ``previous_hash`` differs;
- the whole tail rewritten consistently (every later hash recomputed): the entry at a
  checkpoint no longer has the signed hash — reported from the entry after the newest
  checkpoint that still matches;
- the newest entries deleted (truncation): the log ends before a checkpoint's sequence
  (or before the head row's) — reported at the first missing sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from services.admin import chain
from services.admin.chain import GENESIS, ChainEntry
from services.admin.signing import Signer, checkpoint_text, verify
from services.admin.store import AuditDraft, AuditStore, Checkpoint
from services.runtime.context import Principal
from services.runtime.errors import InvalidArgument, NotFound, PermissionDenied
from services.runtime.listing import ListRequest, Page

__all__ = ["ALL", "CSV_COLUMNS", "PLATFORM", "AuditLog", "Verdict"]

log = logging.getLogger(__name__)

ALL = "-"
PLATFORM = ""  # the tenant id of the platform's own log
CSV_COLUMNS = (
    "tenant_id",
    "sequence",
    "event_time",
    "service",
    "actor",
    "api_key_id",
    "action",
    "resource",
    "outcome",
    "request_id",
    "client_address",
    "details",
    "create_time",
    "previous_hash",
    "hash",
)
_EXPORT_PAGE = 1000
_EXPORT_CHUNK = 64 * 1024

Publish = Callable[[Checkpoint], Awaitable[None]]


@dataclass(frozen=True)
class Verdict:
    """What a verification found."""

    valid: bool
    checked: int
    first_invalid: int
    reason: str
    head_sequence: int
    checkpoint: Checkpoint | None


def _record(entry: ChainEntry) -> dict[str, object]:
    """An entry as exported: the canonical fields and both hashes."""
    fields = json.loads(chain.canonical(entry))
    return {**fields, "previous_hash": entry.previous_hash, "hash": entry.hash}


class AuditLog:
    """Every audit chain, its checkpoints and who may read them."""

    def __init__(self, store: AuditStore, signer: Signer, publish: Publish) -> None:
        self.store, self.signer, self.publish = store, signer, publish

    # -- scope ------------------------------------------------------------------------------

    @staticmethod
    def _tenant(principal: Principal, tenant_id: str, *, every: bool = False) -> str | None:
        """The log ``principal`` asks for: a tenant id, PLATFORM, or None (every log, when
        ``every``)."""
        if not tenant_id or tenant_id == principal.tenant_id:
            return principal.tenant_id
        if not principal.platform:
            if tenant_id == ALL:
                raise PermissionDenied("only platform operators may read the platform's logs")
            raise NotFound("tenant", tenant_id)
        if tenant_id == ALL:
            return None if every else PLATFORM
        return tenant_id

    def _one(self, principal: Principal, tenant_id: str) -> str:
        found = self._tenant(principal, tenant_id)
        assert found is not None
        return found

    # -- append and read ------------------------------------------------------------------

    async def record(self, drafts: list[AuditDraft]) -> int:
        """Append relayed entries; returns how many were new."""
        return len(await self.store.append(drafts))

    async def record_one(self, draft: AuditDraft) -> ChainEntry:
        """Append one entry, or return it as first appended when its id is already there."""
        appended = await self.store.append([draft])
        found = appended[0] if appended else await self.store.entry_by_id(draft.id)
        assert found is not None
        return found

    async def page(
        self, principal: Principal, tenant_id: str, request: ListRequest
    ) -> Page[ChainEntry]:
        return await self.store.page(self._tenant(principal, tenant_id, every=True), request)

    async def export(
        self, principal: Principal, tenant_id: str, request: ListRequest, ndjson: bool
    ) -> AsyncIterator[bytes]:
        """The listed entries as CSV or NDJSON, in chunks of about 64 KiB."""
        tenant = self._tenant(principal, tenant_id, every=True)
        order = request.order_by or "sequence"
        page = ListRequest(_EXPORT_PAGE, "", request.filter, order)
        first = await self.store.page(tenant, page)  # a bad filter fails before any byte
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        if not ndjson:
            writer.writerow(CSV_COLUMNS)
        current = first
        while True:
            for entry in current.items:
                record = _record(entry)
                if ndjson:
                    buffer.write(json.dumps(record, ensure_ascii=False) + "\n")
                else:
                    row = {**record, "details": json.dumps(record["details"], sort_keys=True)}
                    writer.writerow([row[c] for c in CSV_COLUMNS])
                if buffer.tell() >= _EXPORT_CHUNK:
                    yield buffer.getvalue().encode()
                    buffer.seek(0)
                    buffer.truncate()
            if not current.next_page_token:
                break
            page = ListRequest(_EXPORT_PAGE, current.next_page_token, request.filter, order)
            current = await self.store.page(tenant, page)
        yield buffer.getvalue().encode()

    # -- checkpoints ----------------------------------------------------------------------

    async def checkpoint(self, principal: Principal, tenant_id: str, at_most: int) -> Checkpoint:
        tenant = self._one(principal, tenant_id)
        found = await self.store.checkpoint(tenant, at_most or None)
        if found is None:
            raise NotFound("audit checkpoint", f"{tenant or 'platform'}@{at_most or 'latest'}")
        return found

    async def create_checkpoint(self, principal: Principal, tenant_id: str) -> Checkpoint:
        """Sign the tenant's log now, unless its newest checkpoint already covers the head."""
        tenant = self._one(principal, tenant_id)
        sequence, head = await self.store.head(tenant)
        newest = await self.store.checkpoint(tenant)
        if newest is not None and newest.sequence == sequence:
            return newest
        if sequence == 0:
            raise NotFound("audit log", tenant or "platform")
        return await self._sign(tenant, sequence, head)

    async def _sign(self, tenant: str, sequence: int, head: str) -> Checkpoint:
        now = round(time.time(), 6)
        text = checkpoint_text(tenant, sequence, head, now)
        signed = Checkpoint(
            tenant_id=tenant,
            sequence=sequence,
            head_hash=head,
            create_time=now,
            key_id=self.signer.key_id,
            public_key=self.signer.public_key,
            signature=self.signer.sign(text),
        )
        await self.store.add_checkpoint(signed)
        await self.publish(signed)
        return signed

    async def sign_grown(self) -> list[Checkpoint]:
        """Sign a checkpoint of every log that grew since its newest one."""
        return [await self._sign(*grown) for grown in await self.store.grown_since_checkpoint()]

    async def run_checkpoints(self, stop: asyncio.Event, interval: Callable[[], float]) -> None:
        """Sign the logs that grew every ``interval()`` seconds until ``stop``."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval())
            try:
                await self.sign_grown()
            except Exception:  # the database is away: the next round signs them
                log.warning("audit checkpoints: could not sign", exc_info=True)

    def _authentic(self, checkpoint: Checkpoint) -> bool:
        if (
            checkpoint.key_id != self.signer.key_id
            or checkpoint.public_key != self.signer.public_key
        ):
            return False
        text = checkpoint_text(
            checkpoint.tenant_id, checkpoint.sequence, checkpoint.head_hash, checkpoint.create_time
        )
        return verify(self.signer.public_key, checkpoint.signature, text)

    # -- verification -----------------------------------------------------------------------

    async def verify(
        self,
        principal: Principal,
        tenant_id: str,
        start: int,
        end: int,
        given: Checkpoint | None,
    ) -> Verdict:
        """Check the chain from ``start`` to ``end`` (0: 1 and the newest) against ``given``
        or the newest stored checkpoint; see the module docstring."""
        tenant = self._one(principal, tenant_id)
        if given is not None:
            if given.tenant_id != tenant:
                raise InvalidArgument("checkpoint.tenant_id", "is not the log being verified")
            if not self._authentic(given):
                raise InvalidArgument("checkpoint.signature", "is not this platform's signature")
        # Read in this order while entries may be appended: a checkpoint never covers more
        # than the head row, nor the head row more than the entries present, unless rows
        # were removed.
        checkpoint = given or await self.store.checkpoint(tenant)
        head_sequence, _ = await self.store.head(tenant)
        last = await self.store.last_sequence(tenant)
        start = max(start, 1)
        end = min(end or last, last)

        def verdict(first_invalid: int, reason: str, checked: int) -> Verdict:
            valid = not reason
            return Verdict(valid, checked, 0 if valid else first_invalid, reason, last, checkpoint)

        if checkpoint is not None and given is None and not self._authentic(checkpoint):
            return verdict(
                checkpoint.sequence, f"stored checkpoint {checkpoint.sequence} is not signed", 0
            )
        anchor = GENESIS
        if start > 1:
            before = await self.store.entry(tenant, start - 1)
            if before is None:
                return verdict(start - 1, f"entry {start - 1} is missing", 0)
            anchor = before.hash
        walk = chain.Walk(start, anchor)
        async for entry in self.store.entries(tenant, start, end):
            if not walk.step(entry):
                break
        broken = walk.broken
        if broken is None and walk.last_sequence < end:  # entries vanished while we walked
            broken = chain.Break(
                walk.last_sequence + 1, f"entry {walk.last_sequence + 1} is missing"
            )
        if broken is not None:
            return verdict(broken.sequence, broken.reason, walk.checked)
        covered = max(head_sequence, checkpoint.sequence if checkpoint else 0)
        if covered > last:
            what = "the head" if head_sequence >= covered else f"checkpoint {covered}"
            reason = f"the log ends at {last} but {what} covers {covered}: entries were removed"
            return verdict(last + 1, reason, walk.checked)
        if checkpoint is not None and start <= checkpoint.sequence <= end:
            reason = await self._against(tenant, checkpoint)
            if reason:
                first = await self._first_rewritten(tenant, checkpoint)
                return verdict(first, reason, walk.checked)
        return verdict(0, "", walk.checked)

    async def _against(self, tenant: str, checkpoint: Checkpoint) -> str:
        entry = await self.store.entry(tenant, checkpoint.sequence)
        if entry is None or entry.hash != checkpoint.head_hash:
            return (
                f"entry {checkpoint.sequence} does not have the hash checkpoint "
                f"{checkpoint.sequence} signed: entries up to it were rewritten"
            )
        return ""

    async def _first_rewritten(self, tenant: str, mismatch: Checkpoint) -> int:
        """The entry after the newest earlier checkpoint that still matches (1 if none)."""
        at_most = mismatch.sequence - 1
        while at_most > 0:
            earlier = await self.store.checkpoint(tenant, at_most)
            if earlier is None:
                return 1
            if self._authentic(earlier) and not await self._against(tenant, earlier):
                return earlier.sequence + 1
            at_most = earlier.sequence - 1
        return 1
