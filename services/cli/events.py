"""``alea events``: the tenant's event feed; and the demo's signed webhook delivery.

``alea events`` prints the events of the last ``--since`` (default 1 h), one a line, and
exits; ``--follow`` keeps printing live ones, and resumes after the last event printed
if the connection breaks. The demo steps register a webhook to a receiver they start on
127.0.0.1, and after the demo's simulation show its ``simulation.succeeded`` delivery
verified with the ``standardwebhooks`` package.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.server
import threading
import time
import uuid
from typing import Any

import grpc
import standardwebhooks
from alea.notification.v1 import notification_pb2 as pb
from alea.notification.v1 import notification_pb2_grpc
from google.protobuf import json_format, timestamp_pb2

from services.cli.edge_client import edge_channel
from services.cli.simulate import _add_connection, _credentials, _edge_address, _guard
from services.runtime.config import alea_home
from services.runtime.events import TYPES

__all__ = ["DEMO_AFTER", "DEMO_BEFORE", "format_event", "register"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> float:
    """``90s``, ``15m``, ``2h``, ``7d`` → seconds."""
    try:
        return float(text[:-1]) * _UNITS[text[-1]]
    except (KeyError, ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"not a duration like 15m, 2h or 7d: {text!r}") from None


def format_event(event: pb.Event) -> str:
    """One line: time, type, resource, then the data as key=value."""
    when = event.event_time.ToDatetime(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    data = json_format.MessageToDict(event.data)
    details = " ".join(
        f"{k}={v}" for k, v in sorted(data.items()) if not isinstance(v, dict | list)
    )
    return f"{when}  {event.type_name:<22} {event.resource}  {details}"


def cmd_events(args: argparse.Namespace) -> int:
    """Print the feed (then follow it with ``--follow``)."""
    with edge_channel(_edge_address(args), alea_home() / "pki") as channel:
        stub = notification_pb2_grpc.NotificationServiceStub(channel)
        metadata = _credentials(args, channel)
        start = timestamp_pb2.Timestamp()
        start.FromNanoseconds(int((time.time() - args.since) * 1e9))
        types = [TYPES[name] for name in args.type]
        last = ""
        while True:
            request = pb.SubscribeRequest(
                types=types,  # type: ignore[arg-type]
                after=last,
                start_time=None if last else start,
                replay_only=not args.follow,
            )
            try:
                for event in stub.Subscribe(request, metadata=metadata):
                    print(format_event(event), flush=True)
                    last = event.id
                return 0
            except grpc.RpcError as exc:
                if not args.follow or exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                time.sleep(1)  # the mesh restarts: resume after the last event printed


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``events`` subcommand."""
    events = subparsers.add_parser("events", help="print the tenant's events (--follow: live)")
    events.add_argument("--follow", "-f", action="store_true", help="keep printing live events")
    events.add_argument(
        "--since", type=_duration, default=3600.0, help="how far back to start (default 1h)"
    )
    events.add_argument(
        "--type", action="append", default=[], choices=sorted(TYPES), help="only this type"
    )
    _add_connection(events)
    events.set_defaults(func=_guard(cmd_events))


# -- alea demo ---------------------------------------------------------------------------


class _Receiver(http.server.ThreadingHTTPServer):
    """The demo's webhook endpoint on 127.0.0.1: keeps each request's headers and body."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.received.append(({k: v for k, v in self.headers.items()}, body))
                receiver.arrived.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


def demo_webhook(demo: Any) -> str:
    """alea demo step: a receiver on loopback and a webhook for simulation.succeeded."""
    receiver = _Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/alea-events"
    stub = notification_pb2_grpc.NotificationServiceStub(demo.channel)
    try:
        created = stub.CreateWebhook(
            pb.CreateWebhookRequest(
                url=url,
                event_types=[pb.EVENT_TYPE_SIMULATION_SUCCEEDED],
                display_name="alea demo",
                request_id=str(uuid.uuid4()),
            ),
            metadata=demo.grpc_auth(),
            timeout=30,
        )
    except grpc.RpcError as exc:
        receiver.shutdown()
        receiver.server_close()
        if exc.code() != grpc.StatusCode.INVALID_ARGUMENT:
            raise
        # A deployment's SSRF policy (Kubernetes) refuses this machine's loopback, rightly.
        demo.skip(f"the mesh does not deliver webhooks to {url}: {exc.details()}")
    demo.state["webhook"] = (receiver, created.secret)
    return f"CreateWebhook: {url} for simulation.succeeded, secret {created.secret[:10]}…"


def demo_webhook_delivery(demo: Any) -> str:
    """alea demo step: the simulation's signed delivery, verified with standardwebhooks."""
    if "webhook" not in demo.state:
        demo.skip("no webhook was registered")
    receiver, secret = demo.state["webhook"]
    try:
        if not receiver.arrived.wait(30):
            raise OSError("no webhook delivery within 30 s (see alea events, ListDeliveries)")
        headers, body = receiver.received[0]
        payload = standardwebhooks.Webhook(secret).verify(body, headers)
    finally:
        receiver.shutdown()
        receiver.server_close()
    simulation = payload["data"]["simulation_id"]
    if simulation != demo.state.get("simulation_id"):
        raise OSError(f"the delivery is about {simulation}, not the demo's simulation")
    headline = payload["data"]["results"][0]
    return (
        f"webhook {payload['type']} for {simulation} verified (Standard Webhooks, "
        f"webhook-id {headers['webhook-id']}): {headline['output']} mean {headline['mean']:.2f}"
    )


DEMO_BEFORE = [("grpc", demo_webhook)]
DEMO_AFTER = [("grpc", demo_webhook_delivery)]
