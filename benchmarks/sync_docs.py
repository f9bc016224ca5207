"""Write the numbers that the README, the docs and the notebooks' markdown quote from the results files, or check
that they are current.

A generated block sits between two markers, in a markdown file or in a notebook's markdown cell::

    <!-- generated:NAME (python benchmarks/sync_docs.py) -->
    ...text written by BLOCKS[NAME] from benchmarks/results...
    <!-- /generated:NAME -->

Usage::

    python benchmarks/sync_docs.py           # rewrite every block from the results files
    python benchmarks/sync_docs.py --check   # exit 1 and name each block whose text is stale

``make test`` runs the check (``tests/test_sync_docs.py``), so a re-run of an experiment cannot leave a stale copy of
its numbers behind: re-run, then ``python benchmarks/sync_docs.py``, then read the diff.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
sys.path.insert(0, str(REPO / "benchmarks"))

import protocol_choices  # noqa: E402


def _results(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


# name -> the text of the block, written from the results files (one function per block, no number typed here)
BLOCKS: dict[str, Callable[[], str]] = {
    "protocol-choices-card": lambda: protocol_choices.card_text(_results("protocol_choices.json")),
    "protocol-choices-notebook": lambda: protocol_choices.notebook_text(_results("protocol_choices.json")),
}

BLOCK = re.compile(
    r"(?P<open><!-- generated:(?P<name>[\w-]+) \(python benchmarks/sync_docs\.py\) -->\n)"
    r"(?P<body>.*?)"
    r"(?P<close>\n<!-- /generated:(?P=name) -->)",
    re.DOTALL,
)


def documents(repo: Path = REPO) -> list[Path]:
    """The files that may hold generated blocks: README, docs, notebooks and their README."""
    return [
        repo / "README.md",
        *sorted((repo / "docs").glob("*.md")),
        *sorted((repo / "notebooks").glob("*.md")),
        *sorted((repo / "notebooks").glob("*.ipynb")),
    ]


def _rewrite(text: str, texts: dict[str, str], stale: list[str], where: str) -> str:
    def replace(match: re.Match) -> str:
        name = match["name"]
        if name not in texts:
            raise KeyError(f"{where}: unknown generated block {name!r}; known: {', '.join(sorted(texts))}")
        if match["body"] != texts[name]:
            stale.append(f"{where}: {name}")
        return match["open"] + texts[name] + match["close"]

    return BLOCK.sub(replace, text)


def sync(paths: list[Path] | None = None, *, check: bool = False, blocks: dict | None = None) -> list[str]:
    """Rewrite (or, with ``check``, only compare) every generated block of ``paths``; returns the stale ones as
    ``"<file>: <block>"`` (with ``check=False`` they are rewritten)."""
    texts = {name: make() for name, make in (blocks or BLOCKS).items()}
    stale: list[str] = []
    for path in paths if paths is not None else documents():
        if not path.exists():
            continue
        where = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
        raw = path.read_text()
        if path.suffix == ".ipynb":
            notebook = json.loads(raw)
            changed = False
            for index, cell in enumerate(notebook["cells"]):
                if cell["cell_type"] != "markdown":
                    continue
                source = "".join(cell["source"])
                new = _rewrite(source, texts, stale, f"{where} cell {index}")
                if new != source:
                    lines = new.split("\n")
                    cell["source"] = [line + "\n" for line in lines[:-1]] + [lines[-1]]
                    changed = True
            if changed and not check:
                path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
        else:
            new = _rewrite(raw, texts, stale, where)
            if new != raw and not check:
                path.write_text(new)
    return stale


def blocks_in(paths: list[Path] | None = None) -> dict[str, list[str]]:
    """Block name -> the files that hold it."""
    found: dict[str, list[str]] = {}
    for path in paths if paths is not None else documents():
        if not path.exists():
            continue
        if path.suffix == ".ipynb":
            cells = json.loads(path.read_text())["cells"]
            texts = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
        else:
            texts = [path.read_text()]
        for text in texts:
            for match in BLOCK.finditer(text):
                found.setdefault(match["name"], []).append(path.name)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block is stale")
    args = parser.parse_args(argv)
    stale = sync(check=args.check)
    for entry in stale:
        print(("stale: " if args.check else "rewrote: ") + entry)
    if args.check and stale:
        print("run: python benchmarks/sync_docs.py (then read the diff)")
        return 1
    print(f"{len(BLOCKS)} blocks, {'all current' if not stale else f'{len(stale)} changed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
