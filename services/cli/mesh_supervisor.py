"""The supervisor behind ``alea up``: keeps the mesh's processes alive until ``alea down``.

``python -m services.cli.mesh_supervisor HOME`` runs in the background (``alea up`` starts
it) and owns every service and Envoy of the mesh recorded in ``HOME/run/mesh.json``:

- A process that exits unasked is started again at once, then after 0.5 s, 1 s, 2 s ...
  (at most :data:`MAX_BACKOFF`) while it keeps failing within :data:`STABLE_AFTER` seconds
  of its start. Five exits within a minute mark it ``CRASH-LOOP`` in ``alea status`` and
  in ``logs/supervisor.log`` (with its exit status and the end of its log); it is still
  retried at the longest backoff, as Kubernetes does.
- During the first start, a service that exits before it ever served stops everything:
  a configuration error should be read, not retried (``alea up`` shows its log).
- SIGTERM, SIGINT or ``stop`` stop the edge, then every service, before it exits; so does
  the exit of the layout's ``owner_pid`` (tests and benchmarks set it, so that one killed
  before its cleanup leaves no mesh behind; ``alea up`` does not).
- Requests come over ``run/supervisor.sock`` (0600), one JSON line each way:
  ``status``, ``restart`` (one process, gracefully), ``add`` (services started while the
  rest runs; the edge is re-rendered and restarted to route them) and ``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.cli.mesh_procs import (
    STOP_GRACE,
    MeshLayout,
    envoy_argv,
    envoy_ready,
    log_tail,
    render_envoy,
    service_env,
    service_health,
)

__all__ = ["CRASH_LOOP_EXITS", "MAX_BACKOFF", "STABLE_AFTER", "main"]

MAX_BACKOFF = 30.0
STABLE_AFTER = 30.0  # a process up this long has recovered: its backoff starts over
CRASH_LOOP_EXITS, CRASH_LOOP_WINDOW = 5, 60.0
READY_TIMEOUT = 60.0
EDGE = "envoy"
ROOT = Path(__file__).resolve().parents[2]

log = logging.getLogger("alea.supervisor")


@dataclass
class Process:
    """One supervised process and what ``alea status`` shows of it."""

    name: str
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    restarts: int = 0
    state: str = "STARTING"  # STARTING, RUNNING, BACKOFF, CRASH-LOOP, STOPPED
    last_exit: int | None = None
    exits: list[float] = field(default_factory=list)
    stopping: bool = False  # an exit we asked for: not a failure
    ready_once: bool = False
    added: bool = False  # added to a running mesh: a failed start fails the add, not the mesh
    watcher: asyncio.Task[None] | None = None

    def view(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pid": self.process.pid if self.process else None,
            "state": self.state,
            "restarts": self.restarts,
            "uptime": time.time() - self.started_at if self.state == "RUNNING" else None,
            "last_exit": self.last_exit,
        }


class Supervisor:
    """Starts, watches, restarts and stops the processes of one mesh."""

    def __init__(self, layout: MeshLayout) -> None:
        self.layout = layout
        self.processes: dict[str, Process] = {}
        self.done = asyncio.Event()
        self.failure: str | None = None
        self._stopping: asyncio.Task[None] | None = None

    # -- processes -------------------------------------------------------------------------

    def _argv_env(self, name: str) -> tuple[list[str], dict[str, str]]:
        if name == EDGE:
            return envoy_argv(self.layout, render_envoy(self.layout)), {}
        return [sys.executable, "-m", f"services.{name}"], service_env(self.layout, name)

    def _ready(self, name: str) -> bool:
        if name == EDGE:
            return envoy_ready(self.layout.admin_port)
        return service_health(self.layout.health_port(name)) == "SERVING"

    async def _spawn(self, record: Process) -> None:
        argv, env = self._argv_env(record.name)
        with self.layout.log_path(record.name).open("ab") as out:
            record.process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=ROOT,
                env={**os.environ, **env},
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        self.layout.pid_path(record.name).write_text(f"{record.process.pid}\n")
        record.started_at, record.stopping = time.time(), False
        record.state = "STARTING"
        record.watcher = asyncio.create_task(self._watch(record))

    async def _wait_ready(self, record: Process) -> bool:
        """True once ``record`` is ready; False if it exits or takes over READY_TIMEOUT."""
        deadline = time.monotonic() + READY_TIMEOUT
        process = record.process
        while time.monotonic() < deadline and process and process.returncode is None:
            if await asyncio.to_thread(self._ready, record.name):
                if record.process is process:
                    record.state, record.ready_once = "RUNNING", True
                return True
            await asyncio.sleep(0.1)
        return False

    async def _watch(self, record: Process) -> None:
        """Wait for the process to exit; restart it with backoff unless we stopped it."""
        assert record.process is not None
        status = await record.process.wait()
        record.last_exit = status
        if record.stopping or self.done.is_set():
            record.state = "STOPPED"
            return
        now = time.time()
        if not record.ready_once and record.added:  # ``add`` sees it and answers
            record.state = "STOPPED"
            return
        if not record.ready_once:  # never served since `alea up`: a start-up failure
            self.failure = (
                f"{record.name} exited during start; the end of "
                f"{self.layout.log_path(record.name)}:\n"
                f"{log_tail(self.layout.log_path(record.name))}"
            )
            self.request_stop()
            return
        if now - record.started_at >= STABLE_AFTER:
            record.exits.clear()
        record.exits = [t for t in record.exits if now - t < CRASH_LOOP_WINDOW] + [now]
        failures = len(record.exits)
        delay = 0.0 if failures == 1 else min(0.5 * 2 ** (failures - 2), MAX_BACKOFF)
        if failures >= CRASH_LOOP_EXITS:
            record.state = "CRASH-LOOP"
            log.error(
                "crash loop: %s exited %d times within %.0f s (last status %s); retrying in "
                "%.1f s. The end of %s:\n%s",
                record.name,
                failures,
                CRASH_LOOP_WINDOW,
                status,
                delay,
                self.layout.log_path(record.name),
                log_tail(self.layout.log_path(record.name), 15),
            )
        else:
            record.state = "BACKOFF"
            log.warning(
                "%s exited with status %s; restarting in %.1f s", record.name, status, delay
            )
        await asyncio.sleep(delay)
        if record.stopping or self.done.is_set():
            return
        record.restarts += 1
        await self._spawn(record)
        await self._wait_ready(record)

    async def _terminate(self, record: Process) -> None:
        process = record.process
        if process is None or process.returncode is not None:
            return
        record.stopping = True
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE)
        except TimeoutError:
            process.kill()
            await process.wait()
        if record.watcher:
            await record.watcher

    # -- requests --------------------------------------------------------------------------

    async def start(self, names: list[str]) -> None:
        """Start ``names`` (services before the edge) and wait until each is ready."""
        for name in names:
            self.processes[name] = record = Process(name)
            await self._spawn(record)
        for name in names:
            record = self.processes[name]
            if not await self._wait_ready(record) and self.failure is None:
                self.failure = (
                    f"{name} not ready after {READY_TIMEOUT:.0f}s; the end of "
                    f"{self.layout.log_path(name)}:\n{log_tail(self.layout.log_path(name))}"
                )
            if self.failure:
                await self.stop()
                return

    async def restart(self, name: str) -> dict[str, Any]:
        record = self.processes.get(name)
        if record is None:
            return {"error": f"no process {name!r} in this mesh"}
        await self._terminate(record)
        record.restarts += 1
        await self._spawn(record)
        ready = await self._wait_ready(record)
        return {"ready": ready, **record.view()}

    async def add(self, services: dict[str, int]) -> dict[str, Any]:
        """Start ``services`` beside the running ones. If one does not become ready, none
        of them is added (each is stopped and left out of the layout) and the running mesh
        carries on; the error says why, from the log."""
        new = {n: p for n, p in services.items() if n not in self.layout.services}
        self.layout.services = {**self.layout.services, **new}
        self.layout.save()
        for name in new:
            self.processes[name] = record = Process(name, added=True)
            await self._spawn(record)
        for name in new:
            if not await self._wait_ready(self.processes[name]):
                log_path = self.layout.log_path(name)
                for added in new:
                    await self._terminate(self.processes.pop(added))
                    self.layout.pid_path(added).unlink(missing_ok=True)
                self.layout.services = {
                    n: p for n, p in self.layout.services.items() if n not in new
                }
                self.layout.save()
                return {
                    "error": f"{name} did not become ready, so nothing was added; the end of "
                    f"{log_path}:\n{log_tail(log_path)}"
                }
            self.processes[name].added = False  # from now on supervised like the others
        if new and EDGE in self.processes:
            await self.restart(EDGE)  # the edge routes what its configuration lists
        return {"added": list(new)}

    def request_stop(self) -> None:
        """Begin stopping everything (a signal, a failed start, the owner's exit); ``done``
        is set at once, :meth:`stop` returns when every process is down."""
        if self._stopping is None:
            self.done.set()
            self._stopping = asyncio.create_task(self._stop_all())

    async def stop(self) -> None:
        """Stop everything; return once every process is down (whoever asked first)."""
        self.request_stop()
        assert self._stopping is not None
        await asyncio.shield(self._stopping)

    async def _stop_all(self) -> None:
        # The edge first, so no request reaches a service that is going away.
        if EDGE in self.processes:
            await self._terminate(self.processes[EDGE])
        await asyncio.gather(*(self._terminate(r) for r in self.processes.values()))
        for name in self.processes:
            self.layout.pid_path(name).unlink(missing_ok=True)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = json.loads(await reader.readline())
            op = request.get("op")
            if op == "status":
                reply: dict[str, Any] = {
                    "processes": [r.view() for r in self.processes.values()],
                    "failure": self.failure,
                }
            elif op == "restart":
                reply = await self.restart(request["name"])
            elif op == "add":
                reply = await self.add({k: int(v) for k, v in request["services"].items()})
            elif op == "stop":
                await self.stop()
                reply = {"stopped": True}
            else:
                reply = {"error": f"unknown request {op!r}"}
        except (ValueError, KeyError, TypeError) as exc:
            reply = {"error": f"bad request: {exc}"}
        writer.write(json.dumps(reply).encode() + b"\n")
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()


async def _follow_owner(supervisor: Supervisor, owner: int | None) -> None:
    """Stop the mesh once its owner process (``MeshLayout.owner_pid``) has exited."""
    if owner is None:
        return
    try:
        descriptor = os.pidfd_open(owner)  # readable once the process has exited
    except ProcessLookupError:
        pass  # gone already
    else:
        loop = asyncio.get_running_loop()
        exited = asyncio.Event()
        loop.add_reader(descriptor, exited.set)
        try:
            await exited.wait()
        finally:
            loop.remove_reader(descriptor)
            os.close(descriptor)
    log.warning("owner process %d has exited: stopping the mesh", owner)
    supervisor.request_stop()


async def _serve(home: Path) -> int:
    layout = MeshLayout.load(home)
    supervisor = Supervisor(layout)
    socket_path = layout.run_dir / "supervisor.sock"
    socket_path.unlink(missing_ok=True)
    server = await asyncio.start_unix_server(supervisor.handle, path=str(socket_path))
    socket_path.chmod(0o600)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, supervisor.request_stop)
    following = asyncio.create_task(_follow_owner(supervisor, layout.owner_pid))
    try:
        await supervisor.start([*layout.services, EDGE])
        await supervisor.done.wait()
        await supervisor.stop()  # done is set when a stop begins: let it end
    finally:
        following.cancel()
        server.close()
        socket_path.unlink(missing_ok=True)
    if supervisor.failure:
        (layout.run_dir / "supervisor.failed").write_text(supervisor.failure)
        log.error("%s", supervisor.failure)
        return 1
    return 0


def main(argv: list[str]) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    return asyncio.run(_serve(Path(argv[0])))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
