"""The ``alea`` command: one entry point whose subcommands live in sibling modules."""

from __future__ import annotations

import argparse
import importlib
import sys

# Each module registers its subcommands with ``register(subparsers)`` and sets
# ``func`` (returning an exit status) on the parsers it adds.
COMMAND_MODULES = (
    "services.cli.mesh",
    "services.cli.run",
    "services.cli.fit",
    "services.cli.sip",
    "services.cli.simulate",
    "services.cli.events",
    "services.cli.admin",
    "services.cli.usage",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alea", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
