"""Small hand-built models for the simulation service tests (no workbook needed)."""

from __future__ import annotations

import time
import uuid

from services.engine import ir
from services.engine.serial import dump_model
from services.simulation.domain import summarise
from services.simulation.store import ModelRecord, Store


def small_model() -> ir.Model:
    """y = a + 3 b with a ~ Normal(100, 10), b ~ Triang(1, 2, 5); z = a * b."""
    a = ir.Sample(0, "normal", (ir.Const(100.0), ir.Const(10.0)), "a", "Sheet1!A1")
    b = ir.Sample(1, "triang", (ir.Const(1.0), ir.Const(2.0), ir.Const(5.0)), "b", "Sheet1!A2")
    y = ir.Apply("add", (a, ir.Apply("mul", (b, ir.Const(3.0)))), "Sheet1!B1")
    z = ir.Apply("mul", (a, b), "Sheet1!B2")
    return ir.Model((a, b), (ir.Output("y", "Sheet1!B1", y), ir.Output("z", "Sheet1!B2", z)))


def model_of(tenant: str) -> str:
    """The id of the model the ``store`` fixture keeps for ``tenant`` (see ``TENANTS``)."""
    return f"model-{tenant}"


# Tenants of the queue tests, each with a model (model_of) in every ``store``: a simulation
# needs a model that exists.
TENANTS = ("t1", "t2", "busy", "quiet")


async def insert_model(
    store: Store, tenant: str = "t1", model: ir.Model | None = None, model_id: str = ""
) -> str:
    """Store a compiled model directly, as CreateModel would; returns its id."""
    model = model or small_model()
    now = time.time()
    record = ModelRecord(
        id=model_id or str(uuid.uuid4()),
        tenant_id=tenant,
        request_id=None,
        display_name="small",
        content_hash=uuid.uuid4().hex,
        source_kind="spec",
        file_id=None,
        creator_id="u1",
        compiled=dump_model(model),
        summary=summarise(model),
        create_time=now,
        update_time=now,
        delete_time=None,
    )
    await store.insert_model(record)
    return record.id
