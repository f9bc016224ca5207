"""The evaluation's datasets: deterministic cluttered canvases with true boxes, planted checkerboards, photo boxes."""

import pytest
import torch

from saliency_lib.evaluation import datasets
from saliency_lib.evaluation.datasets import CANVAS_SIZE, make_canvases, planted_canvases
from saliency_lib.io import assets
from saliency_lib.io.data import fashion_sample
from saliency_lib.io.models import PLANT_SIZE, checkerboard


@pytest.fixture(scope="module")
def sample():
    return fashion_sample(n_per_class=20)


def test_same_seed_same_canvases_other_seed_other_canvases(sample):
    items, labels = sample
    a = make_canvases(items, labels, 12, seed=4)
    b = make_canvases(items, labels, 12, seed=4)
    c = make_canvases(items, labels, 12, seed=5)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a.images, c.images)
    assert a.images.shape == (12, 1, CANVAS_SIZE, CANVAS_SIZE) and a.images.min() >= 0 and a.images.max() <= 1
    # Chunked construction draws the same way as one chunk? Not promised; but chunking must stay deterministic.
    d = make_canvases(items, labels, 12, seed=4, chunk=5)
    assert torch.equal(d.images, make_canvases(items, labels, 12, seed=4, chunk=5).images)


def test_the_box_is_the_item_and_clutter_stays_out_of_its_square(sample):
    items, labels = sample
    data = make_canvases(items, labels, 40, seed=0)
    assert torch.equal(data.labels, labels[data.source])
    for image, box, source in zip(data.images[:, 0], data.boxes, data.source):
        item = items[source, 0]
        ink = item > 0.1
        ys, xs = torch.nonzero(ink, as_tuple=True)
        top, left = int(box[1]) - int(ys.min()), int(box[0]) - int(xs.min())
        # Tight box: its size is the item's ink extent ...
        assert int(box[3] - box[1]) == int(ys.max() - ys.min() + 1)
        assert int(box[2] - box[0]) == int(xs.max() - xs.min() + 1)
        # ... and the item's whole 28 x 28 square on the canvas is exactly the item (no clutter inside).
        assert torch.equal(image[top : top + 28, left : left + 28], item)
    outside = data.images[:, 0].clone()
    for image, (x0, y0, x1, y1) in zip(outside, data.boxes.tolist()):
        image[y0:y1, x0:x1] = 0
    assert (outside.flatten(1).amax(1) > 0.3).float().mean() > 0.9  # clutter is there, outside the box


def test_bad_inputs_are_named(sample):
    items, labels = sample
    with pytest.raises(ValueError, match="items"):
        make_canvases(items[:, :, :20], labels, 3)
    with pytest.raises(ValueError, match="size"):
        make_canvases(items, labels, 3, size=30)
    with pytest.raises(ValueError, match="n must"):
        make_canvases(items, labels, 0)
    with pytest.raises(ValueError, match="labels"):
        make_canvases(items, labels[:-1], 3)


def test_planted_canvases_hold_the_checkerboard_in_their_box(sample):
    items, labels = sample
    data = planted_canvases(items, labels, 8, seed=3)
    assert (data.labels == 1).all() and data.images.shape == (8, 1, CANVAS_SIZE, CANVAS_SIZE)
    for image, (x0, y0, x1, y1) in zip(data.images[:, 0], data.boxes.tolist()):
        assert (x1 - x0, y1 - y0) == (PLANT_SIZE, PLANT_SIZE)
        assert torch.equal(image[y0:y1, x0:x1], checkerboard())
    again = planted_canvases(items, labels, 8, seed=3)
    assert torch.equal(again.images, data.images) and torch.equal(again.boxes, data.boxes)


def test_photo_boxes_are_the_code_boxes_and_hash_checked(tmp_path):
    names, boxes, payload = datasets.photo_boxes()
    assert names == list(datasets.PHOTO_BOXES)
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 224).all() and (boxes[:, 2:] > boxes[:, :2]).all()
    datasets._build_photo_boxes(tmp_path / "boxes.json", 0, False)  # the asset recipe re-makes the same file
    assert (tmp_path / "boxes.json").read_bytes() == assets.checked_path(datasets.PHOTO_BOXES_FILE).read_bytes()
    assert "how" in payload


def test_load_dataset_gives_model_images_targets_and_boxes():
    data = datasets.load_dataset("planted", 4)
    assert data["images"].shape == (4, 1, 64, 64) and data["boxes"].shape == (4, 4)
    assert data["model"].name == "planted-evidence" and data["info"]["model_accuracy_on_these"] == 1.0
    fashion = datasets.load_dataset("fashion", 20)
    assert fashion["images"].shape == (20, 1, 28, 28) and fashion["targets"].shape == (20,)
    assert fashion["boxes"] is None and fashion["model"].name == "fashion-cnn"
    with pytest.raises(ValueError, match="name"):
        datasets.load_dataset("imagenet", 4)
