"""``alea fit``: fit @RISK distributions to a column of a CSV or XLSX file on this machine."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.cli.run import REFUSED, _seed

if TYPE_CHECKING:
    from services.engine.fitting import Fit, Report

PLOTTED = 4  # fits drawn in --plot, best AIC first


def register(subparsers: Any) -> None:
    """Add ``alea fit`` to the ``alea`` command."""
    parser = subparsers.add_parser(
        "fit", help="fit distributions to a dataset locally", description=__doc__
    )
    parser.add_argument("data", type=Path, help="a .csv or .xlsx file")
    parser.add_argument(
        "--column", default="", help="the column's header, or its position (1 for the first)"
    )
    parser.add_argument("--sheet", default="", help="XLSX: the worksheet (default: the first)")
    parser.add_argument(
        "--kind",
        choices=("auto", "continuous", "discrete"),
        default="auto",
        help="auto: counting families for whole numbers >= 0, else continuous",
    )
    parser.add_argument(
        "--replicates", type=int, default=None, help="bootstrap replicates per p-value (0: none)"
    )
    parser.add_argument("--seed", type=_seed, default=0, help="the bootstrap's seed")
    parser.add_argument("--plot", type=Path, help="write histogram, P-P and Q-Q plots here")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=fit)


def fit(args: argparse.Namespace) -> int:
    """Read the column, fit, print the table; a refused dataset exits with status 2."""
    # Imported here: the engine (NumPy, SciPy) would slow every other ``alea`` command.
    from services.engine import fitting
    from services.engine.fitting import dataset

    try:
        data = args.data.read_bytes()
        column = _column(data, args.column, args.sheet)
        replicates = fitting.DEFAULT_REPLICATES if args.replicates is None else args.replicates
        report = fitting.fit(column.values, fitting.Kind(args.kind), replicates, args.seed)
    except OSError as exc:
        print(f"{args.data}: {exc.strerror or exc}", file=sys.stderr)
        return REFUSED
    except dataset.DatasetError as exc:
        print(f"{args.data}: {exc.field}: {exc.reason}", file=sys.stderr)
        return REFUSED
    except fitting.FitError as exc:
        print(f"{args.data}: {exc}", file=sys.stderr)
        return REFUSED
    if args.json:
        print(json.dumps(_json(column.name, report), indent=2))
    else:
        _print(column.name, report)
    if args.plot:
        plot(column.values, report, args.plot)
        print(f"plot: {args.plot}", file=sys.stderr)
    return 0


def _column(data: bytes, column: str, sheet: str) -> Any:
    """By header; a number that is no header is a position."""
    from services.engine.fitting.dataset import DatasetError, read_column

    if not column:
        return read_column(data, sheet=sheet)
    try:
        return read_column(data, column_name=column, sheet=sheet)
    except DatasetError as exc:
        if exc.field != "column_name" or not column.isdigit():
            raise
    return read_column(data, column_index=int(column), sheet=sheet)


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _print(name: str, report: Report) -> None:
    kind = "counts" if report.discrete else "continuous"
    print(
        f"{name}: {report.count} values ({kind}), mean {report.mean:.6g}, sd {report.sd:.6g}, "
        f"min {report.minimum:.6g}, max {report.maximum:.6g}"
    )
    header = (
        "rank",
        "formula",
        "AIC",
        "BIC",
        "BIC rank",
        "KS",
        "KS p",
        "AD",
        "AD p",
        "chi2",
        "chi2 p",
    )
    rows = [
        (
            str(f.aic_rank),
            f.formula,
            f"{f.aic:.1f}",
            f"{f.bic:.1f}",
            str(f.bic_rank),
            _number(f.ks),
            _number(f.ks_p, 2),
            _number(f.ad),
            _number(f.ad_p, 2),
            _number(f.chi_square),
            _number(f.chi_square_p, 2),
        )
        for f in report.fits
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [
            c.ljust(w) if i == 1 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
    replicates = max((f.replicates for f in report.fits), default=0)
    if replicates:
        print(f"p-values: parametric bootstrap, {replicates} replicates per fit")
    for function, reason in report.skipped:
        print(f"not fitted: {function}: {reason}")


def _json(name: str, report: Report) -> dict[str, Any]:
    def one(f: Fit) -> dict[str, Any]:
        return {
            "function": f.function,
            "parameters": dict(f.params),
            "formula": f.formula,
            "log_likelihood": f.log_likelihood,
            "aic": f.aic,
            "bic": f.bic,
            "aic_rank": f.aic_rank,
            "bic_rank": f.bic_rank,
            "ks": f.ks,
            "ks_p": f.ks_p,
            "ad": f.ad,
            "ad_p": f.ad_p,
            "chi_square": f.chi_square,
            "chi_square_p": f.chi_square_p,
            "chi_square_bins": f.chi_square_bins,
            "bootstrap_replicates": f.replicates,
            "pp": f.pp,
            "qq": f.qq,
        }

    return {
        "column": name,
        "count": report.count,
        "discrete": report.discrete,
        "mean": report.mean,
        "sd": report.sd,
        "min": report.minimum,
        "max": report.maximum,
        "fits": [one(f) for f in report.fits],
        "skipped": dict(report.skipped),
    }


def plot(values: Any, report: Report, path: Path) -> None:
    """The data's histogram with the best fits' densities (probabilities for counts), and
    their P-P and Q-Q plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from services.engine.fitting.families import CANDIDATES

    scipy_of = {c.name: c.scipy for c in CANDIDATES}
    shown = report.fits[:PLOTTED]
    figure, (hist_ax, pp_ax, qq_ax) = plt.subplots(1, 3, figsize=(18, 5))
    if report.discrete:
        support = np.arange(report.minimum, report.maximum + 1.0)
        counts = np.bincount((values - report.minimum).astype(np.int64), minlength=len(support))
        hist_ax.bar(support, counts / report.count, color="lightgray", label="data")
        for f in shown:
            dist = scipy_of[f.distribution](*(v for _, v in f.params))
            hist_ax.plot(support, dist.pmf(support), marker="o", linewidth=1, label=f.formula)
    else:
        hist_ax.hist(values, bins="auto", density=True, color="lightgray", label="data")
        grid = np.linspace(report.minimum, report.maximum, 400)
        for f in shown:
            dist = scipy_of[f.distribution](*(v for _, v in f.params))
            hist_ax.plot(grid, dist.pdf(grid), label=f.formula)
    hist_ax.set(title="data and fitted densities", xlabel="value", ylabel="density")
    for f in shown:
        pp_ax.plot(*zip(*f.pp, strict=True), marker=".", linewidth=0.8, label=f.function)
        qq_ax.plot(*zip(*f.qq, strict=True), marker=".", linewidth=0.8, label=f.function)
    pp_ax.plot([0, 1], [0, 1], color="black", linewidth=0.8)
    low, high = report.minimum, report.maximum
    qq_ax.plot([low, high], [low, high], color="black", linewidth=0.8)
    pp_ax.set(title="P-P", xlabel="empirical probability", ylabel="fitted probability")
    qq_ax.set(title="Q-Q", xlabel="data quantile", ylabel="fitted quantile")
    for ax in (hist_ax, pp_ax, qq_ax):
        ax.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
