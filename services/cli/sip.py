"""``alea sip``: a SIPmath 3.0 library as model inputs, in a workbook.

The library's SIPs are generated as every SIPmath tool generates them (HDR generators,
Gaussian copulas, metalogs: ``services.engine.sipmath.expand``) into the sheet ``SIPs``, one
column per variable; the sheet ``Inputs`` holds one uncertain cell per variable,
``=RiskResample(1, SIPs!$B$2:$B$10001, RiskName("Cost"))``, which takes the SIP's values in
order. Trial t of every variable is then the library's trial t + 1, so the variables keep the
library's joint distribution (coherence); a model refers to the cells of ``Inputs``.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import Any

from services.cli.run import REFUSED

MAX_TRIALS = 1_000_000  # a column of the workbook; more would outgrow the workbook limit


def register(subparsers: Any) -> None:
    """Add ``alea sip`` to the ``alea`` command."""
    parser = subparsers.add_parser(
        "sip", help="write a SIPmath 3.0 library's SIPs as model inputs", description=__doc__
    )
    parser.add_argument("library", type=Path, help="the SIPmath 3.0 library (.json)")
    parser.add_argument("workbook", type=Path, help="the .xlsx to write")
    parser.add_argument(
        "--trials",
        type=_trials,
        default=10_000,
        help=f"trials of each SIP (1 to {MAX_TRIALS:,}; default 10,000)",
    )
    parser.set_defaults(func=sip)


def _trials(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_TRIALS:
        raise argparse.ArgumentTypeError(f"must be an integer in 1..{MAX_TRIALS:,}, got {text}")
    return value


def sip(args: argparse.Namespace) -> int:
    """Expand the library and write the workbook; a library it cannot read exits with 2."""
    import numpy as np
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    from services.engine import guard, sipmath
    from services.engine.errors import WorkbookRejected

    try:
        library = json.loads(args.library.read_bytes())
        sips = sipmath.expand(library, args.trials)
    except OSError as exc:
        print(f"{args.library}: {exc.strerror or exc}", file=sys.stderr)
        return REFUSED
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        print(f"{args.library}: not JSON: {exc}", file=sys.stderr)
        return REFUSED
    except sipmath.LibraryError as exc:
        print(f"{args.library}: {exc}", file=sys.stderr)
        return REFUSED
    if not sips:
        print(f"{args.library}: sips: the library has none", file=sys.stderr)
        return REFUSED
    for name, values in sips.items():
        if not np.all(np.isfinite(values)):
            print(f"{args.library}: {name}: its metalog is not finite everywhere", file=sys.stderr)
            return REFUSED
    book = Workbook()
    inputs = book.active
    inputs.title = "Inputs"
    inputs.append(["Variable", "Input (a SIP, in order)"])
    data = book.create_sheet("SIPs")
    last = args.trials + 1
    for column, (name, values) in enumerate(sips.items(), start=1):
        letter = get_column_letter(column)
        data.cell(1, column, name)
        for row, value in enumerate(values.tolist(), start=2):
            data.cell(row, column, value)
        label = name.replace('"', '""')
        formula = f'=RiskResample(1,SIPs!${letter}$2:${letter}${last},RiskName("{label}"))'
        inputs.append([name, formula])
    data = io.BytesIO()
    book.save(data)
    try:  # what the engine would refuse to read, refused here
        guard.check_workbook(data.getvalue())
    except WorkbookRejected as exc:
        print(
            f"{args.workbook}: {len(sips)} SIPs of {args.trials:,} trials do not fit one "
            f"workbook ({exc}); ask for fewer --trials",
            file=sys.stderr,
        )
        return REFUSED
    try:
        args.workbook.write_bytes(data.getvalue())
    except OSError as exc:
        print(f"{args.workbook}: {exc.strerror or exc}", file=sys.stderr)
        return REFUSED
    print(
        f"{args.workbook}: {len(sips)} SIPs of {args.trials:,} trials; the model's inputs are "
        f"Inputs!B2:B{len(sips) + 1}"
    )
    return 0
