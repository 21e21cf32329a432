"""The headline results a succeeded event carries, from stored results of either format."""

from __future__ import annotations

from services.simulation.events import headline

STATISTICS = {"mean": 2.5, "std": 1.0, "percentiles": {"5": 1.0, "50": 2.5, "95": 4.0}}
WANT = [{"output": "y", "mean": 2.5, "std": 1.0, "p5": 1.0, "p50": 2.5, "p95": 4.0}]


def test_headline_of_results_with_reports() -> None:
    stored = {"format": 2, "outputs": {"y": STATISTICS}, "reports": [{"name": "r"}]}
    assert headline(stored) == WANT


def test_headline_of_results_stored_before_reports() -> None:
    assert headline({"y": STATISTICS}) == WANT
