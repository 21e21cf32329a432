"""``alea run``: simulate a workbook model on this machine and print its statistics."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from services.cli.analysis_view import add_scenario_option, contribution_line, scenario_lines

# Exit status for a model the engine refuses (bad formula, invalid parameters, hostile file).
REFUSED = 2


def register(subparsers: Any) -> None:
    """Add ``alea run`` to the ``alea`` command."""
    parser = subparsers.add_parser(
        "run", help="simulate a workbook model locally", description=__doc__
    )
    parser.add_argument("model", type=Path, help="the .xlsx workbook (@RISK-style functions)")
    parser.add_argument("--trials", type=_positive, default=10_000, help="number of trials")
    parser.add_argument("--seed", type=_seed, default=0, help="random seed in [0, 2**64)")
    parser.add_argument(
        "--backend",
        choices=("auto", "cpu", "native", "numpy", "gpu"),
        default="auto",
        help="auto: the GPU if there is one, else cpu; cpu: native where a C compiler exists, "
        "else numpy",
    )
    parser.add_argument(
        "--sampling",
        choices=("mc", "lhs", "sobol"),
        default="mc",
        help="Monte Carlo, Latin Hypercube or scrambled Sobol",
    )
    parser.add_argument("--chunk-size", type=_positive, default=None, help="trials per chunk")
    parser.add_argument(
        "--vary-seeds",
        action="store_true",
        help="RiskSimtable: each simulation draws its own random numbers (default: the same)",
    )
    add_scenario_option(parser)
    parser.add_argument(
        "--sipmath",
        type=Path,
        metavar="PATH",
        help="write the inputs and outputs as a SIPmath 3.0 library (JSON) to PATH",
    )
    parser.add_argument(
        "--sipmath-terms",
        type=_positive,
        default=16,
        help="most metalog terms per variable of the SIPmath library (2 to 30, default 16)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_convergence_options(parser, bounded=True)
    parser.set_defaults(func=run)


def add_convergence_options(parser: argparse.ArgumentParser, bounded: bool) -> None:
    """``--converge`` and its companions (``alea run``, and ``alea simulate`` where
    ``--trials`` is the most a converging simulation runs: not ``bounded`` by its own option)."""
    stopping = parser.add_argument_group(
        "convergence stopping",
        "run until every output's statistics are known within a tolerance, checked every N "
        "trials; outputs with RiskConvergence use their own test"
        + (" (--trials is then ignored)" if bounded else " (--trials is the most it runs)"),
    )
    stopping.add_argument(
        "--converge",
        metavar="TOL",
        help="tolerance of each monitored statistic: 1%% (relative) or 250 (absolute); without "
        "it, --check-every monitors only outputs with RiskConvergence",
    )
    stopping.add_argument(
        "--converge-on",
        metavar="STATS",
        default="mean",
        help="statistics to monitor, comma-separated: mean, std, p5, p95... (default: mean)",
    )
    stopping.add_argument(
        "--confidence", type=float, default=95.0, help="confidence level in %% (default 95)"
    )
    stopping.add_argument(
        "--check-every", type=_positive, default=None, help="trials between checks (1,000)"
    )
    if bounded:
        stopping.add_argument(
            "--max-trials",
            type=_positive,
            default=None,
            help="stop here at the latest; a multiple of --check-every (1,000,000)",
        )


def stopping_settings(args: argparse.Namespace, max_trials: int | None = None) -> Any:
    """The convergence settings asked for (``max_trials``: the run's bound, else
    ``--max-trials``), else None; ``ValueError`` names the option at fault."""
    from services.engine import convergence

    asked = getattr(args, "max_trials", None)
    if args.converge is None and args.check_every is None and asked is None:
        return None
    max_trials = max_trials or asked
    default = None
    if args.converge is not None:
        text = args.converge.strip()
        relative = text.endswith("%")
        try:
            tolerance = float(text.rstrip("%")) / (100 if relative else 1)
        except ValueError:
            raise ValueError(f"--converge: not a tolerance: {text!r} (1% or 250)") from None
        stats = [s.strip().lower() for s in args.converge_on.split(",") if s.strip()]
        unknown = [s for s in stats if s not in ("mean", "std") and not _is_percentile(s)]
        if unknown:
            raise ValueError(f"--converge-on: unknown statistics {unknown} (mean, std, p95...)")
        default = convergence.criterion(
            tolerance,
            relative,
            args.confidence / 100,
            mean="mean" in stats,
            stddev="std" in stats,
            percentiles=tuple(float(s[1:]) / 100 for s in stats if _is_percentile(s)),
            field_prefix="--converge: ",
        )
    else:
        convergence.criterion(confidence=args.confidence / 100, field_prefix="--")
    try:
        return convergence.Settings(args.check_every or 1_000, max_trials or 1_000_000, default)
    except ValueError as exc:  # the settings name their fields; the options are spelt so
        option = str(exc).replace("check_every", "--check-every")
        raise ValueError(option.replace("max_trials", "--max-trials")) from None


def _is_percentile(text: str) -> bool:
    try:
        return text.startswith("p") and 0 < float(text[1:]) < 100
    except ValueError:
        return False


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _seed(text: str) -> int:
    value = int(text)
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**64), got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    """Load, simulate, print; a refused model exits with status 2 and the reason on stderr."""
    # Imported here: the engine (NumPy, SciPy) would slow every other ``alea`` command.
    from services import engine
    from services.engine import memory, outcome
    from services.engine.reports import evaluate as evaluate_reports

    try:
        memory.budget()
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return REFUSED
    from services.engine import convergence

    try:
        settings = stopping_settings(args)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return REFUSED
    refused = _sipmath_refusal(args)
    if refused is not None:  # before the run, not after it
        print(refused, file=sys.stderr)
        return REFUSED
    options = outcome.RunOptions(vary_seeds=args.vary_seeds, scenarios=tuple(args.scenario))
    stopped = None
    try:
        expansion = outcome.prepare(engine.load_workbook(args.model), options)
        model = expansion.model
        try:
            tests = {} if settings is None else settings.tests(model)
        except ValueError as exc:  # settings that monitor no output, refused before a trial
            print(f"--converge: {exc}", file=sys.stderr)
            return REFUSED
        evaluator = engine.make_evaluator(
            model, seed=args.seed, sampling=args.sampling, backend=args.backend
        )
        backend = evaluator.backend
        started = time.perf_counter()
        if settings is None:
            partial = engine.simulate(
                model,
                trials=args.trials,
                seed=args.seed,
                sampling=args.sampling,
                chunk_size=args.chunk_size,
                evaluator=evaluator,
            )
        else:
            partial, stopped = convergence.simulate(
                model, evaluator, settings, chunk_size=args.chunk_size
            )
            args.trials = partial.trials
    except engine.ModelError as exc:
        print(exc, file=sys.stderr)
        return REFUSED
    except OSError as exc:
        print(f"{args.model}: {exc.strerror or exc}", file=sys.stderr)
        return REFUSED
    except engine.BackendUnavailable as exc:
        print(f"--backend {args.backend}: {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    data = outcome.results_data(expansion, partial, options)
    if args.sipmath is not None:
        written = _write_sipmath(args, partial)
        if written is not None:
            print(written, file=sys.stderr)
            return REFUSED
    reports = evaluate_reports(model, partial)
    if args.json:
        summary = _summary(args, backend, elapsed, data)
        summary["reports"] = [r.to_dict() for r in reports]
        if stopped is not None:
            summary["convergence"] = stopped.to_dict(settings)
        print(json.dumps(summary))
    else:
        print(_table(args, backend, elapsed, data))
        if reports:
            print(_reports(reports))
        if stopped is not None:
            print(_convergence(stopped, settings, tests))
    return 0


def _convergence(stopped: Any, settings: Any, tests: dict[str, Any]) -> str:
    """Whether and where the run converged, and each monitored output's precision (the
    half-width of each statistic's confidence interval, in % of it when relative)."""
    every = f"checked every {settings.check_every:,} trials"
    head = (
        f"converged at {stopped.trials:,} trials ({every})"
        if stopped.converged
        else f"not converged within {settings.max_trials:,} trials ({every})"
    )
    lines = ["", head]
    for name, precision in stopped.precision.items():
        relative = tests[name].relative
        shown = ", ".join(
            f"{k} ±{_number(v)}" if v is None or not relative else f"{k} ±{100 * v:.3g}%"
            for k, v in precision.items()
        )
        mark = "converged" if stopped.passed[name] else "not converged"
        lines.append(f"  {name}: {shown} ({mark})")
    return "\n".join(lines)


def _write_sipmath(args: argparse.Namespace, partial: Any) -> str | None:
    """Write the run's SIPmath library to ``args.sipmath``; what went wrong, else None."""
    import datetime

    from services.engine import sipmath

    try:
        library = sipmath.library_of_run(
            args.model.stem,
            partial,
            seed=args.seed,
            terms=args.sipmath_terms,
            created=datetime.datetime.now(datetime.UTC).date().isoformat(),
        )
        args.sipmath.write_text(json.dumps(library, indent=1))
    except OSError as exc:
        return f"--sipmath {args.sipmath}: {exc.strerror or exc}"
    except ValueError as exc:
        return f"--sipmath {args.sipmath}: {exc}"
    return None


def _sipmath_refusal(args: argparse.Namespace) -> str | None:
    """Why the SIPmath options cannot be followed, found before any trial runs; else None."""
    if not 2 <= args.sipmath_terms <= 30:
        return f"--sipmath-terms must be within 2..30, got {args.sipmath_terms}"
    if args.sipmath is not None and not args.sipmath.parent.is_dir():
        return f"--sipmath {args.sipmath}: no such directory {args.sipmath.parent}"
    return None


def _reports(reports: list[Any]) -> str:
    """The reporting cells (RiskMean... in a cell), one per line."""
    labels = [r.address if r.name == r.address else f"{r.name} ({r.address})" for r in reports]
    width = max(map(len, labels))
    lines = ["", "reports:"]
    for label, r in zip(labels, reports, strict=True):
        lines.append(f"  {label.ljust(width)}  {r.error or f'{r.value:.6g}'}")
    return "\n".join(lines)


def _summary(
    args: argparse.Namespace, backend: str, elapsed: float, data: dict[str, Any]
) -> dict[str, Any]:
    keys = (
        "mean",
        "std",
        "min",
        "max",
        "skewness",
        "kurtosis",
        "percentiles",
        "var_95",
        "cvar_95",
        "errors",
        "simulation",
    )
    outputs = {}
    for key, out in data.items():
        entry = {k: out[k] for k in keys if k in out}
        entry["sensitivity"] = [{"input": i, "rho": rho} for i, rho in out["sensitivity"]]
        entry["contribution_to_variance"] = [
            {"input": c["name"], "share": c["share"]} for c in out["contribution"]
        ]
        entry["regression_r_squared"] = out["r_squared"]
        entry["scenarios"] = out["scenarios"]
        outputs[key] = entry
    return {
        "trials": args.trials,
        "seed": args.seed,
        "backend": backend,
        "sampling": args.sampling,
        "elapsed_seconds": elapsed,
        "trials_per_second": args.trials / elapsed if elapsed > 0 else None,
        "outputs": outputs,
        **({"simulations": _simulations(data)} if _simulations(data) else {}),
    }


def _simulations(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Each RiskSimtable simulation's values, in order (none without RiskSimtable)."""
    found = {out["simulation"]: out["simtable"] for out in data.values() if "simtable" in out}
    return [
        {"index": k, "values": [{"address": a, "value": v} for a, v in found[k]]}
        for k in sorted(found)
    ]


def _table(args: argparse.Namespace, backend: str, elapsed: float, data: dict[str, Any]) -> str:
    head = (
        f"{args.trials:,} trials, seed {args.seed}, {args.sampling}, {backend}: "
        f"{elapsed:.2f} s ({args.trials / max(elapsed, 1e-9):,.0f} trials/s)"
    )
    simulations = _simulations(data)
    several = bool(simulations)
    cols: tuple[str, ...] = ("sim", "output") if several else ("output",)
    cols += ("mean", "std", "min", "p5", "p50", "p95", "max", "errors")
    rows: list[tuple[str, ...]] = [cols]
    for r in data.values():
        p = r["percentiles"]
        shown = (r["mean"], r["std"], r["min"], p["5"], p["50"], p["95"], r["max"])
        rows.append(
            (
                *((str(r["simulation"]),) if several else ()),
                r["name"],
                *(_number(v) for v in shown),
                str(r["errors"]),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(cols))]
    lines = [head, ""]
    for row in rows:
        lines.append(
            "  ".join(
                c.ljust(w) if i <= int(several) else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    for sim in simulations:
        values = ", ".join(f"{v['address']} = {_number(v['value'])}" for v in sim["values"])
        lines.append(f"simulation {sim['index']}: {values}")
    for r in data.values():
        top = ", ".join(f"{i} {rho:+.3f}" for i, rho in r["sensitivity"][:5] if rho is not None)
        which = f" (simulation {r['simulation']})" if several else ""
        if top:
            lines.append(f"\n{r['name']}{which} sensitivity (Spearman): {top}")
        shares = [(c["name"], c["share"]) for c in r["contribution"]]
        line = contribution_line(f"{r['name']}{which}", shares, r["r_squared"])
        lines.extend([line] if line else [])
        scenarios = [
            (
                s["label"],
                s["trials"],
                [(i["name"], i["significance"], i["significant"]) for i in s["inputs"]],
            )
            for s in r["scenarios"]
        ]
        lines.extend(scenario_lines(f"{r['name']}{which}", scenarios))
    return "\n".join(lines)


def _number(value: float | None) -> str:
    """A statistic as the table shows it (an error, or no value, as ``#N/A``)."""
    return "#N/A" if value is None else f"{value:.6g}"
