"""The budget curve's post-processing rows and the suites' scoring protocol (issue 29)."""

import pytest
import torch

from saliency_lib.method import masks as M
from saliency_research import budget_report as B
from saliency_research.suites import SUITES, method_options


def raw_maps():
    return torch.rand(3, 12, 12, generator=torch.Generator().manual_seed(0)) * 50 + 20


def test_every_post_processing_treats_oise_and_rise_alike_except_the_published_one():
    raw = raw_maps()
    for name, fraction in B.POSTPROCESSING.items():
        oise_maps, rise_maps = B.postprocess_maps(raw, name, "oise_1chain"), B.postprocess_maps(raw, name, "rise")
        assert torch.equal(oise_maps, rise_maps), name
        assert torch.equal(oise_maps, raw if fraction is None else M.postprocess(raw, mean_fraction=fraction))
    assert torch.equal(B.postprocess_maps(raw, B.PUBLISHED, "oise_8chains"), M.postprocess(raw))
    assert torch.equal(B.postprocess_maps(raw, B.PUBLISHED, "rise"), raw)
    with pytest.raises(ValueError, match="name must be one of"):
        B.postprocess_maps(raw, "clip", "rise")


def test_the_suites_score_oises_raw_sum_as_rises_raw_map():
    for plan in SUITES["quick"]:
        if "oise" in plan.methods:
            assert method_options(plan, "oise", 0)["postprocess"] is False
            assert "postprocess" not in method_options(plan, "rise", 0)


def summary(mean):
    return {"mean": mean, "ci95": [mean - 0.01, mean + 0.01], "std": 0.01, "n": 10}


def test_catch_up_reads_one_post_processing_at_a_time():
    records = []
    for post, sign in (("raw", -1), (B.PUBLISHED, +1)):
        for budget in (100, 5000):
            records.append(
                {
                    "dataset": "clutter",
                    "method": "oise_1chain",
                    "postprocess": post,
                    "budget": budget,
                    "metrics": {"energy": summary(0.5)},
                    "vs_rise": {"energy": summary(sign * 0.1)},
                }
            )
    rows = B.catch_up({"records": records})
    assert [r["verdicts"] for r in rows] == [[(100, "RISE better"), (5000, "RISE better")]]
    both = B.catch_up({"records": records}, postprocess=None)
    assert {r["postprocess"]: r["never_worse_from"] for r in both} == {"raw": None, B.PUBLISHED: 100}
