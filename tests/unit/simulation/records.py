"""Stored records of the simulation service, built with plausible defaults per test."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from services.simulation.store import ModelRecord, SimulationRecord

CREATED = 1_700_000_000.25  # a fixed, exactly representable moment


def model_record(**changes: Any) -> ModelRecord:
    """A workbook model of tenant ``t1`` (no compiled IR: conversions never read it)."""
    record = ModelRecord(
        id=str(uuid.uuid4()),
        tenant_id="t1",
        request_id=None,
        display_name="portfolio",
        content_hash="c0ffee",
        source_kind="workbook",
        file_id=None,
        creator_id="u1",
        compiled=b"",
        summary={"inputs": [], "outputs": [], "warnings": []},
        create_time=CREATED,
        update_time=CREATED,
        delete_time=None,
    )
    return dataclasses.replace(record, **changes)


def simulation_record(**changes: Any) -> SimulationRecord:
    """A queued simulation of model ``m1`` by ``u1`` of tenant ``t1``."""
    record = SimulationRecord(
        id=str(uuid.uuid4()),
        tenant_id="t1",
        user_id="u1",
        request_id=None,
        model_id="m1",
        cache_key="k",
        trials=1000,
        chunk_trials=1000,
        seed=1,
        sampling="mc",
        backend_preference="AUTO",
        priority=0,
        state="QUEUED",
        state_reason="",
        trials_done=0,
        backend="",
        cached=False,
        progress=None,
        create_time=CREATED,
        update_time=CREATED,
        start_time=None,
        end_time=None,
        segment_trials=1000,
    )
    return dataclasses.replace(record, **changes)
