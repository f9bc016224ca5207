"""Command line: ``python -m saliency_lib COMMAND``.

Commands:
    assets build [--only FILE ...]   re-make the shipped files in data/ (seeded; needs Fashion-MNIST)
    assets verify                    check data/ against data/MANIFEST.json; non-zero naming each bad file

Other modules add their own commands through :data:`COMMANDS` (module path -> function adding a subparser).
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Each entry: a module with `add_command(subparsers)`; the subparser sets `func(args) -> int`.
COMMANDS = [
    "saliency_lib.cli_assets",
    "saliency_lib.cli_explain",
    "saliency_lib.cli_benchmark",
    "saliency_lib.cli_reconstruct",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m saliency_lib", description=__doc__.split("\n")[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        importlib.import_module(module).add_command(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
