"""The scenario analysis and contribution to variance of an output, as text for ``alea``."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

__all__ = ["add_scenario_option", "contribution_line", "scenario_lines"]


def add_scenario_option(parser: argparse.ArgumentParser) -> None:
    """``--scenario [OUTPUT:]TARGET``, repeatable, into ``args.scenario`` (engine scenarios)."""
    parser.add_argument(
        "--scenario",
        action="append",
        type=_scenario,
        default=[],
        metavar="[OUTPUT:]TARGET",
        help="scenario analysis of >90%% (top 10%%), <10%%, >VALUE or <VALUE, of OUTPUT or "
        "every output (repeatable; default: >90%% and <10%%)",
    )


def _scenario(text: str) -> object:
    """``--scenario`` as argparse reads it: ``[OUTPUT:]>90%``, ``<10%``, ``>1000``, ``<0``."""
    from services.engine.analysis import Scenario  # the engine only when a scenario is given

    try:
        return Scenario.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def contribution_line(
    title: str, shares: Sequence[tuple[str, float | None]], r_squared: float | None
) -> str | None:
    """``title contribution to variance (R² 0.98): X 69.2%, Y 30.8%`` (the five largest)."""
    shown = [(name, share) for name, share in shares if share is not None and _known(share)][:5]
    if not shown or not _known(r_squared):
        return None
    assert r_squared is not None
    parts = ", ".join(f"{name} {100 * share:.1f}%" for name, share in shown)
    return f"{title} contribution to variance (R² {r_squared:.3f}): {parts}"


def scenario_lines(
    title: str, scenarios: Sequence[tuple[str, int, Sequence[tuple[str, float, bool]]]]
) -> list[str]:
    """Per scenario ``(label, trials, [(input, significance, significant)])``, its significant
    inputs (|significance| >= 0.5 standard deviations), the largest first."""
    lines = []
    for label, trials, inputs in scenarios:
        shown = [f"{name} {sig:+.2f} sd" for name, sig, significant in inputs if significant]
        found = ", ".join(shown[:8]) if shown else "no significant input"
        lines.append(f"{title} scenario {label} ({trials:,} trials): {found}")
    return lines


def _known(value: float | None) -> bool:
    """A number, neither JSON's None nor a message's NaN."""
    return value is not None and math.isfinite(value)
