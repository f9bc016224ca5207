"""SaliencyResult, what every saliency method returns: the maps with their metadata, kept through indexing."""

from __future__ import annotations

import pytest
import torch

from saliency_lib import SaliencyResult
from saliency_lib.evaluation import metrics
from saliency_lib.method.oise_method import Recorder


def _result(**fields) -> SaliencyResult:
    maps = torch.arange(4 * 3 * 2, dtype=torch.float32).view(4, 3, 2)
    defaults = dict(maps=maps, model_calls=12, target=torch.tensor([0, 1, 2, 3]), partial=True, steps_done=6)
    return SaliencyResult(**{**defaults, **fields})


def test_indexing_keeps_every_field_and_the_batch_axis():
    result = _result(seconds=1.5)
    for index, rows in ((2, [2]), (-1, [3]), (slice(1, 3), [1, 2]), ([3, 0], [3, 0]), (torch.tensor([1]), [1])):
        part = result[index]
        assert torch.equal(part.maps, result.maps[rows]) and part.target.tolist() == rows
        assert (part.model_calls, part.partial, part.steps_done, part.seconds) == (12, True, 6, 1.5)
    mask = torch.tensor([True, False, False, True])
    assert result[mask].target.tolist() == [0, 3]
    assert len(result) == 4 and [len(r) for r in result] == [1, 1, 1, 1]
    with pytest.raises(IndexError):
        result[4]


def test_the_maps_stay_a_plain_tensor():
    result = _result()
    for changed in (result.maps[0], result.maps.clone(), result.maps * 1, result[1].maps):
        assert type(changed) is torch.Tensor and not hasattr(changed, "model_calls")
    assert result[1].model_calls == 12 and result[1].partial  # the metadata lives on the result


def test_the_result_is_frozen_and_checks_its_shapes():
    result = _result()
    with pytest.raises(AttributeError):
        result.model_calls = 3
    with pytest.raises(ValueError, match=r"maps must be a \(B, H, W\)"):
        _result(maps=torch.zeros(4, 1, 3, 2))
    with pytest.raises(ValueError, match=r"target must be a \(4,\) tensor"):
        _result(target=torch.tensor([0, 1]))


def test_cpu_and_to_move_maps_and_target():
    moved = _result().to("cpu")
    assert moved.maps.device.type == moved.target.device.type == "cpu" and moved.model_calls == 12
    assert _result().cpu().steps_done == 6


def test_indexing_selects_the_history_of_those_images():
    history = Recorder(every=1, steps=[1, 2], p=[torch.rand(4, 2), torch.rand(4, 2)])
    part = _result(history=history)[[1, 3]]
    assert part.history.steps == [1, 2]
    assert torch.equal(part.history.p[1], history.p[1][[1, 3]]) and len(history.p[0]) == 4  # the original kept


def test_repr_is_one_short_line():
    text = repr(_result(target=torch.arange(10), maps=torch.zeros(10, 3, 2)))
    assert text.startswith("SaliencyResult(maps=float32 (10, 3, 2) on cpu, model_calls=12, target=[0, 1, 2")
    assert "..." in text and "\n" not in text


def test_a_metric_given_a_result_says_to_pass_its_maps():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 2))
    images = torch.rand(4, 1, 3, 2)
    with pytest.raises(TypeError, match=r"got SaliencyResult; pass its maps: maps=result.maps"):
        metrics.deletion(model, images, _result(), pixels_per_step=2)
