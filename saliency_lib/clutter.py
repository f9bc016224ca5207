"""Cluttered Fashion-MNIST: a benchmark with ground-truth boxes (ours, not the paper's).

Each canvas (default 64 x 64, black) holds one Fashion-MNIST item pasted at a random position, plus a few
fragments cut from *other* items scattered around it (after the "cluttered MNIST" of Mnih et al., 2014). The
item's tight bounding box (its pixels brighter than ``ink``) is recorded, so a saliency map can be scored by
where it points. Clutter never enters the item's 28 x 28 placement square, so the box holds only the evidence.
Everything is drawn from one ``torch.Generator`` seeded by ``seed``: the same seed gives the same canvases.

* :func:`make_canvases` builds canvases from any ``(N, 1, 28, 28)`` pool of items (the shipped sample in
  tests and notebooks; the full training set to train the classifier).
* :class:`ClutterCNN` is the small classifier shipped as ``data/clutter_cnn.pt``; :func:`load_classifier`
  returns it as a :class:`~saliency_lib.models.Classifier` (input ``(B, 1, 64, 64)`` in [0, 1]).
* The asset recipe trains it on canvases from the 60,000 training images and measures its accuracy on
  canvases made from the 10,000 test images (``python -m saliency_lib assets build --only clutter_cnn.pt``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn
from tqdm.auto import tqdm

from .assets import Asset, load_weights, register

__all__ = [
    "CANVAS_SIZE",
    "CLUTTER_MEAN",
    "CLUTTER_STD",
    "Canvases",
    "make_canvases",
    "boxes_to_masks",
    "ClutterCNN",
    "load_classifier",
    "train_clutter_cnn",
]

CANVAS_SIZE = 64
ITEM_SIZE = 28
# Pixel statistics of canvases made with the defaults (measured on 10,000 canvases from the training set);
# the classifier normalises with them, so the masked-pixel reference "mean" is this grey.
CLUTTER_MEAN = (0.1232,)
CLUTTER_STD = (0.2734,)


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
    rows = top.view(-1, 1) + torch.arange(height)                # (B, h)
    cols = left.view(-1, 1) + torch.arange(width)                # (B, w)
    index = torch.arange(batch).view(-1, 1, 1)
    region = canvas[index, rows[:, :, None], cols[:, None, :]]
    canvas[index, rows[:, :, None], cols[:, None, :]] = torch.maximum(region, patches)


def make_canvases(items: torch.Tensor, labels: torch.Tensor, n: int, *, size: int = CANVAS_SIZE,
                  n_clutter: int = 6, clutter_size: int = 10, ink: float = 0.1, seed: int = 0,
                  progress: bool = False, chunk: int = 4096) -> Canvases:
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
        raise ValueError(f"items must be a tensor of shape (N, 1, 28, 28), got "
                         f"{tuple(items.shape) if isinstance(items, torch.Tensor) else type(items).__name__}")
    if labels.shape != (items.shape[0],):
        raise ValueError(f"labels must have shape ({items.shape[0]},), got {tuple(labels.shape)}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not isinstance(size, int) or size < ITEM_SIZE + 2 * clutter_size:
        raise ValueError(f"size must be an int >= 28 + 2 * clutter_size = {ITEM_SIZE + 2 * clutter_size}, "
                         f"got {size!r}")
    if not isinstance(clutter_size, int) or not 1 <= clutter_size <= ITEM_SIZE:
        raise ValueError(f"clutter_size must be an int in [1, 28], got {clutter_size!r}")
    if not isinstance(n_clutter, int) or n_clutter < 0:
        raise ValueError(f"n_clutter must be an int >= 0, got {n_clutter!r}")
    generator = torch.Generator().manual_seed(int(seed))
    items = items.detach().float().cpu()
    pool = items.shape[0]
    out_images, out_labels, out_boxes, out_source = [], [], [], []
    starts = range(0, n, chunk)
    for start in tqdm(starts, desc="canvases", disable=not progress, leave=False):
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
            cut_y = torch.randint(margin // 2, ITEM_SIZE - clutter_size - margin // 2 + 1, (count,),
                                  generator=generator)
            cut_x = torch.randint(margin // 2, ITEM_SIZE - clutter_size - margin // 2 + 1, (count,),
                                  generator=generator)
            rows = cut_y.view(-1, 1) + torch.arange(clutter_size)
            cols = cut_x.view(-1, 1) + torch.arange(clutter_size)
            fragment = items[other, 0][torch.arange(count).view(-1, 1, 1), rows[:, :, None], cols[:, None, :]]
            cand_y = torch.randint(0, size - clutter_size + 1, (count, trials), generator=generator)
            cand_x = torch.randint(0, size - clutter_size + 1, (count, trials), generator=generator)
            clear = ((cand_y + clutter_size <= top.view(-1, 1)) | (cand_y >= top.view(-1, 1) + ITEM_SIZE)
                     | (cand_x + clutter_size <= left.view(-1, 1)) | (cand_x >= left.view(-1, 1) + ITEM_SIZE))
            first = clear.float().argmax(dim=1)                  # first clear candidate (0 if none)
            found = clear.any(dim=1)
            y = cand_y.gather(1, first.view(-1, 1))[:, 0]
            x = cand_x.gather(1, first.view(-1, 1))[:, 0]
            _paste(canvas, fragment * found.view(-1, 1, 1).float(), y, x)
        # Tight box of the item's ink, in canvas coordinates.
        ink_mask = items[source, 0] > ink                        # (count, 28, 28)
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


def boxes_to_masks(boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Boolean ``(N, H, W)`` masks, True inside each ``(x0, y0, x1, y1)`` box (end-exclusive)."""
    if not isinstance(boxes, torch.Tensor) or boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must be a tensor of shape (N, 4) as (x0, y0, x1, y1), got "
                         f"{tuple(boxes.shape) if isinstance(boxes, torch.Tensor) else type(boxes).__name__}")
    height, width = size
    ys = torch.arange(height, device=boxes.device).view(1, -1, 1)
    xs = torch.arange(width, device=boxes.device).view(1, 1, -1)
    x0, y0, x1, y1 = (boxes[:, i].view(-1, 1, 1) for i in range(4))
    return (ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1)


class ClutterCNN(nn.Module):
    """Our small classifier for 64 x 64 cluttered canvases (ours, not the paper's). ``(B, 1, 64, 64)`` -> ``(B, 10)``.

    A 4x4 stride-2 conv (16 channels), then two 3x3 conv blocks (32, 64 channels) with 2x2 max-pooling before
    each, global average pooling and one linear layer: about 24 k parameters and 2.6 M multiply-adds per
    canvas, so thousands of masked canvases per explanation stay affordable on a CPU. The global pooling makes
    it indifferent to where the item sits; the last block (8 x 8 at 64 px, receptive field 34 px) is the
    Grad-CAM layer.
    """

    def __init__(self, n_classes: int = 10):
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            *block(16, 32), nn.MaxPool2d(2),
            *block(32, 64),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _classifier(net: ClutterCNN, class_names=None):
    from .data import FASHION_CLASSES
    from .models import Classifier, InputSpec

    spec = InputSpec(channels=1, size=(CANVAS_SIZE, CANVAS_SIZE), mean=CLUTTER_MEAN, std=CLUTTER_STD)
    return Classifier("clutter-cnn", net, spec, class_names or FASHION_CLASSES, gradcam_layer=net.features[-1])


def load_classifier(device: str | torch.device = "cpu"):
    """The shipped clutter classifier (``data/clutter_cnn.pt``, hash-checked) as a ``Classifier`` in eval mode."""
    net = ClutterCNN()
    net.load_state_dict(load_weights("clutter_cnn.pt"))
    model = _classifier(net).eval().requires_grad_(False)
    return model.to(device)


def train_clutter_cnn(items: torch.Tensor, labels: torch.Tensor, *, epochs: int = 4, canvases_per_epoch: int = 40000,
                      batch_size: int = 128, seed: int = 0, progress: bool = True) -> ClutterCNN:
    """Train :class:`ClutterCNN` on fresh canvases every epoch (Adam, one-cycle learning rate).

    Args:
        items, labels: the pool the canvases are made from (``(N, 1, 28, 28)``, ``(N,)``).
        epochs: passes; each draws ``canvases_per_epoch`` new canvases (seed ``seed + 1000 * epoch``).
    """
    torch.manual_seed(seed)  # init and dropout use the global generator; seeded for a reproducible build
    generator = torch.Generator().manual_seed(seed)
    net = ClutterCNN()
    steps = epochs * (canvases_per_epoch // batch_size)
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=4e-3, total_steps=steps)
    bar = tqdm(total=steps, desc="training clutter-cnn", disable=not progress)
    for epoch in range(epochs):
        data = make_canvases(items, labels, canvases_per_epoch, seed=seed + 1000 * (epoch + 1))
        normalised = (data.images - CLUTTER_MEAN[0]) / CLUTTER_STD[0]
        order = torch.randperm(canvases_per_epoch, generator=generator)
        net.train()
        for start in range(0, canvases_per_epoch - batch_size + 1, batch_size):
            index = order[start:start + batch_size]
            loss = nn.functional.cross_entropy(net(normalised[index]), data.labels[index])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            bar.update()
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
    bar.close()
    return net.eval()


def _build_clutter_cnn(path: Path, seed: int, progress: bool) -> dict:
    from .data import fashion_tensors
    from .models import accuracy

    train_x, train_y = fashion_tensors(train=True)
    test_x, test_y = fashion_tensors(train=False)
    start = time.perf_counter()
    net = train_clutter_cnn(train_x, train_y, seed=seed, progress=progress)
    seconds = time.perf_counter() - start
    held_out = make_canvases(test_x, test_y, 10000, seed=seed + 7)   # canvases from the *test* images only
    model = _classifier(net).eval()
    test_accuracy = accuracy(model, held_out.images, held_out.labels)
    if test_accuracy < 0.75:
        raise RuntimeError(f"clutter-cnn reached only {test_accuracy:.2%} on held-out canvases (< 75%); not shipped")
    torch.save(net.state_dict(), path)
    return {"held_out_accuracy": round(test_accuracy, 4),
            "held_out": "10,000 canvases made from the 10,000 Fashion-MNIST test images (seed 7)",
            "train": "4 epochs x 40,000 fresh canvases from the 60,000 training images",
            "canvas": f"{CANVAS_SIZE}x{CANVAS_SIZE}, 6 fragments of 10x10 clutter",
            "parameters": sum(p.numel() for p in net.parameters()),
            "train_seconds": round(seconds, 1), "threads": torch.get_num_threads()}


register(Asset(
    "clutter_cnn.pt", _build_clutter_cnn, licence="MIT (ours; trained on Fashion-MNIST, MIT)",
    origin="saliency_lib.clutter.ClutterCNN trained on cluttered 64x64 canvases made by "
           "saliency_lib.clutter.make_canvases from the Fashion-MNIST training set",
    needs="Fashion-MNIST: Debian package dataset-fashion-mnist, or internet",
))


# The photo boxes of the evaluation benchmark are an asset too; assets._load_recipes imports this module, so
# importing the benchmark here registers data/photo_boxes.json with the build.
from . import benchmark as _benchmark  # noqa: E402,F401
