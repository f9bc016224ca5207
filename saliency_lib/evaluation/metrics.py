"""How good is a saliency map? Faithfulness, localization and a sanity check, batched over images.

=========================  =====================================================================  ===============
metric                     what it measures                                                       after
=========================  =====================================================================  ===============
``deletion`` (lower best)  remove the most salient pixels first (to the reference); how fast the  RISE (Petsiuk
                           target probability falls: normalised area under the curve              et al. 2018)
``insertion`` (higher)     start from a blurred copy, put the most salient pixels back first;     RISE
                           how fast the probability rises
``pointing_game``          is the map's maximum inside the ground-truth box (with a tolerance)?   Zhang et al. 2016
``box_iou``                IoU of the thresholded map with the box                                 common practice
``energy_in_box``          share of the map's (positive) mass inside the box                       Score-CAM 2020
``sanity_check``           randomise the model layer by layer; how similar do the maps stay?       Adebayo et al.
                           (Spearman rank correlation; high = the map ignores the model)           2018
=========================  =====================================================================  ===============

Conventions. Maps are ``(B, H, W)`` (any real values: higher = more salient); images ``(B, C, H, W)`` in the
model's input range; boxes ``(B, 4)`` as ``(x0, y0, x1, y1)`` in pixels, end-exclusive. The RISE curves follow
``docs/method.md``: deletion replaces pixels by the reference (the dataset mean, 0 after normalisation);
insertion starts from ``saliency_lib.method.masks.blur`` (kernel 11, sigma 5); ``pixels_per_step`` pixels change per
step (RISE: 224 at 224 x 224); AUC is the trapezoid area divided by the number of steps, in [0, 1].

The scoring protocol (ours; the same for every method, so no method wins by its post-processing or by how its
ties fall):

- **Value-based metrics see each map min-max scaled to [0, 1]** (``energy_in_box``, ``box_iou``'s threshold), as
  Score-CAM scales its maps. Adding a constant to a map or multiplying it by a positive number changes nothing.
  Clipping does change them (it moves mass): that is post-processing, and the evaluation reports it as its own
  row (``docs/results.md``).
- **Rank-based metrics handle ties explicitly.** ``deletion``/``insertion`` take tied pixels in a seeded random
  order (``ties="random"``, the default; the mean AUC over images is then the expected AUC of a random
  tie-break), ``spearman`` gives tied pixels their average rank (``scipy.stats.rankdata``), ``pointing_game``
  scores a tied maximum by the share of it inside the box. ``ties="order"`` keeps the old row-major order
  (pixel order, ``torch.argsort(stable=True)``: a flat map deletes the top row first). RISE's ``evaluation.py``
  orders pixels by ``np.flip(np.argsort(map))``, an unstable quicksort reversed (a flat map tends to go bottom
  row first); its insertion blur is ``gkern(11, 5)`` with zero padding, nearly a box filter, where ours is a
  true Gaussian with reflect padding (``saliency_research/bench/protocol_choices.py`` runs RISE's version).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn

from ..method import masks as M
from ..method.checks import check_choice, check_fraction, check_images, check_int, check_maps
from ..method.core import (
    broadcast_reference,
    class_probabilities,
    default_batch_size,
    model_device,
    resolve_reference,
    resolve_target,
    seeded_generator,
)
from ..method.progress import progress_bar
from ..method.results import SaliencyResult
from ..method.threads import runs_black_box

__all__ = [
    "CurveResult",
    "auc",
    "deletion",
    "insertion",
    "causal_curves",
    "pointing_game",
    "box_iou",
    "energy_in_box",
    "box_masks",
    "spearman",
    "SanityResult",
    "sanity_check",
    "random_maps",
    "pixel_ranks",
    "TIES",
    "minmax",
]

TIES = ("random", "order")  # how deletion/insertion order tied pixels (see the module's docstring)


@dataclass
class CurveResult:
    """A deletion or insertion run.

    Attributes:
        auc: ``(B,)`` normalised area under each curve, in [0, 1].
        curve: ``(B, n_points)`` target probability after 0, 1, ... ``n_points - 1`` changes of
            ``pixels_per_step`` pixels.
        fraction: ``(n_points,)`` share of pixels changed at each point (0 ... 1).
        target: ``(B,)`` classes scored.
        model_calls: model evaluations per image (``n_points``).
    """

    auc: torch.Tensor
    curve: torch.Tensor
    fraction: torch.Tensor
    target: torch.Tensor
    model_calls: int


def auc(curve: torch.Tensor) -> torch.Tensor:
    """Trapezoid area under ``(B, n + 1)`` equally spaced points, divided by ``n`` (RISE's ``auc``). ``(B,)``."""
    if curve.dim() != 2 or curve.shape[1] < 2:
        raise ValueError(f"curve must have shape (B, n + 1) with n >= 1, got {tuple(curve.shape)}")
    return (curve.sum(dim=1) - curve[:, 0] / 2 - curve[:, -1] / 2) / (curve.shape[1] - 1)


def pixel_ranks(maps: torch.Tensor, ties: str = "order", seed: int = 0) -> torch.Tensor:
    """Rank of every pixel of ``maps`` ``(B, H, W)``, 0 = most salient: int64 ``(B, H*W)``.

    Tied pixels are ranked in pixel order (``ties="order"``, row-major) or in a random order drawn from
    ``seed`` (``ties="random"``: the same draw for every method scored with the same seed).
    """
    check_choice("ties", ties, TIES)
    flat = maps.reshape(maps.shape[0], -1)
    if ties == "random":
        generator = seeded_generator(seed)
        shuffle = torch.argsort(torch.rand(flat.shape, generator=generator), dim=1).to(flat.device)  # (B, HW)
        order = shuffle.gather(1, torch.argsort(-flat.gather(1, shuffle), dim=1, stable=True))
    else:
        order = torch.argsort(-flat, dim=1, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(flat.shape[1], device=flat.device).expand_as(order))
    return ranks


def minmax(maps: torch.Tensor) -> torch.Tensor:
    """Each map of ``(B, H, W)`` scaled to [0, 1] (``(m - min) / (max - min)``; a flat map becomes all 1).

    The one normalisation the value-based metrics apply to every method's maps: the result does not change when
    a constant is added to a map or the map is multiplied by a positive number. Returns float ``(B, H, W)``.
    """
    maps = check_maps(maps).float()
    low = maps.amin(dim=(1, 2), keepdim=True)
    span = maps.amax(dim=(1, 2), keepdim=True) - low
    return torch.where(span > 0, (maps - low) / span.clamp_min(1e-12), torch.ones_like(maps))


@runs_black_box
def causal_curves(
    model: nn.Module,
    images: torch.Tensor,
    maps: torch.Tensor,
    mode: str,
    target=None,
    *,
    pixels_per_step: int | None = None,
    reference="mean",
    start="blur",
    batch_size: int | None = None,
    progress: bool = False,
    output: str = "logits",
    ties: str = "random",
    tie_seed: int = 0,
) -> CurveResult:
    """RISE's deletion (``mode="deletion"``) or insertion (``mode="insertion"``) curves for a batch.

    At step k the ``k * pixels_per_step`` most salient pixels are deleted (set to ``reference``) or inserted
    (copied from the image into ``start``). Every step of every image is one model call, batched.

    Args:
        model: ``(B, C, H, W)`` -> logits (or probabilities with ``output="probabilities"``).
        images: ``(B, C, H, W)``; maps: ``(B, H, W)``, higher = more salient.
        target: ``None`` (top-1 of each clean image), an int, or one int per image.
        pixels_per_step: pixels changed per step (default: ``W``, i.e. RISE's 224 at 224 x 224).
        reference: deletion's replacement (``"mean"``: the dataset mean = 0 after normalisation, as RISE and
            the paper; ``"black"``: pixel 0, the absent value of black-background data; ``"blur"``, a number or a
            tensor: :func:`saliency_lib.method.core.resolve_reference`). Choose it with the maps' own reference: a
            black-box method's map measures what its reference does to the model.
        start: insertion's starting image (``"blur"``: RISE's blurred copy; ``"mean"``, ``"black"``, a number, a
            tensor).
        batch_size: masked images per model call (default: :func:`saliency_lib.method.core.default_batch_size`, at most
            256: 256 at 28 x 28, 8 at 3 x 224 x 224).
        ties: order of tied pixels, ``"random"`` (seeded by ``tie_seed``; default) or ``"order"`` (row-major),
            see :func:`pixel_ranks`.

    Returns:
        :class:`CurveResult`.
    """
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    images, _ = check_images(images, model)
    maps = check_maps(maps, images).float()
    batch, channels, height, width = images.shape
    n_pixels = height * width
    pixels_per_step = width if pixels_per_step is None else check_int("pixels_per_step", pixels_per_step, 1, n_pixels)
    if batch_size is None:
        batch_size = default_batch_size(images, at_most=256)
    check_int("batch_size", batch_size, 1)
    device = model_device(model, images.device)
    images, maps = images.to(device), maps.to(device)
    clean = class_probabilities(model, images, output=output, batch_size=batch_size)
    targets = resolve_target(target, clean)
    deleting = mode == "deletion"
    filler = resolve_reference(
        reference if deleting else start, model, images, name="reference" if deleting else "start"
    )
    filler = broadcast_reference(filler, images).expand_as(images)  # (B, C, H, W)
    n_points = math.ceil(n_pixels / pixels_per_step) + 1  # 0 pixels changed, then one step at a time
    changed = torch.clamp(torch.arange(n_points, device=device) * pixels_per_step, max=n_pixels)  # (T,)
    ranks = pixel_ranks(maps, ties, tie_seed)  # (B, HW)
    curve = torch.empty(batch, n_points, device=device)
    per_call = max(1, batch_size)
    # Work through (image, step) pairs in chunks: each chunk is one batched model call.
    pairs = torch.cartesian_prod(torch.arange(batch, device=device), torch.arange(n_points, device=device))
    bar = progress_bar(total=len(pairs), desc=mode, unit="img", enabled=progress)
    for chunk_start in range(0, len(pairs), per_call):
        chunk = pairs[chunk_start : chunk_start + per_call]
        b, t = chunk[:, 0], chunk[:, 1]
        hit = (ranks[b] < changed[t].view(-1, 1)).view(-1, height, width).float()  # 1 = pixel changed
        keep = 1 - hit if mode == "deletion" else hit
        mixed = M.apply_mask(images[b], keep, filler[b])
        probs = class_probabilities(model, mixed, output=output, batch_size=per_call)
        curve[b, t] = probs.gather(1, targets[b].view(-1, 1))[:, 0]
        bar.update(len(chunk))
    bar.close()
    fraction = changed.float() / n_pixels
    return CurveResult(auc(curve), curve, fraction.cpu(), targets, n_points)


def deletion(model: nn.Module, images: torch.Tensor, maps: torch.Tensor, target=None, **kwargs) -> CurveResult:
    """Deletion curves and AUC (lower = better): :func:`causal_curves` with ``mode="deletion"``."""
    return causal_curves(model, images, maps, "deletion", target, **kwargs)


def insertion(model: nn.Module, images: torch.Tensor, maps: torch.Tensor, target=None, **kwargs) -> CurveResult:
    """Insertion curves and AUC (higher = better): :func:`causal_curves` with ``mode="insertion"``."""
    return causal_curves(model, images, maps, "insertion", target, **kwargs)


# ---- localization against a box --------------------------------------------------------------------------------


def box_masks(boxes: torch.Tensor, size: tuple[int, int], tolerance: int = 0) -> torch.Tensor:
    """Boolean ``(B, H, W)``: inside each ``(x0, y0, x1, y1)`` box (end-exclusive), grown by ``tolerance`` px."""
    if not isinstance(boxes, torch.Tensor) or boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(
            f"boxes must be a tensor of shape (B, 4) as (x0, y0, x1, y1), got "
            f"{tuple(boxes.shape) if isinstance(boxes, torch.Tensor) else type(boxes).__name__}"
        )
    boxes = boxes.long()
    if (boxes[:, 2] <= boxes[:, 0]).any() or (boxes[:, 3] <= boxes[:, 1]).any():
        raise ValueError("boxes must have x1 > x0 and y1 > y0 (end-exclusive pixel coordinates)")
    height, width = size
    ys = torch.arange(height, device=boxes.device).view(1, -1, 1)
    xs = torch.arange(width, device=boxes.device).view(1, 1, -1)
    x0, y0, x1, y1 = (boxes[:, i].view(-1, 1, 1) for i in range(4))
    return (ys >= y0 - tolerance) & (ys < y1 + tolerance) & (xs >= x0 - tolerance) & (xs < x1 + tolerance)


def _maps_and_boxes(maps, boxes) -> tuple[torch.Tensor, torch.Tensor]:
    maps = check_maps(maps)
    if not isinstance(boxes, torch.Tensor) or boxes.shape != (maps.shape[0], 4):
        raise ValueError(f"boxes must have shape ({maps.shape[0]}, 4), one (x0, y0, x1, y1) per map")
    return maps.float(), boxes.to(maps.device)


def pointing_game(maps: torch.Tensor, boxes: torch.Tensor, tolerance: int | None = None) -> torch.Tensor:
    """Hit (1) or miss (0) of each map's maximum, tested against the box grown by ``tolerance`` pixels.

    Zhang et al. (2016) use 15 px at 224 x 224; the default scales that to the map
    (``round(15 * min(H, W) / 224)``, ours). When several pixels share the maximum (a plateau, or a flat map)
    the score is the share of them inside the box: the expected hit of a random tie-break, so a flat map scores
    the box's area share rather than a lucky 1.

    Returns:
        float ``(B,)`` in [0, 1].
    """
    maps, boxes = _maps_and_boxes(maps, boxes)
    height, width = maps.shape[1:]
    if tolerance is None:
        tolerance = round(15 * min(height, width) / 224)
    check_int("tolerance", tolerance, 0)
    inside = box_masks(boxes, (height, width), tolerance)
    peak = maps.amax(dim=(1, 2), keepdim=True)
    scale = (peak - maps.amin(dim=(1, 2), keepdim=True)).clamp_min(1e-12)
    at_max = maps >= peak - 1e-6 * scale
    return (at_max & inside).sum(dim=(1, 2)).float() / at_max.sum(dim=(1, 2)).float()


def box_iou(maps: torch.Tensor, boxes: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """IoU of the map's salient region with the box. ``(B,)`` in [0, 1].

    The salient region is where the map, min-max scaled to [0, 1] per image, is ``>= threshold`` (ours: 0.5;
    the CAM papers threshold at 0.15-0.2 of the maximum and then box the largest blob; the threshold is a choice
    that changes the numbers, see notebook 04). A flat map selects every pixel.
    """
    check_fraction("threshold", threshold)
    maps, boxes = _maps_and_boxes(maps, boxes)
    region = minmax(maps) >= threshold
    inside = box_masks(boxes, maps.shape[1:])
    intersection = (region & inside).sum(dim=(1, 2)).float()
    union = (region | inside).sum(dim=(1, 2)).float()
    return intersection / union


def energy_in_box(maps: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Share of the map's mass inside the box, after :func:`minmax` (Score-CAM's energy-based pointing game).

    Min-max first, so adding a constant to a map (a floor, as RISE's expectation map has) or scaling it does not
    change the score. A flat map scores the box's area share (as a uniform map would). ``(B,)`` in [0, 1].
    """
    maps, boxes = _maps_and_boxes(maps, boxes)
    scaled = minmax(maps)
    inside = box_masks(boxes, maps.shape[1:]).float()
    flat = maps.amax(dim=(1, 2)) == maps.amin(dim=(1, 2))
    share = (scaled * inside).sum(dim=(1, 2)) / scaled.sum(dim=(1, 2)).clamp_min(1e-12)
    return torch.where(flat, inside.mean(dim=(1, 2)), share)


def random_maps(batch: int, size: tuple[int, int], seed: int = 0, device="cpu") -> torch.Tensor:
    """Uniform random maps ``(B, H, W)``: the floor every method must beat."""
    generator = seeded_generator(seed)
    return torch.rand(batch, *size, generator=generator).to(device)


# ---- sanity check (Adebayo et al. 2018) --------------------------------------------------------------------------


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation of each pair of maps ``(B, H, W)``, tied pixels at their average rank
    (``scipy.stats.rankdata``, as ``scipy.stats.spearmanr``). ``(B,)`` float32 in [-1, 1].

    Average ranks matter for maps with many tied values (a clipped map's zeros): breaking ties by pixel order
    would rank them by position and make two unrelated sparse maps agree. A flat map has no ranking: its
    correlation is reported as 0 (ours).
    """
    if a.shape != b.shape or a.dim() < 2:
        raise ValueError(
            f"a and b must be batches of maps of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    flat_a = a.detach().reshape(a.shape[0], -1).double().cpu().numpy()
    flat_b = b.detach().reshape(b.shape[0], -1).double().cpu().numpy()
    ra = rankdata(flat_a, axis=1)
    rb = rankdata(flat_b, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(ra, axis=1) * np.linalg.norm(rb, axis=1)
    rho = np.where(norms > 0, (ra * rb).sum(axis=1) / np.maximum(norms, 1e-300), 0.0)
    return torch.from_numpy(rho).float()


@dataclass
class SanityResult:
    """Cascading randomisation.

    Attributes:
        layers: names of the randomised layers, top (logits) first; stage k has layers[:k+1] randomised.
        correlation: ``(n_layers, B)`` Spearman correlation of each stage's map with the original map.
        correlation_abs: the same on absolute values (Adebayo et al. report both).
        maps: ``(n_layers + 1, B, H, W)`` the original maps then one per stage (on the CPU).
    """

    layers: list[str]
    correlation: torch.Tensor
    correlation_abs: torch.Tensor
    maps: torch.Tensor


def _learnable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, (nn.Conv2d, nn.Linear)) and module.weight is not None
    ]


def _explained_maps(out: SaliencyResult | torch.Tensor) -> torch.Tensor:
    """The float maps on the CPU of what an ``explain`` function returned (a result or the maps themselves)."""
    maps = out.maps if isinstance(out, SaliencyResult) else out
    return maps.detach().float().cpu()


def sanity_check(
    explain: Callable[[nn.Module, torch.Tensor, torch.Tensor], SaliencyResult | torch.Tensor],
    model: nn.Module,
    images: torch.Tensor,
    target=None,
    *,
    seed: int = 0,
    max_layers: int | None = None,
    progress: bool = False,
) -> SanityResult:
    """Adebayo et al. (2018) cascading model-parameter randomisation.

    The weights of the model's conv and linear layers are re-drawn (Kaiming-normal, seeded; biases to 0) one
    layer at a time from the output towards the input, on a deep copy (the model passed in is untouched). After
    each layer the maps are recomputed for the *original* targets and compared with the original maps. A map
    that stays the same while the model is destroyed explains the image, not the model.

    Args:
        explain: ``explain(model, images, targets)`` -> a :class:`~saliency_lib.method.results.SaliencyResult` or
            ``(B, H, W)`` maps (e.g. a :mod:`saliency_lib.evaluation.baselines` method bound to its options).
        model: the trained model.
        images: ``(B, C, H, W)``; target: as everywhere (default: the trained model's top-1).
        seed: seed of the new weights.
        max_layers: stop after this many layers (default: all).

    Returns:
        :class:`SanityResult`.
    """
    images, _ = check_images(images, model)
    clean = class_probabilities(model, images.to(model_device(model, images.device)))
    targets = resolve_target(target, clean)
    original = _explained_maps(explain(model, images, targets))
    randomised = copy.deepcopy(model)
    layers = list(reversed(_learnable_layers(randomised)))
    if max_layers is not None:
        layers = layers[: check_int("max_layers", max_layers, 1)]
    if not layers:
        raise ValueError("model has no Conv2d or Linear layer to randomise")
    generator = seeded_generator(seed)
    stages, corr, corr_abs = [original], [], []
    for _name, module in progress_bar(layers, desc="randomising", enabled=progress):
        weight = module.weight
        fan_in = weight[0].numel()
        new = torch.randn(weight.shape, generator=generator) * math.sqrt(2.0 / fan_in)
        with torch.no_grad():
            weight.copy_(new.to(weight.device, weight.dtype))
            if module.bias is not None:
                module.bias.zero_()
        current = _explained_maps(explain(randomised, images, targets))
        stages.append(current)
        corr.append(spearman(original, current))
        corr_abs.append(spearman(original.abs(), current.abs()))
    return SanityResult([name for name, _ in layers], torch.stack(corr), torch.stack(corr_abs), torch.stack(stages))
