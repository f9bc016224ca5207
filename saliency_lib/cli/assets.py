"""``python -m saliency_lib assets build|verify``."""

from __future__ import annotations

import sys

from ..io import assets


def add_command(subparsers) -> None:
    parser = subparsers.add_parser("assets", help="build or verify the shipped files in data/")
    actions = parser.add_subparsers(dest="action", required=True)
    build = actions.add_parser("build", help="re-make every asset from scratch (seeded)")
    build.add_argument("--only", nargs="+", metavar="FILE", help="only these files (e.g. fashion_cnn.pt)")
    build.add_argument("--no-progress", action="store_true", help="no progress bars")
    build.set_defaults(func=_build)
    verify = actions.add_parser("verify", help="check every file against data/MANIFEST.json")
    verify.set_defaults(func=_verify)
    table = actions.add_parser(
        "list", help="print the manifest as a markdown table (the asset table of docs/install.md)"
    )
    table.set_defaults(func=_list)


def _build(args) -> int:
    try:
        assets.build(only=args.only, progress=not args.no_progress)
    except (assets.AssetError, RuntimeError) as error:
        print(f"assets build failed: {error}", file=sys.stderr)
        return 1
    return 0


def _verify(args) -> int:
    problems = assets.verify()
    if problems:
        for line in problems:
            print(f"FAIL {line}", file=sys.stderr)
        return 1
    listed = assets.read_manifest()["files"]
    print(f"OK: {len(listed)} files in {assets.DATA_DIR} match {assets.MANIFEST_NAME}")
    return 0


def _list(args) -> int:
    print(assets.manifest_table())
    return 0
