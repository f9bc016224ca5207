"""Reports: one summary statistic (Student t from scipy), the evaluation's tables, result files."""

import json

import pytest
import torch

from saliency_lib import reports
from saliency_lib.datasets import DATASETS


def test_summarise_uses_student_t():
    summary = reports.summarise(torch.tensor([1.0, 2.0, 3.0]))
    assert summary["mean"] == 2.0 and summary["n"] == 3
    assert summary["ci95"] == pytest.approx([2 - 4.303 / 3 ** 0.5, 2 + 4.303 / 3 ** 0.5], abs=1e-3)
    with pytest.raises(ValueError):
        reports.summarise(torch.tensor([]))


def test_summarise_is_student_t_beyond_thirty_images_too():
    values = torch.arange(100, dtype=torch.float64)
    summary = reports.summarise(values)
    half = 1.9842 * values.std().item() / 10   # t(0.975, 99), not the normal 1.96
    assert summary["ci95"] == pytest.approx([49.5 - half, 49.5 + half], abs=1e-3)


def test_the_committed_markdown_is_the_tables_of_the_committed_json():
    payload = reports.load_results("full")
    table = (reports.RESULTS_DIR / "evaluation_full.md").read_text()
    assert table == reports.evaluation_markdown(payload, DATASETS) + "\n"
    assert "| oise |" in table and "## photos" in table and "Per image" in table


def test_write_then_load_results(tmp_path):
    payload = {"suite": "quick", "records": [], "settings": {}}
    json_path, md_path = reports.write_results(payload, "# table", "evaluation_quick", tmp_path / "out")
    assert json.loads(json_path.read_text()) == payload and md_path.read_text() == "# table\n"
    assert reports.load_results("quick", tmp_path / "out") == payload
    with pytest.raises(FileNotFoundError, match="python -m saliency_lib evaluate --suite full"):
        reports.load_results("full", tmp_path)
