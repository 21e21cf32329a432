"""``alea simulate``, ``alea results --plot --sipmath``, ``alea events`` and ``alea demo``'s
simulation, webhook, audit and usage steps, as a user runs them, against the whole mesh
(processes, Envoy) on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time

import pytest

from services.cli import mesh_demo
from tests.engine import models
from tests.support.mesh import Mesh
from tests.support.services import REPO_ROOT

pytestmark = pytest.mark.integration


def _command(mesh: Mesh, *args: str) -> dict:
    return {
        "args": [sys.executable, "-m", "services.cli.main", *args, "--edge", mesh.edge_address],
        "cwd": REPO_ROOT,
        "env": {**os.environ, "ALEA_HOME": str(mesh.layout.home)},
        "text": True,
    }


def alea(mesh: Mesh, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(**_command(mesh, *args), capture_output=True, timeout=180)


def test_simulate_watch_then_results_with_plot(mesh: Mesh, tmp_path):
    workbook = models.save(models.small(), tmp_path, "small")
    run = alea(mesh, "simulate", str(workbook), "--trials", "20000", "--seed", "3", "--watch")
    assert run.returncode == 0, run.stderr
    assert "trials" in run.stderr  # the progress bar
    simulation_id = re.search(r"simulation ([0-9a-f-]{36})", run.stdout).group(1)
    assert re.search(r"^Profit\s+\S+", run.stdout, re.MULTILINE), run.stdout
    png = tmp_path / "out.png"
    library = tmp_path / "library.json"
    shown = alea(
        mesh,
        "results",
        simulation_id,
        "--plot",
        str(png),
        "--sipmath",
        str(library),
        "--sipmath-terms",
        "6",
    )
    assert shown.returncode == 0, shown.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    sips = json.loads(library.read_text())["sips"]
    assert [s["name"] for s in sips] == ["Revenue", "Cost", "Tax", "Profit"]
    assert all(s["metadata"]["terms"] <= 6 for s in sips)
    refused = alea(
        mesh, "results", simulation_id, "--sipmath", str(library), "--sipmath-terms", "1"
    )
    assert refused.returncode == 1 and "INVALID_ARGUMENT" in refused.stderr, refused.stderr
    # The same account (kept in $ALEA_HOME/cli) sees it; a bad id is a clear error.
    missing = alea(mesh, "results", "00000000-0000-4000-8000-000000000000")
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr
    # alea events: the same account's feed, printed up to now, then it exits.
    feed = alea(mesh, "events", "--since", "10m", "--type", "simulation.succeeded")
    assert feed.returncode == 0, feed.stderr
    assert re.search(rf"simulation\.succeeded\s+simulations/{simulation_id}\s", feed.stdout), (
        feed.stdout
    )


def test_events_follow_prints_live_events_and_keeps_following(mesh: Mesh, tmp_path):
    follow = subprocess.Popen(
        **_command(mesh, "events", "--follow", "--since", "1s", "--type", "simulation.succeeded"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in follow.stdout], daemon=True
    ).start()
    try:
        workbook = models.save(models.small(), tmp_path, "small")
        run = alea(mesh, "simulate", str(workbook), "--trials", "5000", "--watch")
        assert run.returncode == 0, run.stderr
        simulation_id = re.search(r"simulation ([0-9a-f-]{36})", run.stdout).group(1)
        deadline = time.monotonic() + 60
        printed = ""
        while simulation_id not in printed and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                printed += lines.get(timeout=1)
        assert f"simulations/{simulation_id}" in printed, printed
        assert "simulation.succeeded" in printed and "simulation.created" not in printed
        assert follow.poll() is None  # still following after the replay and a live event
    finally:
        follow.terminate()
        follow.wait(10)


def test_demo_runs_the_simulation_steps(mesh: Mesh, capsys):
    assert mesh_demo.run(mesh.layout) == 0
    printed = capsys.readouterr().out
    assert "WatchSimulation" in printed and "SUCCEEDED" in printed
    assert "1,000,000/1,000,000 trials" in printed  # the live progress bar reached the end
    assert re.search(r"mean [\d.]+, P5 [\d.]+, P50 [\d.]+, P95 [\d.]+", printed)
    assert "GET /v1/queue" in printed
    assert re.search(r"webhook simulation\.succeeded for \S+ verified \(Standard Webhooks", printed)
    # The audit excerpt holds the demo's simulation; the chain verifies; usage counted it.
    assert re.search(r"ListAuditEvents: the newest \d+ entries\n(.*\n)*.*CreateSimulation", printed)
    assert re.search(r"VerifyAuditChain: valid, \d+ entries, against checkpoint \d+", printed)
    assert "GetUsage: this month 1,000,000 trials charged, 1 simulation(s)" in printed
