"""Reports: one summary statistic (Student t from scipy), the evaluation's tables, result files."""

import json

import pytest
import torch

from saliency_lib.evaluation.datasets import DATASETS
from saliency_research import reports


def test_summarise_uses_student_t():
    summary = reports.summarise(torch.tensor([1.0, 2.0, 3.0]))
    assert summary["mean"] == 2.0 and summary["n"] == 3
    assert summary["ci95"] == pytest.approx([2 - 4.303 / 3**0.5, 2 + 4.303 / 3**0.5], abs=1e-3)
    with pytest.raises(ValueError):
        reports.summarise(torch.tensor([]))


def test_summarise_is_student_t_beyond_thirty_images_too():
    values = torch.arange(100, dtype=torch.float64)
    summary = reports.summarise(values)
    half = 1.9842 * values.std().item() / 10  # t(0.975, 99), not the normal 1.96
    assert summary["ci95"] == pytest.approx([49.5 - half, 49.5 + half], abs=1e-3)


def test_the_committed_markdown_is_the_tables_of_the_committed_json():
    # Every committed evaluation file: each dataset's own reference (evaluation_<suite>.json) and the authors' mean
    # kept as a labelled variant (evaluation_<suite>_mean.json).
    # (evaluation_boxes.* is written by the boxes suite in its own layout; tests/test_boxes_suite.py checks it.)
    stems = sorted(
        p.stem for p in reports.RESULTS_DIR.glob("evaluation_*.json") if not p.stem.startswith("evaluation_boxes")
    )
    assert "evaluation_full_mean" in stems
    for stem in stems:
        payload = json.loads((reports.RESULTS_DIR / f"{stem}.json").read_text())
        table = (reports.RESULTS_DIR / f"{stem}.md").read_text()
        assert table == reports.evaluation_markdown(payload, DATASETS) + "\n", stem
        assert "| oise |" in table and "Reference (masked pixels" in table, stem
        assert all("reference" in r for r in payload["records"]), stem
        if stem.endswith("_mean"):
            assert {r["reference"] for r in payload["records"]} == {"mean"}, stem
    assert "## photos" in (reports.RESULTS_DIR / "evaluation_full_mean.md").read_text()


def test_write_then_load_results(tmp_path):
    payload = {"suite": "quick", "records": [], "settings": {}}
    json_path, md_path = reports.write_results(payload, "# table", "evaluation_quick", tmp_path / "out")
    assert json.loads(json_path.read_text()) == payload and md_path.read_text() == "# table\n"
    assert reports.load_results("quick", tmp_path / "out") == payload
    with pytest.raises(FileNotFoundError, match="python -m saliency_research evaluate --suite full"):
        reports.load_results("full", tmp_path)


def _payload(suite: str, budget: int, means: dict) -> dict:
    """An evaluation payload with one dataset and the given method -> (deletion, insertion) means."""

    def summary(mean):
        return {"mean": mean, "ci95": [mean - 0.01, mean + 0.01], "std": 0.1, "n": 10}

    return {
        "suite": suite,
        "settings": {"plans": [{"dataset": "fashion", "oise_rise_budget": budget}]},
        "records": [
            {"dataset": "fashion", "method": method, "metrics": {"deletion": summary(d), "insertion": summary(i)}}
            for method, (d, i) in means.items()
        ],
    }


def test_ranking_puts_lower_deletion_and_higher_insertion_first():
    payload = _payload("paper", 5000, {"oise": (0.3, 0.8), "rise": (0.2, 0.9), "random": (0.5, 0.5)})
    assert reports.ranking(payload["records"], "fashion", "deletion") == ["rise", "oise", "random"]
    assert reports.ranking(payload["records"], "fashion", "insertion") == ["rise", "oise", "random"]


def test_budget_comparison_reads_both_suites_and_ranks_oise_in_the_second():
    low = _payload("full", 300, {"oise": (0.34, 0.79), "rise": (0.24, 0.87)})
    high = _payload("paper", 5000, {"oise": (0.15, 0.95), "rise": (0.20, 0.90), "gradcam": (0.10, 0.85)})
    rows = [line for line in reports.budget_comparison_markdown(low, high).splitlines() if line.startswith("| fashion")]
    assert len(rows) == 2  # deletion, insertion; no pointing game measured: no row
    deletion = rows[0].split(" | ")
    assert deletion[0] == "| fashion (300 -> 5000 calls)" and deletion[1] == "deletion"
    assert deletion[2:6] == [
        "0.340 [0.330, 0.350]",
        "0.150 [0.140, 0.160]",
        "0.240 [0.230, 0.250]",
        "0.200 [0.190, 0.210]",
    ]
    assert deletion[6:] == ["2 of 3", "gradcam |"]
    assert rows[1].split(" | ")[6:] == ["1 of 3", "oise |"]


def test_budget_comparison_gives_tied_methods_one_rank():
    low = _payload("full", 300, {"oise": (0.5, 0.9), "rise": (0.5, 0.9)})
    high = _payload("paper", 5000, {"rise": (0.1, 0.9), "oise": (0.1, 0.9), "random": (0.5, 0.5)})
    rows = [
        line.split(" | ")
        for line in reports.budget_comparison_markdown(low, high).splitlines()
        if line.startswith("| fashion")
    ]
    assert rows[0][6:] == ["1 of 3", "oise = rise |"] and rows[1][6:] == ["1 of 3", "oise = rise |"]
