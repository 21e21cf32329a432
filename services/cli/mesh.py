"""``alea up | down | status | restart | logs | demo``: run the whole mesh (services and the
Envoy edge) locally, supervised: a process that dies is restarted (see mesh_supervisor.py)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from services.cli import mesh_demo
from services.cli.mesh_procs import (
    ADMIN_PORT,
    EDGE_PORT,
    MeshError,
    MeshLayout,
    envoy_ready,
    implemented_services,
    is_alive,
    read_pid,
    service_health,
    start_mesh,
    stop_mesh,
    supervisor_alive,
    supervisor_request,
)
from services.runtime.config import DEFAULT_PORTS, alea_home

__all__ = ["register"]


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"alea: {name} must be an integer, got {raw!r}") from None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``up``, ``down``, ``status`` and ``demo`` subcommands."""
    up = subparsers.add_parser(
        "up",
        help="start every implemented service and the Envoy edge, kept alive by a supervisor",
    )
    up.add_argument(
        "--services",
        help="comma-separated services (default: every implemented one); on a running mesh, "
        "starts those not running yet",
    )
    up.add_argument(
        "--database-url-template",
        default=os.environ.get("ALEA_DATABASE_URL_TEMPLATE"),
        help="database URL per service with a {service} placeholder, e.g. "
        "postgresql+asyncpg://alea@localhost/alea_{service} (default: SQLite in $ALEA_HOME/data; "
        "env ALEA_DATABASE_URL_TEMPLATE)",
    )
    up.add_argument(
        "--edge-port",
        type=int,
        default=_env_int("ALEA_EDGE_PORT", EDGE_PORT),
        help="TLS port of the edge (env ALEA_EDGE_PORT, default %(default)s)",
    )
    up.add_argument(
        "--admin-port",
        type=int,
        default=_env_int("ALEA_EDGE_ADMIN_PORT", ADMIN_PORT),
        help="Envoy admin port on 127.0.0.1 (env ALEA_EDGE_ADMIN_PORT, default %(default)s)",
    )
    up.add_argument(
        "--port-offset",
        type=int,
        default=_env_int("ALEA_PORT_OFFSET", 0),
        help="added to every service's default port, e.g. to run a second mesh "
        "(env ALEA_PORT_OFFSET)",
    )
    up.add_argument(
        "--rate-limit",
        type=int,
        default=_env_int("ALEA_EDGE_RATE_LIMIT", 1000),
        help="edge requests per second before RESOURCE_EXHAUSTED / 429 "
        "(env ALEA_EDGE_RATE_LIMIT, default %(default)s)",
    )
    up.set_defaults(func=cmd_up)

    down = subparsers.add_parser("down", help="stop the mesh started by 'alea up'")
    down.set_defaults(func=cmd_down)
    status = subparsers.add_parser(
        "status", help="health, pid, restarts and uptime of every mesh process"
    )
    status.set_defaults(func=cmd_status)
    restart = subparsers.add_parser(
        "restart", help="restart one service (or 'edge') gracefully while the rest runs"
    )
    restart.add_argument("service", help="a running service, or edge")
    restart.set_defaults(func=cmd_restart)
    logs = subparsers.add_parser("logs", help="a mesh process's log (edge: Envoy's)")
    logs.add_argument("service", help="a service, edge, edge-access or supervisor")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing what is added")
    logs.add_argument("-n", "--lines", type=int, default=50, help="lines shown first (default 50)")
    logs.set_defaults(func=cmd_logs)
    demo = subparsers.add_parser(
        "demo", help="register, log in and call the API through the edge over gRPC and REST"
    )
    demo.set_defaults(func=cmd_demo)


def _layout_from_args(args: argparse.Namespace) -> MeshLayout:
    available = implemented_services()
    wanted = args.services.split(",") if args.services else available
    unknown = sorted(set(wanted) - set(available))
    if unknown:
        raise MeshError(
            f"not implemented (no services/<name>/__main__.py): {', '.join(unknown)}; "
            f"available: {', '.join(available) or 'none'}"
        )
    if args.database_url_template and "{service}" not in args.database_url_template:
        raise MeshError("--database-url-template needs a {service} placeholder")
    return MeshLayout(
        home=alea_home(),
        services={name: DEFAULT_PORTS[name] + args.port_offset for name in wanted},
        edge_port=args.edge_port,
        admin_port=args.admin_port,
        database_url_template=args.database_url_template,
        rate_limit_per_s=args.rate_limit,
        port_offset=args.port_offset,
    )


def _add_services(args: argparse.Namespace, running: MeshLayout) -> int:
    """``alea up --services X`` on a running mesh: start the services it does not run yet."""
    wanted = _layout_from_args(args).services
    new = {n: DEFAULT_PORTS[n] + running.port_offset for n in wanted if n not in running.services}
    if not new:
        print(f"already running: {', '.join(wanted)}")
        return 0
    print(f"starting {', '.join(new)} beside the running mesh ...")
    reply = supervisor_request(running, {"op": "add", "services": new}, timeout=180)
    if "error" in reply:
        print(f"alea up: {reply['error']}", file=sys.stderr)
        return 1
    print(f"started {', '.join(reply['added'])}; the edge now routes them")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """Start the mesh and print how to reach it (or add services to the running one)."""
    try:
        home = alea_home()
        if (home / "run" / "mesh.json").exists():
            running = MeshLayout.load(home)
            if supervisor_alive(running):
                if args.services:
                    return _add_services(args, running)
                raise MeshError(
                    f"a mesh is already running in {home} ('alea status'; 'alea up --services "
                    "X' adds services to it, 'alea down' stops it)"
                )
        layout = _layout_from_args(args)
        print(f"starting {', '.join(layout.services)} and the edge in {layout.home} ...")
        start_mesh(layout)
    except MeshError as exc:
        print(f"alea up: {exc}", file=sys.stderr)
        return 1
    pki = layout.pki
    print(
        f"\nThe mesh is up.\n"
        f"  edge (gRPC and REST, mTLS): localhost:{layout.edge_port}\n"
        f"  CA certificate:             {pki / 'ca.crt'}\n"
        f"  client certificate and key: {pki / 'client.crt'} {pki / 'client.key'}\n"
        f"  logs:                       {layout.logs_dir}\n\n"
        f"Try it:\n"
        f"  curl --cacert {pki / 'ca.crt'} --cert {pki / 'client.crt'} "
        f"--key {pki / 'client.key'} https://localhost:{layout.edge_port}/v1/jwks\n"
    )
    return 0


def _recorded_layout(command: str) -> MeshLayout | None:
    """The mesh recorded in ``$ALEA_HOME``, or None after saying why there is none."""
    try:
        return MeshLayout.load(alea_home())
    except MeshError as exc:
        print(f"alea {command}: {exc}", file=sys.stderr)
        return None


def cmd_down(args: argparse.Namespace) -> int:
    """Stop every process of the mesh."""
    layout = _recorded_layout("down")
    if layout is None:
        return 1
    stopped = stop_mesh(layout)
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def cmd_status(args: argparse.Namespace) -> int:
    """Print each process's pid, health, restarts and uptime; non-zero if anything is down."""
    layout = _recorded_layout("status")
    if layout is None:
        return 1
    supervised: dict[str, dict[str, Any]] = {}
    if supervisor_alive(layout):
        try:
            reply = supervisor_request(layout, {"op": "status"}, timeout=5)
            supervised = {p["name"]: p for p in reply["processes"]}
        except MeshError as exc:
            print(f"alea status: {exc}", file=sys.stderr)
    else:
        print("no supervisor is running: processes that die stay dead ('alea up')")
    rows = []
    for name, port in [*layout.services.items(), ("envoy", layout.edge_port)]:
        pid = read_pid(layout, name)
        if not is_alive(pid):
            health = "STOPPED"
        elif name == "envoy":
            health = "READY" if envoy_ready(layout.admin_port) else "STARTING"
        else:
            health = service_health(layout.health_port(name))
        process = supervised.get(name, {})
        if process.get("state") in ("BACKOFF", "CRASH-LOOP"):
            health = process["state"]
        rows.append(
            (
                "edge" if name == "envoy" else name,
                f"localhost:{port}",
                pid,
                health,
                process.get("restarts", "-"),
                _uptime(process.get("uptime")),
            )
        )
    print(f"{'process':<14}{'address':<18}{'pid':>8}  {'health':<12}{'restarts':>8}  uptime")
    for name, address, pid, health, restarts, uptime in rows:
        print(f"{name:<14}{address:<18}{pid or '-':>8}  {health:<12}{restarts:>8}  {uptime}")
    return 0 if all(r[3] in ("SERVING", "READY") for r in rows) else 1


def cmd_restart(args: argparse.Namespace) -> int:
    """Restart one process gracefully through the supervisor; wait until it is ready."""
    try:
        layout = MeshLayout.load(alea_home())
        if not supervisor_alive(layout):
            raise MeshError("no supervised mesh is running here ('alea up' first)")
        name = "envoy" if args.service == "edge" else args.service
        reply = supervisor_request(layout, {"op": "restart", "name": name}, timeout=120)
    except MeshError as exc:
        print(f"alea restart: {exc}", file=sys.stderr)
        return 1
    if "error" in reply:
        print(f"alea restart: {reply['error']}", file=sys.stderr)
        return 1
    if not reply["ready"]:
        print(
            f"alea restart: {args.service} restarted but is not ready; 'alea logs {args.service}'",
            file=sys.stderr,
        )
        return 1
    print(f"restarted {args.service} (pid {reply['pid']}, {reply['restarts']} restarts)")
    return 0


def _log_file(layout: MeshLayout, name: str) -> Path:
    return {
        "edge": layout.log_path("envoy"),
        "edge-access": layout.log_path("envoy-access"),
    }.get(name, layout.log_path(name))


def cmd_logs(args: argparse.Namespace) -> int:
    """Print the end of a process's log; with ``-f`` keep printing what is appended."""
    layout = _recorded_layout("logs")
    if layout is None:
        return 1
    path = _log_file(layout, args.service)
    if not path.exists():
        known = sorted(p.stem.replace("envoy", "edge") for p in layout.logs_dir.glob("*.log"))
        print(f"alea logs: no log {path}; known: {', '.join(known)}", file=sys.stderr)
        return 1
    with path.open("rb") as log:
        lines = log.read().splitlines(keepends=True)
        shown = lines[-args.lines :] if args.lines > 0 else []
        sys.stdout.write(b"".join(shown).decode(errors="replace"))
        sys.stdout.flush()
        while args.follow:
            chunk = log.read()
            if chunk:
                sys.stdout.write(chunk.decode(errors="replace"))
                sys.stdout.flush()
            elif path.stat().st_size < log.tell():  # truncated: start over
                log.seek(0)
            else:
                time.sleep(0.2)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo against the mesh recorded in ``$ALEA_HOME``."""
    layout = _recorded_layout("demo")
    if layout is None:
        return 1
    return mesh_demo.run(layout)
