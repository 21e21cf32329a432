"""The simulation service's events (created, started, succeeded, failed, cancelled).

Each is written by the store or the queue in the transaction that moves the simulation
to its new state, so an event exists exactly when the state change committed. Their data
is complete enough for a usage record: the simulation, its model and trials, its state,
its times (UNIX seconds), the engine seconds the workers measured on CPU and GPU, the
model's uncertain inputs (created), and the headline results (mean, P5/P50/P95 per
output) or the failure reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.runtime.events import event
from services.runtime.outbox import OutboxItem
from services.simulation import result_data as stored_results

if TYPE_CHECKING:
    from services.simulation.store import SimulationRecord

__all__ = ["HEADLINE_OUTPUTS", "headline", "simulation_event"]

HEADLINE_OUTPUTS = 20
"""Outputs summarised in a succeeded event (a model may have thousands)."""


def headline(result_data: dict[str, Any]) -> list[dict[str, Any]]:
    """Mean, standard deviation and P5/P50/P95 of the first outputs of stored results."""
    summary = []
    stored = stored_results.parts(result_data)[0]
    outputs = [(name, result) for name, result in stored.items() if isinstance(result, dict)]
    for name, result in outputs[:HEADLINE_OUTPUTS]:
        percentiles = result.get("percentiles", {})
        summary.append(
            {
                "output": name,
                "mean": result.get("mean"),
                "std": result.get("std"),
                "p5": percentiles.get("5"),
                "p50": percentiles.get("50"),
                "p95": percentiles.get("95"),
            }
        )
    return summary


def simulation_event(type_: str, record: SimulationRecord, **data: Any) -> OutboxItem:
    """The event ``simulation.<type_>`` of ``record`` (as it is after the change)."""
    return event(
        f"simulation.{type_}",
        record.tenant_id,
        f"simulations/{record.id}",
        {
            "simulation_id": record.id,
            "model_id": record.model_id,
            "user_id": record.user_id,
            "state": f"STATE_{record.state}",
            "trials": record.trials,
            "trials_done": record.trials_done,
            "seed": str(record.seed),
            "sampling": record.sampling,
            "backend_preference": record.backend_preference,
            "backend": record.backend,
            "cached": record.cached,
            "create_time": record.create_time,
            "start_time": record.start_time,
            "end_time": record.end_time,
            "cpu_seconds": record.cpu_seconds,
            "gpu_seconds": record.gpu_seconds,
            **data,
        },
        user_id=record.user_id,
        at=record.update_time,
    )
