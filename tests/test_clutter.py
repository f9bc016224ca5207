"""Cluttered Fashion-MNIST: deterministic canvases with true boxes, and the shipped clutter classifier."""

import pytest
import torch

from saliency_lib import assets
from saliency_lib.clutter import CANVAS_SIZE, ClutterCNN, boxes_to_masks, load_classifier, make_canvases
from saliency_lib.data import fashion_sample


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
        assert torch.equal(image[top:top + 28, left:left + 28], item)
    outside = data.images[:, 0].clone()
    outside[boxes_to_masks(data.boxes, (CANVAS_SIZE, CANVAS_SIZE))] = 0
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


def test_boxes_to_masks():
    masks = boxes_to_masks(torch.tensor([[1, 2, 4, 3]]), (5, 6))
    assert masks.shape == (1, 5, 6) and masks.sum() == 3 and masks[0, 2, 1:4].all()


def test_shipped_classifier_recognises_canvases_from_held_out_images():
    model = load_classifier()
    entry = assets.read_manifest()["files"]["clutter_cnn.pt"]
    assert entry["measured"]["held_out_accuracy"] >= 0.75
    assert entry["command"] == "python -m saliency_lib assets build --only clutter_cnn.pt"
    items, labels = fashion_sample(n_per_class=20)  # the sample is test-set images: never seen in training
    data = make_canvases(items, labels, 200, seed=1)
    with torch.no_grad():
        accuracy = (model(data.images).argmax(1) == data.labels).float().mean().item()
    # The build measured its accuracy on 10,000 held-out canvases; 200 canvases give a noisier estimate.
    assert abs(accuracy - entry["measured"]["held_out_accuracy"]) < 0.1
    assert model.gradcam_layer is model.net.features[-1]
    assert model(torch.zeros(2, 1, 64, 64)).shape == (2, 10)


def test_architecture_is_small():
    assert sum(p.numel() for p in ClutterCNN().parameters()) < 100_000
