"""``alea up | down | status | demo``: run the whole mesh (services + Envoy edge) locally."""

from __future__ import annotations

import argparse
import os
import sys

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


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``up``, ``down``, ``status`` and ``demo`` subcommands."""
    up = subparsers.add_parser("up", help="start every implemented service and the Envoy edge")
    up.add_argument("--services", help="comma-separated services (default: every implemented one)")
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
    status = subparsers.add_parser("status", help="health and pid of every mesh process")
    status.set_defaults(func=cmd_status)
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
    )


def cmd_up(args: argparse.Namespace) -> int:
    """Start the mesh and print how to reach it."""
    try:
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


def cmd_down(args: argparse.Namespace) -> int:
    """Stop every process of the mesh."""
    try:
        layout = MeshLayout.load(alea_home())
    except MeshError as exc:
        print(f"alea down: {exc}", file=sys.stderr)
        return 1
    stopped = stop_mesh(layout)
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Print each process's pid and health; non-zero if anything is down."""
    try:
        layout = MeshLayout.load(alea_home())
    except MeshError as exc:
        print(f"alea status: {exc}", file=sys.stderr)
        return 1
    rows = []
    for name, port in layout.services.items():
        pid = read_pid(layout, name)
        health = service_health(layout.health_port(name)) if is_alive(pid) else "STOPPED"
        rows.append((name, f"localhost:{port}", pid, health))
    pid = read_pid(layout, "envoy")
    edge = "STOPPED" if not is_alive(pid) else "STARTING"
    if edge == "STARTING" and envoy_ready(layout.admin_port):
        edge = "READY"
    rows.append(("edge", f"localhost:{layout.edge_port}", pid, edge))
    print(f"{'process':<14}{'address':<18}{'pid':>8}  health")
    for name, address, pid, health in rows:
        print(f"{name:<14}{address:<18}{pid or '-':>8}  {health}")
    return 0 if all(r[3] in ("SERVING", "READY") for r in rows) else 1


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo against the mesh recorded in ``$ALEA_HOME``."""
    try:
        layout = MeshLayout.load(alea_home())
    except MeshError as exc:
        print(f"alea demo: {exc}", file=sys.stderr)
        return 1
    return mesh_demo.run(layout)
