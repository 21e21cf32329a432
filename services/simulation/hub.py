"""In-process fan-out of simulation events to any number of watchers.

One :class:`Topic` per watched simulation holds only the latest snapshot and the latest
progress; publishing replaces them and wakes every waiting watcher through one shared
future, so publishing costs the same for one watcher or a thousand, and a slow watcher
skips to the newest event instead of queueing. Topics are fed by this process's workers
(every chunk) and, while anyone watches, by one poller for all topics that reads every
watched simulation in one query at a modest rate, so watchers on a replica that does not
run the job still follow it. (A poller per topic made a query per watched simulation per
interval: on PostgreSQL, with fifty watched simulations, those reads took a quarter of the
event loop that also serves RPCs and runs the workers.)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

from services.simulation.store import SimulationRecord

log = logging.getLogger(__name__)
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")


@dataclass(frozen=True)
class Progress:
    """Progress of a running simulation; ``running`` maps output → (mean, standard error)."""

    trials_done: int
    trials_total: int
    trials_per_second: float
    eta_seconds: float
    running: dict[str, tuple[float, float]]
    # A converging simulation's latest check (engine.convergence.Outcome.to_dict()), if any.
    convergence: dict[str, Any] | None = None


Event = SimulationRecord | Progress
Loader = Callable[[Collection[str]], Awaitable[dict[str, SimulationRecord]]]
"""Reads simulations by id, in one query, those found by id: ``Store.simulations_by_id``."""


class Topic:
    """The latest state of one simulation and the watchers waiting for the next."""

    def __init__(self) -> None:
        self.snapshot: SimulationRecord | None = None
        self.progress: Progress | None = None
        self.version = 0
        self.watchers = 0
        self._changed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def publish(self, event: Event) -> None:
        """Replace the latest snapshot or progress and wake every watcher."""
        if isinstance(event, Progress):
            self.progress = event
        else:
            if self.snapshot is not None and self.snapshot.update_time > event.update_time:
                return  # an older read of the database must not overwrite a newer state
            self.snapshot = event
        self.touch()

    def touch(self) -> None:
        """Wake every watcher without new data (a tick: they re-report the latest)."""
        self.version += 1
        changed, self._changed = self._changed, asyncio.get_running_loop().create_future()
        changed.set_result(None)

    async def wait(self, version: int, within: float) -> None:
        """Return once the version moved past ``version``, or after ``within`` seconds."""
        if self.version != version:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._changed), within)


class Hub:
    """The topics of this process, created on demand and dropped with their last watcher."""

    def __init__(self, load: Loader, poll_interval: float, tick: float = 0.2) -> None:
        self._load = load
        self._topics: dict[str, Topic] = {}
        self.poll_interval = poll_interval
        self.tick = tick
        self._poller: asyncio.Task[None] | None = None  # running while any topic exists

    def publish(self, simulation_id: str, event: Event) -> None:
        """Deliver an event to the simulation's watchers, if anyone watches it."""
        topic = self._topics.get(simulation_id)
        if topic is not None:
            topic.publish(event)

    def latest(self, simulation_id: str) -> SimulationRecord | None:
        """The newest state of a simulation someone already watches here, else None."""
        topic = self._topics.get(simulation_id)
        return topic.snapshot if topic is not None else None

    @property
    def watchers(self) -> int:
        """Watchers connected to this process (all simulations)."""
        return sum(t.watchers for t in self._topics.values())

    async def watch(self, first: SimulationRecord) -> AsyncIterator[Event]:
        """Events of a simulation from ``first`` (its current state) until a terminal state.

        Yields the snapshot first, then progress at every change and at least every
        ``tick`` seconds while running (rate and ETA refreshed), and ends after the
        terminal snapshot. Leaving the iterator early frees everything it held.
        """
        if first.state in TERMINAL:
            yield first
            return
        # Registered before the first message goes out: all the workers publish from the
        # moment ``first`` was read reaches this watcher. (Registered after it, a run of
        # one chunk could start, report and end while that message was being sent, and
        # its progress went to no one.)
        topic = self._topics.get(first.id)
        if topic is None:
            topic = self._topics[first.id] = Topic()
            _follow_record(topic, first, time.time())
            if self._poller is None:
                self._poller = asyncio.create_task(self._poll())
        topic.watchers += 1
        try:
            yield first
            async for event in self._follow(topic, first):
                yield event
        finally:
            topic.watchers -= 1
            if topic.watchers == 0 and self._topics.get(first.id) is topic:
                del self._topics[first.id]
                if not self._topics and self._poller is not None:
                    self._poller.cancel()
                    self._poller = None

    async def _follow(self, topic: Topic, first: SimulationRecord) -> AsyncIterator[Event]:
        last_state = first
        version = -1
        reported: Progress | None = None
        while True:
            # The topic's own ticker wakes everyone each ``tick``; the timeout is a backstop.
            await topic.wait(version, 5 * self.tick)
            version = topic.version
            snapshot = topic.snapshot or last_state
            if snapshot.state in TERMINAL and topic.progress not in (None, reported):
                # A short run can start, report and end between two wake-ups of a busy
                # loop: its last progress still reaches the watcher, before the end.
                yield topic.progress
            if snapshot.state != last_state.state or snapshot.state in TERMINAL:
                last_state = snapshot
                yield snapshot
                if snapshot.state in TERMINAL:
                    return
            # Every wake-up (a new chunk, or a tick with none) reports progress, so a
            # watcher hears at least every ``tick`` seconds while the job runs.
            if topic.progress is not None and snapshot.state == "RUNNING":
                reported = topic.progress
                yield reported

    async def _poll(self) -> None:
        """Tick every ``tick`` seconds (one timer for all watchers of all topics) and, every
        ``poll_interval``, follow the database for jobs run elsewhere (another replica or
        worker process): every watched simulation in one read."""
        polls_every = max(1, round(self.poll_interval / self.tick))
        loop = asyncio.get_running_loop()
        next_beat = loop.time()
        for beat in itertools.count(1):
            seen = {topic: topic.version for topic in self._topics.values()}
            # Beats on a fixed grid, so the time spent waking watchers does not stretch every
            # interval; beats a held-up loop missed are skipped rather than sent in a burst.
            next_beat += self.tick
            now = loop.time()
            if next_beat < now:
                next_beat += math.ceil((now - next_beat) / self.tick) * self.tick
            await asyncio.sleep(next_beat - now)
            for topic, version in seen.items():
                if topic.version == version:
                    topic.touch()
            if beat % polls_every:
                continue
            watched = dict(self._topics)
            try:
                records = await self._load(list(watched))
            except Exception:  # the database is away: watchers still hear this process
                log.warning("could not follow the watched simulations", exc_info=True)
                continue
            now = time.time()
            for simulation_id, topic in watched.items():
                record = records.get(simulation_id)
                if record is not None:
                    _follow_record(topic, record, now)


def _follow_record(topic: Topic, record: SimulationRecord, now: float) -> None:
    """Publish what a read of the database shows that ``topic`` has not seen yet."""
    if record.progress and (
        topic.progress is None or record.trials_done > topic.progress.trials_done
    ):
        topic.publish(progress_of(record, now))
    if topic.snapshot is None or record.update_time > topic.snapshot.update_time:
        topic.publish(record)


def running_to_json(running: dict[str, tuple[float, float]]) -> dict[str, list[float | None]]:
    """Running (mean, standard error) per output as JSON (NaN, undefined yet, is None)."""
    return {k: [_finite(m), _finite(se)] for k, (m, se) in running.items()}


def _finite(value: float) -> float | None:
    # JSON (and PostgreSQL's json type) has no NaN; None stands for "not yet defined".
    return value if math.isfinite(value) else None


def number_or_nan(value: float | None) -> float:
    """The inverse of JSON's None for "not yet defined": NaN."""
    return math.nan if value is None else float(value)


def progress_of(record: SimulationRecord, now: float) -> Progress:
    """Progress of a simulation from its row (its segments' last checkpoints)."""
    data = record.progress or {"running": {}}
    elapsed = now - record.start_time if record.start_time else 0.0
    rate = record.trials_done / elapsed if elapsed > 0 else 0.0
    left = record.trials - record.trials_done
    return Progress(
        trials_done=record.trials_done,
        trials_total=record.trials,
        trials_per_second=rate,
        eta_seconds=left / rate if rate > 0 else math.inf,
        running={k: (number_or_nan(v[0]), number_or_nan(v[1])) for k, v in data["running"].items()},
    )
