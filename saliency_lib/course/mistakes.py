"""The known wrong answers of the exercises of notebooks 01, 02, 04 and 05, so that their checks can name them.

Each ``*_mistakes`` function takes the inputs of one case of a check cell and returns ``(message, wrong result)``
pairs for :func:`~saliency_lib.course.exercises.check_exercise`'s ``known_mistakes``: each wrong result is the
solution with one mistake, one that ``docs/instructor.md`` lists for that exercise, and its message names it and
says where to look. A mistake that raises instead of returning is named by the ``*_ERRORS`` of its exercise
(``exercise_or_solution(..., known_errors=...)``). Notebook 03's loop has its own module,
:mod:`~saliency_lib.course.loop_exercise`.

Not every listed mistake is one: where the library's answer comes out the same (skimage's default
``anti_aliasing``, which smooths only when shrinking; ``avg_pool2d`` on ``(B, H, W)``, which it reads as channels)
the check passes, and the instructor guide says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..method.core import class_probabilities

__all__ = [
    "UPSAMPLE",
    "UPDATE_GRID",
    "UPDATE_GRID_ERRORS",
    "DELETION",
    "CONTEXT_WEIGHTS",
    "CONTEXT_WEIGHTS_ERRORS",
    "upsample_mistakes",
    "update_grid_mistakes",
    "deletion_mistakes",
    "context_weights_mistakes",
]

Pairs = list[tuple[str, object]]

# ---- 01 · my_upsample(grid, size, shift) ------------------------------------------------------------------------
#: mistake -> what the check says when the learner's mask equals that mistake's.
UPSAMPLE: dict[str, str] = {
    "floor": "It matches cells of floor(H / s) pixels: the cell size must round up (math.ceil; 28 / 8 = 3.5 is 4 "
    "pixels), so that s + 1 cells still cover the image after any shift.",
    "s_cells": "It matches a resize to s · cell pixels per side: resize to (s + 1) · cell, one cell more than the "
    "grid, so that the window shifted by up to one cell stays inside.",
    "mode_constant": 'It matches resize with mode="constant" (zeros beyond the grid blur into its edge cells): '
    "use mode=\"reflect\", the authors' and RISE's call.",
    "nearest": "It matches nearest-neighbour resizing (order=0, blocks with hard edges): the masks are smooth, "
    "order=1 (bilinear).",
    "swapped_shift": "It matches a crop with dy and dx swapped: rows are y, so the window is [dy : dy + H, dx : dx "
    "+ W] for shift = (dy, dx).",
}


def _upsample(grid, size, shift, *, round_cell=math.ceil, cells=1, mode="reflect", order=1, swap=False):
    import skimage.transform  # only the checks of notebook 01 need it

    grid_size = grid.shape[-1]
    height, width = size
    cell_h, cell_w = round_cell(height / grid_size), round_cell(width / grid_size)
    shape = ((grid_size + cells) * cell_h, (grid_size + cells) * cell_w)
    big = skimage.transform.resize(grid.double().numpy(), shape, order=order, mode=mode, anti_aliasing=False)
    dy, dx = reversed(shift) if swap else shift
    return torch.from_numpy(big[dy : dy + height, dx : dx + width]).float()


def upsample_mistakes(grid: torch.Tensor, size: tuple[int, int], shift: tuple[int, int]) -> Pairs:
    """Notebook 01: the masks of the known wrong ``my_upsample``\\ s for one grid ``(s, s)``, size and shift."""
    variants = {
        "floor": dict(round_cell=math.floor),
        "s_cells": dict(cells=0),
        "mode_constant": dict(mode="constant"),
        "nearest": dict(order=0),
        "swapped_shift": dict(swap=True),
    }
    return _each(UPSAMPLE, {key: (lambda kw=kw: _upsample(grid, size, shift, **kw)) for key, kw in variants.items()})


# ---- 02 · my_update_grid(grid, p, delta_p, step_size, uniform) ----------------------------------------------------
UPDATE_GRID: dict[str, str] = {
    "p_not_per_grid": "It matches p (or delta_p) broadcast along the last axis of the grids: p holds one value per "
    "grid, shape (B,), so compare per grid with p.view(-1, 1, 1) (delta_p too).",
    "on_inverted": "It matches on-cells kept when uniform > p: an on-cell stays on when uniform < p (probability "
    "p); only off-cells turn on when uniform >= p.",
    "rule_inverted": "It matches the rule inverted (on-cells kept when uniform >= p, off-cells turned on when "
    "uniform < p): an on-cell stays on with probability p, an off-cell turns on with probability 1 - p.",
    "turned_on_only": "It matches rescaling only the cells that were turned on: rescale every cell whose value went "
    "up (D = new - old > 0 on the values), so a kept cell below 1 becomes 1 and is rescaled too.",
    "signed_delta_p": "It matches the factor 1 - step_size * delta_p: the rescaling uses |delta_p| (abs), so a "
    "drop of p shrinks the cells as a rise does.",
}
#: An error a mistake of notebook 02 raises -> what the check says (``exercise_or_solution(known_errors=...)``).
UPDATE_GRID_ERRORS: dict[str, str] = {
    r"must match the size of tensor": "stopped on a broadcasting error: p and delta_p hold one value per grid, "
    "shape (B,), and the grids are (B, s, s); compare per grid with p.view(-1, 1, 1) (delta_p too)",
}


def _update_grid(grid, p, delta_p, step_size, uniform, *, view_p=True, view_rate=True, keep="<", on_only=False, sign=1):
    was_on = grid > 0
    p_cells = p.view(-1, 1, 1) if view_p else p
    stays = uniform < p_cells if keep == "<" else (uniform > p_cells if keep == ">" else uniform >= p_cells)
    turns = uniform < p_cells if keep == "inverted" else uniform >= p_cells
    now_on = torch.where(was_on, stays, turns).float()
    rate = step_size * (delta_p.abs() if sign == 1 else delta_p)
    rate = rate.view(-1, 1, 1) if view_rate else rate
    grows = (now_on > 0) & ~was_on if on_only else now_on > grid
    return torch.where(grows, now_on * (1 - rate), now_on)


def update_grid_mistakes(
    grid: torch.Tensor, p: torch.Tensor, delta_p: torch.Tensor, step_size: float, uniform: torch.Tensor
) -> Pairs:
    """Notebook 02: the grids of the known wrong ``my_update_grid``\\ s for one round of the check.

    p broadcast along the last axis gives a result only when that axis has as many entries as there are grids
    (``B = s``); otherwise it raises, and :data:`UPDATE_GRID_ERRORS` names it.
    """
    args = grid, p, delta_p, step_size, uniform
    variants: list[tuple[str, Callable]] = [
        ("p_not_per_grid", lambda: _update_grid(*args, view_p=False, view_rate=False)),
        ("p_not_per_grid", lambda: _update_grid(*args, view_p=False)),
        ("p_not_per_grid", lambda: _update_grid(*args, view_rate=False)),
        ("on_inverted", lambda: _update_grid(*args, keep=">")),
        ("rule_inverted", lambda: _update_grid(*args, keep="inverted")),
        ("turned_on_only", lambda: _update_grid(*args, on_only=True)),
        ("signed_delta_p", lambda: _update_grid(*args, sign=-1)),
    ]
    return _each(UPDATE_GRID, variants)


# ---- 04 · my_deletion_auc(model, image, saliency_map, target, pixels_per_step) -----------------------------------
DELETION: dict[str, str] = {
    "t_points": "It matches a curve of T points: record T + 1 probabilities, from 0 pixels deleted to all of them "
    "(the curve must include both ends).",
    "least_salient_first": "It matches deleting the least salient pixels first: sort most salient first "
    "(argsort of -map).",
    "zero_reference": "It matches deleting to 0 (black): a deleted pixel takes the model's reference value, "
    "model.spec.reference().",
    "not_normalised": "It matches the area without dividing by the number of steps (np.trapezoid over the steps or the "
    "pixel counts): divide so that the area lies in [0, 1].",
    "unstable_sort": "It matches an unstable sort: tied saliency values then come in another order; sort with "
    "torch.argsort(-map.flatten(), stable=True).",
}


def _deleted(image, order, reference, pixels_per_step) -> list[torch.Tensor]:
    """The image after 0, 1, ..., T steps of deletion in ``order``: T + 1 images ``(1, C, H, W)``."""
    _, _, height, width = image.shape
    n_pixels = height * width
    images = []
    for step in range(math.ceil(n_pixels / pixels_per_step) + 1):
        keep = torch.ones(n_pixels)
        keep[order[: step * pixels_per_step]] = 0
        keep = keep.view(1, 1, height, width)
        images.append(image * keep + reference * (1 - keep))
    return images


def _area(curve: list[float], divide_by: float) -> float:
    return (sum(curve) - curve[0] / 2 - curve[-1] / 2) / divide_by


def deletion_mistakes(
    model, image: torch.Tensor, saliency_map: torch.Tensor, target: int, pixels_per_step: int
) -> Pairs:
    """Notebook 04: the AUCs of the known wrong ``my_deletion_auc``\\ s for one image ``(1, C, H, W)`` and map.

    Four deletion curves (T + 1 model calls each, plus one per unstable order that differs from the stable one).
    """
    target = int(target)
    flat = saliency_map.detach().cpu().flatten()
    reference = model.spec.reference()

    def probabilities(order, to=reference) -> list[float]:
        images = torch.cat(_deleted(image, order, to, pixels_per_step))
        return class_probabilities(model, images)[:, target].tolist()

    stable = torch.argsort(-flat, stable=True)
    right = probabilities(stable)
    steps = len(right) - 1
    pixels = [min(step * pixels_per_step, flat.numel()) for step in range(steps + 1)]
    pairs: Pairs = [
        (DELETION["t_points"], _area(short, divide_by))
        for short in (right[1:], right[:-1])
        for divide_by in (steps, steps - 1)
        if divide_by > 0
    ]
    pairs.append((DELETION["least_salient_first"], _area(probabilities(torch.argsort(flat, stable=True)), steps)))
    pairs.append((DELETION["zero_reference"], _area(probabilities(stable, to=torch.zeros_like(reference)), steps)))
    pairs.append((DELETION["not_normalised"], _area(right, 1)))
    pairs.append(
        (
            DELETION["not_normalised"],
            sum((a + b) / 2 * (x1 - x0) for a, b, x0, x1 in zip(right, right[1:], pixels, pixels[1:])),
        )
    )
    unstable = {tuple(torch.argsort(-flat).tolist()), tuple(np.argsort(-flat.numpy()).tolist())}
    for order in unstable - {tuple(stable.tolist())}:
        pairs.append((DELETION["unstable_sort"], _area(probabilities(torch.tensor(order)), steps)))
    return pairs


# ---- 05 · my_context_weights(hole, k) ----------------------------------------------------------------------------
CONTEXT_WEIGHTS: dict[str, str] = {
    "count_include_pad": "It matches count_include_pad=False: windows that reach outside the image are divided by "
    "fewer than k² values; the outside counts as 'not hole' and every window is divided by k².",
    "hole_not_zeroed": "It matches weights inside the hole as well: a pixel in the hole gets 0 (only known pixels "
    "are weighted).",
}
CONTEXT_WEIGHTS_ERRORS: dict[str, str] = {
    r"not implemented for 'Bool'": "stopped: avg_pool2d takes a float tensor, not the bool hole (convert it with "
    ".float())",
    r"pad should be at most half": "stopped: avg_pool2d refused the padding (padding=k?): a window centred on each "
    "pixel needs k // 2 on each side, which also keeps the size",
    r"must match the size of tensor": "stopped: avg_pool2d's result is not the size of the image, so it does not "
    "match the hole (its default stride is k, windows side by side): one window per pixel needs stride=1 and "
    "padding=k // 2",
}


def _context_weights(hole, k, *, count_include_pad=True, zero_hole=True):
    hole = hole.float().unsqueeze(1)
    near = F.avg_pool2d(hole, k, stride=1, padding=k // 2, count_include_pad=count_include_pad)
    return (((1 - hole) * near) if zero_hole else near)[:, 0]


def context_weights_mistakes(hole: torch.Tensor, k: int) -> Pairs:
    """Notebook 05: the weights of the known wrong ``my_context_weights``\\ es for holes ``(B, H, W)``."""
    variants = {
        "count_include_pad": dict(count_include_pad=False),
        "hole_not_zeroed": dict(zero_hole=False),
    }
    return _each(
        CONTEXT_WEIGHTS, {key: (lambda kw=kw: _context_weights(hole, k, **kw)) for key, kw in variants.items()}
    )


def _each(messages: dict[str, str], variants) -> Pairs:
    """``(message, result)`` for each variant that gives a result (one that raises, e.g. a shape that cannot
    broadcast for these inputs, has none)."""
    pairs = []
    for key, compute in variants.items() if isinstance(variants, dict) else variants:
        try:
            pairs.append((messages[key], compute()))
        except (RuntimeError, ValueError, IndexError):
            continue
    return pairs
