"""Command line: ``python -m saliency_lib COMMAND`` (``--help`` after any command lists its options).

Commands:
    assets build [--only FILE ...]   re-make the shipped files in data/ (seeded; needs Fashion-MNIST)
    assets verify                    check data/ against data/MANIFEST.json; non-zero naming each bad file
    assets list                      print the manifest as a markdown table (the asset table of docs/install.md)
    explain IMAGE ...                a saliency map of one image file (OISE or RISE) saved as a figure
    trust [NOTEBOOK_OR_FOLDER ...]   trust the tutorial's notebooks for this user, so JupyterLab draws their saved
                                     panels (default: notebooks/ and work/ in the current folder)

The research bench's commands (evaluation suites, Part B's experiment, folders under torchrun) are
``python -m saliency_research COMMAND``.

Each command lives in a thin module of this package (:data:`COMMANDS`) that parses its arguments and calls the library.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Each entry: a module with `add_command(subparsers)`; the subparser sets `func(args) -> int`.
COMMANDS = [
    "saliency_lib.cli.assets",
    "saliency_lib.cli.explain",
    "saliency_lib.cli.trust",
]


def build_parser(
    commands: list[str] = COMMANDS, prog: str = "python -m saliency_lib", doc: str = __doc__, **options
) -> argparse.ArgumentParser:
    """One subcommand per module of ``commands`` (each has ``add_command(subparsers)``); ``options`` go to
    :class:`argparse.ArgumentParser`. The research bench's command line is built the same way."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.split("\n")[0], **options)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in commands:
        importlib.import_module(module).add_command(subparsers)
    return parser


def run(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; Ctrl+C ends it with one line and exit code 130."""
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(), argv)
