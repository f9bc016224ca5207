"""``benchmarks/sync_docs.py``: the numbers the README, docs and notebooks quote are the results files' own."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import sync_docs  # noqa: E402


def test_every_generated_block_is_current():
    stale = sync_docs.sync(check=True)
    assert not stale, f"stale generated blocks {stale}: run python benchmarks/sync_docs.py and read the diff"


def test_every_block_is_used_and_every_used_block_is_known():
    found = sync_docs.blocks_in()
    assert set(found) == set(sync_docs.BLOCKS), f"unused: {set(sync_docs.BLOCKS) - set(found)}, found: {found}"
    assert "saliency_card.md" in found["protocol-choices-card"]
    assert "04_evaluation.ipynb" in found["protocol-choices-notebook"]


def test_a_changed_number_is_caught_and_rewritten(tmp_path):
    card = tmp_path / "card.md"
    shutil.copy(REPO / "docs" / "saliency_card.md", card)
    good = card.read_text()
    block = sync_docs.BLOCKS["protocol-choices-card"]()
    number = next(token for token in block.split() if token.startswith("+0.0"))
    card.write_text(good.replace(block, block.replace(number, "+0.999", 1)))
    assert sync_docs.sync([card], check=True) == [f"{card}: protocol-choices-card"]
    assert "+0.999" in card.read_text()  # check changes nothing
    assert sync_docs.sync([card]) == [f"{card}: protocol-choices-card"]
    assert card.read_text() == good


def test_a_notebook_block_is_rewritten_in_its_markdown_cell(tmp_path):
    notebook = tmp_path / "nb.ipynb"
    cell = "intro\n\n<!-- generated:demo (python benchmarks/sync_docs.py) -->\nold\n<!-- /generated:demo -->\nafter"
    notebook.write_text(json.dumps({"cells": [{"cell_type": "markdown", "metadata": {}, "source": [cell]}]}))
    blocks = {"demo": lambda: "new text\nline 2"}
    assert sync_docs.sync([notebook], check=True, blocks=blocks) == [f"{notebook} cell 0: demo"]
    assert sync_docs.sync([notebook], blocks=blocks)
    source = "".join(json.loads(notebook.read_text())["cells"][0]["source"])
    assert source == cell.replace("\nold\n", "\nnew text\nline 2\n")
    assert sync_docs.sync([notebook], check=True, blocks=blocks) == []


def test_an_unknown_block_names_the_file_and_the_known_blocks(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- generated:nope (python benchmarks/sync_docs.py) -->\nx\n<!-- /generated:nope -->\n")
    with pytest.raises(KeyError, match="unknown generated block 'nope'; known: asset-table, "):
        sync_docs.sync([page], check=True)
