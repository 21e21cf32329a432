"""What a run is asked for beyond trials and seed, and the results data it ends with.

:class:`RunOptions` travel with a simulation (stored as JSON with it) to every worker:
whether RiskSimtable simulations vary their seeds, the scenarios to analyse
(:mod:`.analysis`; every output's top and bottom 10 % by default) and the convergence
stopping (:mod:`.convergence`). :func:`prepare` gives
the model a run evaluates (every RiskSimtable simulation side by side, :mod:`.simtable`) and
:func:`results_data` turns the run's merged statistics into the JSON-able results that the
service stores and ``alea run --json`` prints: ``{key: Results.to_dict()}`` in output order,
exactly as before RiskSimtable for a model without it. With several simulations ``key`` is
the name the expanded model gives the output (``"NPV [2]"``), ``name`` inside stays the
model's own, and each entry adds ``"simulation": k`` (1-based) and ``"simtable"``: the value
of every RiskSimtable in that simulation, ``[[address, value or None], ...]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import simtable
from .analysis import DEFAULT_SCENARIOS, Scenario
from .convergence import Settings
from .ir import Model
from .simtable import Expansion
from .stats import Partial

__all__ = ["RunOptions", "prepare", "results_data"]


@dataclass(frozen=True)
class RunOptions:
    """Modelling options of one run (every field's default is the plain simulation)."""

    vary_seeds: bool = False
    #: Scenarios for scenario analysis, in place of the defaults; a scenario naming an
    #: output applies to it alone (in every RiskSimtable simulation), else to every output.
    scenarios: tuple[Scenario, ...] = ()
    convergence: Settings | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (the simulation service stores it with the simulation); the scenarios
        and the convergence stopping only when there are some, so the options of earlier
        simulations read the same."""
        data: dict[str, Any] = {"vary_seeds": self.vary_seeds}
        if self.scenarios:
            data["scenarios"] = [s.to_json() for s in self.scenarios]
        if self.convergence is not None:
            data["convergence"] = self.convergence.to_json()
        return data

    @staticmethod
    def from_json(data: dict[str, Any] | None) -> RunOptions:
        """Options stored by :meth:`to_json` (None: the defaults)."""
        data = dict(data or {})
        scenarios = tuple(Scenario.from_json(s) for s in data.pop("scenarios", []))
        stopping = data.pop("convergence", None)
        settings = None if stopping is None else Settings.from_json(stopping)
        return RunOptions(**data, scenarios=scenarios, convergence=settings)

    def scenarios_of(self, output: str) -> tuple[Scenario, ...]:
        """The scenarios analysed for the output named ``output``."""
        if not self.scenarios:
            return DEFAULT_SCENARIOS
        return tuple(s for s in self.scenarios if s.output in ("", output))


def prepare(model: Model, options: RunOptions) -> Expansion:
    """The model one run evaluates: every RiskSimtable simulation side by side."""
    return simtable.expand(model, options.vary_seeds)


def results_data(
    expansion: Expansion, partial: Partial, options: RunOptions | None = None
) -> dict[str, Any]:
    """The results of a finished run (see the module docstring)."""
    options = options or RunOptions()
    scenarios = {key: options.scenarios_of(name) for key, (_, name) in expansion.outputs.items()}
    per_simulation = simtable.split(partial.results(scenarios), expansion)
    outputs: dict[str, Any] = {}
    for key, (k, name) in expansion.outputs.items():
        outputs[key] = per_simulation[k - 1][name].to_dict()
        if expansion.values:  # the model has RiskSimtable
            values = [[a, v] for a, v in expansion.values[k - 1]]
            outputs[key] |= {"simulation": k, "simtable": values}
    return outputs
