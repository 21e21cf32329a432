"""A closed-loop load: ``concurrency`` callers, each calling again as soon as its call ends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["closed_loop"]


async def closed_loop(
    call: Callable[[], Awaitable[object]], seconds: float, concurrency: int
) -> list[float]:
    """Every call's latency (seconds) over ``seconds`` of ``concurrency`` callers."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return latencies
