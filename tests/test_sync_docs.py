"""The numbers the README, docs and notebook 04 quote are the results files' own: cog's check over every generated
block (``saliency_research/bench/sync_docs.py``; ``make docs`` rewrites them)."""

from __future__ import annotations

import io
from pathlib import Path

from cogapp import Cog

from saliency_research.bench import sync_docs

REPO = Path(__file__).resolve().parent.parent

# the files `make docs` gives cog (the same globs)
DOCUMENTS = ["README.md", "docs/*.md", "notebooks/*.md", "notebooks/*.ipynb"]


def test_every_block_is_current_and_every_block_is_used(monkeypatch):
    """``cog --check`` through cog's API; the blocks it wrote are recorded, so a block no file uses (or a file cog
    did not read) fails too."""
    written = []
    for name, make in list(sync_docs.BLOCKS.items()):
        monkeypatch.setitem(sync_docs.BLOCKS, name, lambda name=name, make=make: written.append(name) or make())
    monkeypatch.chdir(REPO)
    cog, output = Cog(), io.StringIO()
    cog.set_output(stdout=output, stderr=output)
    status = cog.main(["cog", "--check", "--diff", "--verbosity=1", "-n", "utf-8", *DOCUMENTS])
    assert status == 0, f"stale generated blocks (run `make docs` and read the diff):\n{output.getvalue()}"
    assert set(written) == set(sync_docs.BLOCKS), f"blocks no file uses: {set(sync_docs.BLOCKS) - set(written)}"
