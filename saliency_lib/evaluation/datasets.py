"""The evaluation's datasets: images with ground truth, each with the model it is explained for (ours).

=============  ==========================================  ===================================================
name           model (:func:`saliency_lib.io.models.load`)    images and ground truth
=============  ==========================================  ===================================================
``planted``    ``planted-evidence`` (fixed weights: "is    cluttered canvases with an 8 x 8 checkerboard pasted
               there a checkerboard?")                     at a random place (:func:`planted_canvases`); the box
                                                           is the checkerboard (the only evidence the model can
                                                           use, by construction)
``clutter``    ``clutter-cnn`` (``data/clutter_cnn.pt``)   cluttered 64 x 64 canvases (:func:`make_canvases`)
                                                           made from the shipped test sample
``fashion``    ``fashion-cnn`` (``data/fashion_cnn.pt``)   the shipped 28 x 28 test sample (no boxes)
``photos``     ``efficientnet-lite0``                      the four ``skimage`` photographs with our boxes
                                                           (``data/photo_boxes.json``, :func:`photo_boxes`)
``sanity``,    ``fashion-cnn``                             the shipped sample (for the sanity check and the
``budget``                                                 budget study of :mod:`saliency_lib.evaluation`)
=============  ==========================================  ===================================================

:func:`load_dataset` returns any of them by name. Targets: the true class on ``planted`` and ``clutter`` (the
box belongs to it); the model's top-1 on ``fashion`` and ``photos`` (RISE's convention, and the class the photo
boxes were drawn for).

Cluttered Fashion-MNIST (after the "cluttered MNIST" of Mnih et al., 2014). Each canvas (default 64 x 64,
black) holds one Fashion-MNIST item pasted at a random position, plus a few fragments cut from *other* items
scattered around it. The item's tight bounding box (its pixels brighter than ``ink``) is recorded, so a saliency
map can be scored by where it points. Clutter never enters the item's 28 x 28 placement square, so the box holds
only the evidence. Everything is drawn from one generator seeded by ``seed``: the same seed gives the same
canvases. :func:`make_canvases` builds them from any ``(N, 1, 28, 28)`` pool of items (the shipped sample in
tests and notebooks; the full training set to train the classifier).

Asset recipes here: ``data/clutter_cnn.pt`` (:func:`train_clutter_cnn` on canvases from the 60,000 training
images, accuracy measured on canvases made from the 10,000 test images) and ``data/photo_boxes.json``.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import NamedTuple

import torch

from ..io.assets import Asset, checked_path, register
from ..io.data import fashion_sample, fashion_tensors, photographs
from ..io.models import (
    CLUTTER_MEAN,
    CLUTTER_STD,
    PLANT_SIZE,
    ClutterCNN,
    accuracy,
    checkerboard,
    load,
    train_classifier,
    wrap,
)
from ..method.checks import check_choice, check_int
from ..method.core import seeded_generator
from ..method.progress import progress_bar

__all__ = [
    "DATASETS",
    "DATASET_REFERENCES",
    "load_dataset",
    "CANVAS_SIZE",
    "Canvases",
    "make_canvases",
    "planted_canvases",
    "train_clutter_cnn",
    "PHOTO_BOXES",
    "PHOTO_BOXES_FILE",
    "MORE_PHOTO_BOXES",
    "photo_boxes",
]

DATASETS = ("planted", "clutter", "fashion", "photos", "sanity", "budget")
# The masked-pixel value each dataset is evaluated with (a name of saliency_lib.method.core.REFERENCES), for the methods
# and the deletion metric alike: the data's own "absent" value where it has one (black: the canvases' and
# Fashion-MNIST's background; on the planted canvases black is also the model's mean), the dataset mean (the
# authors' choice) on photographs, which have no absent colour. A grey patch on a black canvas is out of
# distribution, and what a black-box method then measures is the patch (docs/results.md).
DATASET_REFERENCES = {
    "planted": "black",
    "clutter": "black",
    "fashion": "black",
    "photos": "mean",
    "sanity": "black",
    "budget": "black",
}
CANVAS_SIZE = 64
ITEM_SIZE = 28


# ---- cluttered canvases ----------------------------------------------------------------------------------------


class Canvases(NamedTuple):
    """A batch of cluttered canvases.

    Attributes:
        images: float32 ``(N, 1, S, S)`` in [0, 1].
        labels: int64 ``(N,)`` class of the pasted item.
        boxes: int64 ``(N, 4)`` tight box of the item as ``(x0, y0, x1, y1)``, end-exclusive pixel coordinates.
        source: int64 ``(N,)`` index of the item in the pool it was taken from.
    """

    images: torch.Tensor
    labels: torch.Tensor
    boxes: torch.Tensor
    source: torch.Tensor


def _paste(canvas: torch.Tensor, patches: torch.Tensor, top: torch.Tensor, left: torch.Tensor) -> None:
    """``canvas[b, top_b:top_b+h, left_b:left_b+w] = max(canvas, patches[b])`` for every b at once (in place)."""
    batch, height, width = patches.shape
    rows = top.view(-1, 1) + torch.arange(height)  # (B, h)
    cols = left.view(-1, 1) + torch.arange(width)  # (B, w)
    index = torch.arange(batch).view(-1, 1, 1)
    region = canvas[index, rows[:, :, None], cols[:, None, :]]
    canvas[index, rows[:, :, None], cols[:, None, :]] = torch.maximum(region, patches)


def make_canvases(
    items: torch.Tensor,
    labels: torch.Tensor,
    n: int,
    *,
    size: int = CANVAS_SIZE,
    n_clutter: int = 6,
    clutter_size: int = 10,
    ink: float = 0.1,
    seed: int = 0,
    progress: bool = False,
    chunk: int = 4096,
) -> Canvases:
    """``n`` cluttered canvases drawn deterministically from ``seed``.

    Args:
        items: float ``(N, 1, 28, 28)`` Fashion-MNIST images in [0, 1] (the pool items and clutter come from).
        labels: int64 ``(N,)`` their classes.
        n: number of canvases.
        size: canvas side S (>= 28 + 2 * clutter_size, so clutter always fits beside the item).
        n_clutter: fragments per canvas (each placed clear of the item's square; dropped if no place is found).
        clutter_size: side of each square fragment, cut from a random other item near its centre.
        ink: pixels brighter than this count as the item when measuring its tight box.
        seed: seed of the generator all draws come from.
        progress: ``tqdm.auto`` bar over chunks.
        chunk: canvases built per vectorised chunk (bounds memory).

    Returns:
        :class:`Canvases`.
    """
    if not isinstance(items, torch.Tensor) or items.dim() != 4 or items.shape[1:] != (1, ITEM_SIZE, ITEM_SIZE):
        raise ValueError(
            f"items must be a tensor of shape (N, 1, 28, 28), got "
            f"{tuple(items.shape) if isinstance(items, torch.Tensor) else type(items).__name__}"
        )
    if labels.shape != (items.shape[0],):
        raise ValueError(f"labels must have shape ({items.shape[0]},), got {tuple(labels.shape)}")
    check_int("n", n)
    check_int("clutter_size", clutter_size, 1, ITEM_SIZE)
    check_int("size", size, ITEM_SIZE + 2 * clutter_size)  # clutter always fits beside the item
    check_int("n_clutter", n_clutter, 0)
    generator = seeded_generator(seed)
    items = items.detach().float().cpu()
    pool = items.shape[0]
    out_images, out_labels, out_boxes, out_source = [], [], [], []
    starts = range(0, n, chunk)
    for start in progress_bar(starts, desc="canvases", enabled=progress):
        count = min(chunk, n - start)
        source = torch.randint(0, pool, (count,), generator=generator)
        top = torch.randint(0, size - ITEM_SIZE + 1, (count,), generator=generator)
        left = torch.randint(0, size - ITEM_SIZE + 1, (count,), generator=generator)
        canvas = torch.zeros(count, size, size)
        _paste(canvas, items[source, 0], top, left)
        # Clutter: fragments of other items, placed where they do not touch the item's 28 x 28 square.
        trials = 16
        for _ in range(n_clutter):
            other = torch.randint(0, pool, (count,), generator=generator)
            other = torch.where(other == source, (other + 1) % pool, other)
            margin = (ITEM_SIZE - clutter_size) // 2
            cut_y = torch.randint(
                margin // 2, ITEM_SIZE - clutter_size - margin // 2 + 1, (count,), generator=generator
            )
            cut_x = torch.randint(
                margin // 2, ITEM_SIZE - clutter_size - margin // 2 + 1, (count,), generator=generator
            )
            rows = cut_y.view(-1, 1) + torch.arange(clutter_size)
            cols = cut_x.view(-1, 1) + torch.arange(clutter_size)
            fragment = items[other, 0][torch.arange(count).view(-1, 1, 1), rows[:, :, None], cols[:, None, :]]
            cand_y = torch.randint(0, size - clutter_size + 1, (count, trials), generator=generator)
            cand_x = torch.randint(0, size - clutter_size + 1, (count, trials), generator=generator)
            clear = (
                (cand_y + clutter_size <= top.view(-1, 1))
                | (cand_y >= top.view(-1, 1) + ITEM_SIZE)
                | (cand_x + clutter_size <= left.view(-1, 1))
                | (cand_x >= left.view(-1, 1) + ITEM_SIZE)
            )
            first = clear.float().argmax(dim=1)  # first clear candidate (0 if none)
            found = clear.any(dim=1)
            y = cand_y.gather(1, first.view(-1, 1))[:, 0]
            x = cand_x.gather(1, first.view(-1, 1))[:, 0]
            _paste(canvas, fragment * found.view(-1, 1, 1).float(), y, x)
        # Tight box of the item's ink, in canvas coordinates.
        ink_mask = items[source, 0] > ink  # (count, 28, 28)
        any_row, any_col = ink_mask.any(dim=2), ink_mask.any(dim=1)
        index = torch.arange(ITEM_SIZE)
        empty = ~any_row.any(dim=1)
        y0 = torch.where(any_row, index, ITEM_SIZE).amin(dim=1)
        y1 = torch.where(any_row, index + 1, 0).amax(dim=1)
        x0 = torch.where(any_col, index, ITEM_SIZE).amin(dim=1)
        x1 = torch.where(any_col, index + 1, 0).amax(dim=1)
        # An item with no ink (none in Fashion-MNIST) gets its whole placement square.
        y0, x0 = torch.where(empty, 0, y0), torch.where(empty, 0, x0)
        y1, x1 = torch.where(empty, ITEM_SIZE, y1), torch.where(empty, ITEM_SIZE, x1)
        boxes = torch.stack([left + x0, top + y0, left + x1, top + y1], dim=1)
        out_images.append(canvas.unsqueeze(1))
        out_labels.append(labels[source].long())
        out_boxes.append(boxes.long())
        out_source.append(source)
    return Canvases(torch.cat(out_images), torch.cat(out_labels), torch.cat(out_boxes), torch.cat(out_source))


def planted_canvases(items: torch.Tensor, labels: torch.Tensor, n: int, seed: int = 0):
    """Cluttered canvases (:func:`make_canvases`) with an 8 x 8 checkerboard
    (:func:`saliency_lib.io.models.checkerboard`)
    pasted over a random place. Returns :class:`Canvases` whose labels are all 1 and boxes are the checkerboards.
    """
    base = make_canvases(items, labels, n, seed=seed)
    size = base.images.shape[-1]
    generator = seeded_generator(seed + 1)
    top = torch.randint(0, size - PLANT_SIZE + 1, (n,), generator=generator)
    left = torch.randint(0, size - PLANT_SIZE + 1, (n,), generator=generator)
    rows = top.view(-1, 1) + torch.arange(PLANT_SIZE)
    cols = left.view(-1, 1) + torch.arange(PLANT_SIZE)
    images = base.images.clone()
    index = torch.arange(n).view(-1, 1, 1)
    images[index, 0, rows[:, :, None], cols[:, None, :]] = checkerboard().expand(n, -1, -1)
    boxes = torch.stack([left, top, left + PLANT_SIZE, top + PLANT_SIZE], dim=1)
    return Canvases(images, torch.ones(n, dtype=torch.long), boxes, base.source)


def train_clutter_cnn(
    items: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int = 4,
    canvases_per_epoch: int = 40000,
    batch_size: int = 128,
    seed: int = 0,
    progress: bool = True,
) -> ClutterCNN:
    """Train :class:`~saliency_lib.io.models.ClutterCNN` on fresh canvases every epoch
    (:func:`saliency_lib.io.models.train_classifier`: Adam, one-cycle learning rate).

    Args:
        items, labels: the pool the canvases are made from (``(N, 1, 28, 28)``, ``(N,)``).
        epochs: passes; each draws ``canvases_per_epoch`` new canvases (seed ``seed + 1000 * epoch``).
    """

    def epoch_data(epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        data = make_canvases(items, labels, canvases_per_epoch, seed=seed + 1000 * (epoch + 1))
        return (data.images - CLUTTER_MEAN[0]) / CLUTTER_STD[0], data.labels

    return train_classifier(
        ClutterCNN,
        epoch_data,
        epochs=epochs,
        examples_per_epoch=canvases_per_epoch,
        max_lr=4e-3,
        seed=seed,
        batch_size=batch_size,
        name="clutter-cnn",
        progress=progress,
    )


def _build_clutter_cnn(path: Path, seed: int, progress: bool) -> dict:
    train_x, train_y = fashion_tensors(train=True)
    test_x, test_y = fashion_tensors(train=False)
    start = time.perf_counter()
    net = train_clutter_cnn(train_x, train_y, seed=seed, progress=progress)
    seconds = time.perf_counter() - start
    held_out = make_canvases(test_x, test_y, 10000, seed=seed + 7)  # canvases from the *test* images only
    model = wrap("clutter-cnn", net).eval()
    test_accuracy = accuracy(model, held_out.images, held_out.labels)
    if test_accuracy < 0.75:
        raise RuntimeError(f"clutter-cnn reached only {test_accuracy:.2%} on held-out canvases (< 75%); not shipped")
    torch.save(net.state_dict(), path)
    return {
        "held_out_accuracy": round(test_accuracy, 4),
        "held_out": "10,000 canvases made from the 10,000 Fashion-MNIST test images (seed 7)",
        "train": "4 epochs x 40,000 fresh canvases from the 60,000 training images",
        "canvas": f"{CANVAS_SIZE}x{CANVAS_SIZE}, 6 fragments of 10x10 clutter",
        "parameters": sum(p.numel() for p in net.parameters()),
        "train_seconds": round(seconds, 1),
        "threads": torch.get_num_threads(),
    }


register(
    Asset(
        "clutter_cnn.pt",
        _build_clutter_cnn,
        licence="MIT (ours; trained on Fashion-MNIST, MIT)",
        origin="saliency_lib.io.models.ClutterCNN trained on cluttered 64x64 canvases made by "
        "saliency_lib.evaluation.datasets.make_canvases from the Fashion-MNIST training set",
        needs="Fashion-MNIST: Debian package dataset-fashion-mnist, or internet",
    )
)


# ---- photographs: our boxes ------------------------------------------------------------------------------------

PHOTO_BOXES_FILE = "photo_boxes.json"
# Drawn by us (by eye, on a 16-px grid over the 224 x 224 centre crop of saliency_lib.io.data.photographs) around the
# object of EfficientNet-Lite0's top-1 class. (x0, y0, x1, y1), end-exclusive pixels.
PHOTO_BOXES = {
    "cat": {
        "box": [16, 32, 224, 224],
        "top1": "Egyptian cat",
        "drawn_around": "the cat's head (it fills the frame, so the box covers most of the image)",
    },
    "coffee": {
        "box": [40, 0, 186, 126],
        "top1": "espresso",
        "drawn_around": "the cup with the coffee (saucer and spoon left out)",
    },
    "rocket": {
        "box": [96, 56, 128, 224],
        "top1": "missile",
        "drawn_around": "the rocket on its launch pad (towers left out)",
    },
    "astronaut": {
        "box": [8, 0, 200, 224],
        "top1": "bobsled",
        "drawn_around": "the astronaut in her suit: the top-1 class (bobsled) is not in the picture, "
        "so this box marks the main object, not the class; read its scores with care",
    },
}
# More skimage photographs, public domain or CC0 by skimage.data's docstrings (camera: CC0, Lav Varshney; clock:
# public domain, Stefan van der Walt); grey, repeated to RGB. Boxes drawn by us as above, on an 8-px grid over the
# same 224 x 224 centre crop, around the object of EfficientNet-Lite0's top-1 class. Used by the boxes suite
# (saliency_research.boxes_suite, ``--images shipped``); not in data/photo_boxes.json, whose hash pins the four above.
MORE_PHOTO_BOXES = {
    "camera": {
        "skimage": "camera",
        "box": [96, 128, 184, 224],
        "top1": "tripod",
        "drawn_around": "the tripod, legs and head (the camera on it and the photographer left out)",
    },
    "clock": {
        "skimage": "clock",
        "box": [64, 64, 168, 160],
        "top1": "bubble",
        "drawn_around": "the motion-blurred wall clock, the bright disc the model calls a bubble (its 3rd guess: "
        "wall clock)",
    },
}


def _build_photo_boxes(path: Path, seed: int, progress: bool) -> dict:
    payload = {
        "how": "Boxes drawn by eye in code (saliency_lib.evaluation.datasets.PHOTO_BOXES) on a 16-px grid over the "
        "224x224 "
        "centre crops of saliency_lib.io.data.photographs(), around the object of EfficientNet-Lite0's top-1 "
        "class; format (x0, y0, x1, y1), end-exclusive pixels.",
        "image_size": 224,
        "model": "efficientnet-lite0",
        "photos": PHOTO_BOXES,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return {"photos": len(PHOTO_BOXES)}


register(
    Asset(
        PHOTO_BOXES_FILE,
        _build_photo_boxes,
        licence="MIT (ours); the photographs are scikit-image's (public domain)",
        origin="boxes drawn by us in saliency_lib.evaluation.datasets.PHOTO_BOXES around the object of the top-1 class",
    )
)


def photo_boxes() -> tuple[list[str], torch.Tensor, dict]:
    """Names, boxes int64 ``(4, 4)`` and the full record of ``data/photo_boxes.json`` (hash-checked)."""
    payload = json.loads(checked_path(PHOTO_BOXES_FILE).read_text())
    names = list(payload["photos"])
    boxes = torch.tensor([payload["photos"][name]["box"] for name in names], dtype=torch.long)
    return names, boxes, payload


# ---- loading a dataset by name ---------------------------------------------------------------------------------


def load_dataset(name: str, n: int, seed: int = 0) -> dict:
    """Model, images, targets and (when there are) boxes of one dataset of the evaluation.

    Returns a dict with ``model``, ``images`` ``(n, C, H, W)``, ``targets`` ``(n,)``, ``boxes`` ``(n, 4)`` or
    ``None``, ``names`` (photos) and ``info`` (what the JSON records about the data).
    """
    check_choice("name", name, DATASETS)
    if name in ("fashion", "sanity", "budget"):
        model = load("fashion-cnn")
        per_class = max(1, math.ceil(n / 10))
        images, labels = fashion_sample(n_per_class=per_class)
        # Class-balanced: interleave the classes so any prefix of n images is balanced too.
        rank = torch.empty_like(labels)
        for c in range(10):
            idx = torch.nonzero(labels == c).flatten()
            rank[idx] = torch.arange(len(idx)) * 10 + c
        keep = torch.argsort(rank)[:n]
        images, labels = images[keep], labels[keep]
        with torch.no_grad():
            targets = model(images).argmax(1)
        info = {
            "images": "shipped Fashion-MNIST test sample, class-balanced",
            "target": "model top-1",
            "model_accuracy_on_these": round((targets == labels).float().mean().item(), 4),
        }
        return {"model": model, "images": images, "targets": targets, "boxes": None, "names": None, "info": info}
    if name in ("clutter", "planted"):
        items, labels = fashion_sample()
        if name == "clutter":
            model = load("clutter-cnn")
            data = make_canvases(items, labels, n, seed=seed + 11)
            with torch.no_grad():
                correct = (model(data.images).argmax(1) == data.labels).float().mean().item()
            info = {
                "images": f"64x64 canvases from the shipped test sample (make_canvases, seed {seed + 11})",
                "target": "true class",
                "model_accuracy_on_these": round(correct, 4),
            }
        else:
            model = load("planted-evidence")
            data = planted_canvases(items, labels, n, seed=seed + 23)
            with torch.no_grad():
                detected = (model(data.images).argmax(1) == 1).float().mean().item()
            info = {
                "images": f"64x64 canvases with an 8x8 checkerboard planted (seed {seed + 23})",
                "target": "class 'checkerboard'",
                "model_accuracy_on_these": round(detected, 4),
            }
        return {
            "model": model,
            "images": data.images,
            "targets": data.labels,
            "boxes": data.boxes,
            "names": None,
            "info": info,
        }
    if name == "photos":
        # channels_last: same numbers, about 1.7x faster for the depthwise convolutions on a CPU.
        model = load("efficientnet-lite0").to(memory_format=torch.channels_last)
        names, boxes, payload = photo_boxes()
        images, _ = photographs(names)
        images, boxes, names = images[:n], boxes[:n], names[:n]
        with torch.no_grad():
            targets = model(images).argmax(1)
        info = {
            "images": f"skimage photographs {names}",
            "target": "model top-1",
            "top1": [model.class_names[t] for t in targets.tolist()],
            "boxes": PHOTO_BOXES_FILE,
        }
        return {"model": model, "images": images, "targets": targets, "boxes": boxes, "names": names, "info": info}
    raise AssertionError(name)  # unreachable: check_choice above
