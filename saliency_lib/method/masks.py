"""The mask machinery shared by OISE and RISE, one public piece per step of the method.

Shapes: grids ``(B, s, s)``, upsampled masks ``(B, H, W)``, images ``(B, C, H, W)``. All functions are pure,
batched and seedable (``generator=``); none touches the global random state.

==========================  ===========================================================================  ==========
piece                       what it does                                                                 whose
==========================  ===========================================================================  ==========
``init_grid``               cells on with probability ``p_init`` (0.3), i.i.d.                           paper
``cell_size``               ``ceil(H / s), ceil(W / s)`` pixels per cell (per axis, as RISE's code)      paper/RISE
``random_shifts``           crop offsets ``(dy, dx)`` uniform in ``[0, cell)``                           paper/RISE
``upsample``                bilinear to ``(s+1)*cell``, crop H x W at the offset                         paper/RISE
``Upsampler``               the same, with the interpolation weights precomputed (used in the loops)     ours
``apply_mask``              ``x * m + reference * (1 - m)``; the default reference is the dataset mean   paper
``update_grid``             keep on-cells with prob. p, turn off-cells on with prob. 1-p, rescale        paper
``postprocess``             subtract the mean, clip at 0, scale to [0, 1]                                paper
==========================  ===========================================================================  ==========

Upsampling is written as two small matrix products, ``mask = R[dy] @ grid @ C[dx].T``: bilinear
interpolation is separable, so every row (column) of the big mask is a fixed mix of at most two grid rows
(columns). ``R[dy]`` holds those weights for the ``H`` rows of the crop that starts at ``dy``. This gives the same
numbers as the authors' (and RISE's) ``skimage.transform.resize(grid, up_size, order=1, mode='reflect',
anti_aliasing=False)[dy:dy + H, dx:dx + W]`` - half-pixel centres and mirrored edges - to float rounding,
with no Python loop over masks and no large intermediate image.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import torch

from .checks import check_fraction, check_int

__all__ = [
    "init_grid",
    "cell_size",
    "random_shifts",
    "interpolation_matrix",
    "Upsampler",
    "upsample",
    "apply_mask",
    "blur",
    "flip_cells",
    "update_grid",
    "CellChanges",
    "cell_changes",
    "rescale_cells",
    "reference_tensor",
    "postprocess",
]


def _source_device(generator: torch.Generator | None, device) -> torch.device:
    """Where random numbers are drawn: on the generator's device (a CUDA generator cannot fill CPU tensors)."""
    if generator is not None:
        return generator.device
    return torch.device(device) if device is not None else torch.device("cpu")


def init_grid(
    batch: int,
    grid_size: int = 8,
    p_init: float = 0.3,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Random coarse masks: each cell is 1 with probability ``p_init``, else 0 (paper: s = 8, p = 0.3).

    Args:
        batch: number of grids B.
        grid_size: cells per side s.
        p_init: probability that a cell starts on (RISE calls it ``p1`` and uses 0.5).
        generator: random source (its device decides where the numbers are drawn).
        device: device of the returned grid (default: the generator's, else CPU).

    Returns:
        float32 ``(B, s, s)`` with values in {0, 1}.
    """
    check_int("grid_size", grid_size)
    check_int("batch", batch)
    check_fraction("p_init", p_init)
    source = _source_device(generator, device)
    grid = (torch.rand(batch, grid_size, grid_size, generator=generator, device=source) < p_init).float()
    return grid.to(device) if device is not None else grid


def cell_size(size: tuple[int, int], grid_size: int) -> tuple[int, int]:
    """Height and width of one grid cell in pixels: ``ceil(H / s), ceil(W / s)``.

    The paper states ``cell = ceil(H / s)`` for square images; the authors' code (copied from RISE) computes it
    per axis, which is what we do, so a non-square image gets non-square cells and still an ``s x s`` grid.
    """
    check_int("grid_size", grid_size)
    return math.ceil(int(size[0]) / grid_size), math.ceil(int(size[1]) / grid_size)


def random_shifts(
    batch: int,
    cell: tuple[int, int],
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Random crop offsets ``(dy, dx)``, uniform in ``[0, cell_h) x [0, cell_w)``. int64 ``(B, 2)``."""
    source = _source_device(generator, device)
    dy = torch.randint(0, cell[0], (batch,), generator=generator, device=source)
    dx = torch.randint(0, cell[1], (batch,), generator=generator, device=source)
    shifts = torch.stack([dy, dx], dim=1)
    return shifts.to(device) if device is not None else shifts


def interpolation_matrix(
    n_in: int, n_out: int, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """Weights of 1-D linear resizing from ``n_in`` to ``n_out`` samples: ``(n_out, n_in)``, rows sum to 1.

    Half-pixel centres (output ``i`` reads input position ``(i + 0.5) * n_in / n_out - 0.5``) and mirrored edges
    (position ``-x`` reads ``+x``), exactly what ``skimage.transform.resize(order=1, mode='reflect')`` does -
    the call the authors' and RISE's code use. ``M @ v`` resizes a vector ``v`` of length ``n_in``.
    """
    check_int("n_in", n_in)
    check_int("n_out", n_out)
    position = (torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5
    low = torch.floor(position)
    frac = position - low
    low = low.long()

    def mirror(index: torch.Tensor) -> torch.Tensor:
        if n_in == 1:
            return torch.zeros_like(index)
        period = 2 * (n_in - 1)
        index = index.abs() % period
        return torch.where(index > n_in - 1, period - index, index)

    weights = torch.zeros(n_out, n_in, dtype=torch.float64)
    rows = torch.arange(n_out)
    weights.index_put_((rows, mirror(low)), 1 - frac, accumulate=True)
    weights.index_put_((rows, mirror(low + 1)), frac, accumulate=True)
    return weights.to(dtype=dtype, device=device)


class Upsampler:
    """Precomputed RISE-style upsampling for one ``(s, H, W)``: ``mask = rows[dy] @ grid @ cols[dx].T``.

    Attributes:
        rows: ``(cell_h, H, s)`` - for each vertical offset, the weights of the ``H`` cropped rows.
        cols: ``(cell_w, W, s)`` - the same for columns.
        cell: ``(cell_h, cell_w)`` from :func:`cell_size`.

    Call it with grids ``(B, s, s)`` and shifts ``(B, 2)``; :func:`upsample` is the one-off version.
    Making one per run and reusing it is our speed-up, not part of the method.
    """

    def __init__(
        self,
        grid_size: int,
        size: tuple[int, int],
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ):
        height, width = int(size[0]), int(size[1])
        self.grid_size = grid_size
        self.size = (height, width)
        self.cell = cell_size((height, width), grid_size)
        full_h = interpolation_matrix(grid_size, (grid_size + 1) * self.cell[0], dtype=dtype, device=device)
        full_w = interpolation_matrix(grid_size, (grid_size + 1) * self.cell[1], dtype=dtype, device=device)
        # Every crop window, stacked: rows[dy] = full_h[dy:dy + H] (a few hundred KB at 224 px).
        self.rows = torch.stack([full_h[dy : dy + height] for dy in range(self.cell[0])])
        self.cols = torch.stack([full_w[dx : dx + width] for dx in range(self.cell[1])])
        self.cols_t = self.cols.transpose(1, 2).contiguous()  # (cell_w, s, W), ready for the right product

    def __call__(self, grids: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
        """Masks ``(B, H, W)`` from grids ``(B, s, s)`` and integer shifts ``(B, 2)`` = ``(dy, dx)``."""
        return self.apply(grids, self.rows[shifts[:, 0]], self.cols_t[shifts[:, 1]])

    @staticmethod
    def apply(grids: torch.Tensor, rows: torch.Tensor, cols_t: torch.Tensor) -> torch.Tensor:
        """``rows @ grids @ cols_t`` for already selected weights ``(B, H, s)`` and ``(B, s, W)``."""
        return torch.bmm(torch.bmm(rows, grids), cols_t)  # bmm: a few microseconds less than matmul per call


@lru_cache(maxsize=32)
def _cached_upsampler(grid_size: int, size: tuple[int, int], dtype: torch.dtype, device: str) -> Upsampler:
    return Upsampler(grid_size, size, dtype=dtype, device=device)


def upsample(
    grids: torch.Tensor,
    size: tuple[int, int],
    *,
    shifts: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """RISE-style upsampling of coarse grids to smooth image-sized masks (the paper's step 2).

    Each ``(s, s)`` grid is resized bilinearly to ``((s+1)*cell_h, (s+1)*cell_w)`` with
    ``cell = ceil(size / s)`` (:func:`cell_size`) and an ``H x W`` window is cropped at offset
    ``shifts[b] = (dy, dx)``. The extra cell and the random offset make the masks shift-invariant rather than
    tied to cell borders. Edges are mirrored as in ``skimage.transform.resize(mode='reflect')`` (the authors').

    Args:
        grids: float ``(B, s, s)`` (values in [0, 1]; rescaled cells may be slightly below 1).
        size: output ``(H, W)``.
        shifts: int ``(B, 2)`` offsets in ``[0, cell)``; drawn with ``generator`` when ``None``.
        generator: random source for the offsets.

    Returns:
        float ``(B, H, W)`` on the grids' device, values in [0, 1] when the grid's are.
    """
    if not isinstance(grids, torch.Tensor) or grids.dim() != 3 or grids.shape[1] != grids.shape[2]:
        shape = tuple(grids.shape) if isinstance(grids, torch.Tensor) else type(grids).__name__
        raise ValueError(f"grids must have shape (B, s, s), got {shape}")
    if not grids.is_floating_point():
        grids = grids.float()
    batch, grid_size = grids.shape[0], grids.shape[1]
    height, width = int(size[0]), int(size[1])
    if height < 1 or width < 1:
        raise ValueError(f"size must be (H, W) with H, W >= 1, got {size}")
    upsampler = _cached_upsampler(grid_size, (height, width), grids.dtype, str(grids.device))
    if shifts is None:
        shifts = random_shifts(batch, upsampler.cell, generator=generator).to(grids.device)
    else:
        if shifts.shape != (batch, 2):
            raise ValueError(f"shifts must have shape ({batch}, 2), got {tuple(shifts.shape)}")
        if shifts.is_floating_point():
            raise TypeError(f"shifts must be integers, got dtype {shifts.dtype}")
        shifts = shifts.to(grids.device).long()
        if (shifts < 0).any() or (shifts[:, 0] >= upsampler.cell[0]).any() or (shifts[:, 1] >= upsampler.cell[1]).any():
            raise ValueError(f"shifts must lie in [0, {upsampler.cell[0]}) x [0, {upsampler.cell[1]}) (one cell)")
    return upsampler(grids, shifts)


def blur(images: torch.Tensor, kernel_size: int = 11, sigma: float = 5.0) -> torch.Tensor:
    """Gaussian blur of ``(B, C, H, W)`` images: torchvision's Gaussian, kernel 11, sigma 5, reflect padding.

    RISE's insertion start uses the same kernel size and sigma, but its ``gkern(11, 5)`` is nearly a box filter at
    that size and pads with zeros; ``saliency_research/bench/protocol_choices.py`` (``rise_blur``) reproduces it.
    """
    from torchvision.transforms.functional import gaussian_blur

    kernel_size = min(kernel_size, 2 * (min(images.shape[-2:]) // 2) - 1)  # fits small images (28 px)
    if kernel_size < 3:  # a side of 1 or 2 pixels: nothing to blur
        return images.clone()
    return gaussian_blur(images, [kernel_size, kernel_size], [sigma, sigma])


def reference_tensor(reference: float | torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """A masked-pixel value (a number, ``(C, 1, 1)`` or ``(B, C, H, W)``) as a tensor of the images' dtype/device."""
    if isinstance(reference, torch.Tensor):
        return reference.to(images.device, images.dtype)
    return torch.tensor(float(reference), dtype=images.dtype, device=images.device)


def apply_mask(images: torch.Tensor, masks: torch.Tensor, reference: float | torch.Tensor = 0.0) -> torch.Tensor:
    """Keep pixels where the mask is 1, replace them by ``reference`` where it is 0 (the paper's step 3).

    ``out = reference + (images - reference) * masks``. With ``reference`` = the dataset mean in [0, 1] pixel
    space this is the authors' ``x * up(M)`` in the model's normalised space (where the mean is 0).

    Args:
        images: float ``(B, C, H, W)``.
        masks: float ``(B, H, W)`` or ``(B, 1, H, W)`` in [0, 1].
        reference: a number, a per-channel tensor ``(C, 1, 1)``, or images ``(B, C, H, W)`` (e.g. a blurred copy).

    Returns:
        float ``(B, C, H, W)``.
    """
    if images.dim() != 4:
        raise ValueError(f"images must have shape (B, C, H, W), got {tuple(images.shape)}")
    if masks.dim() == 3:
        masks = masks.unsqueeze(1)
    if masks.dim() != 4 or masks.shape[1] != 1 or masks.shape[-2:] != images.shape[-2:]:
        raise ValueError(
            f"masks must have shape (B, H, W) = (*, {images.shape[-2]}, {images.shape[-1]}), got {tuple(masks.shape)}"
        )
    reference = reference_tensor(reference, images)
    # One fused op, the same one the OISE loop uses, so the pieces and the loop give identical numbers.
    return torch.addcmul(reference, images - reference, masks)


class CellChanges(NamedTuple):
    """Boolean ``(B, s, s)`` maps of what one update did to each cell."""

    kept: torch.Tensor  # on before and on after
    dropped: torch.Tensor  # on before, off after
    turned_on: torch.Tensor  # off before, on after
    stayed_off: torch.Tensor


def cell_changes(old: torch.Tensor, new: torch.Tensor) -> CellChanges:
    """Which cells were kept, dropped, turned on or stayed off between two grids ``(B, s, s)``."""
    was_on, is_on = old > 0, new > 0
    return CellChanges(was_on & is_on, was_on & ~is_on, ~was_on & is_on, ~was_on & ~is_on)


def flip_cells(was_on: torch.Tensor, p: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """The resampling half of the update: which cells are on afterwards. Boolean ``(B, s, s)``.

    The paper: an on-cell stays on with probability ``p``; an off-cell turns on with probability ``1 - p``.
    Said in one line: **every cell keeps its state with probability p and flips with probability 1 - p**, so
    with one uniform number per cell, ``on_after = (uniform < p) == was_on``.

    Args:
        was_on: boolean ``(B, s, s)``.
        p: ``(B, 1, 1)`` target probabilities (or anything broadcasting to the grids).
        uniform: ``(B, s, s)`` uniform numbers in [0, 1).
    """
    return (uniform < p) == was_on


def update_grid(
    grids: torch.Tensor,
    p: torch.Tensor,
    delta_p: torch.Tensor,
    *,
    step_size: float = 0.02,
    generator: torch.Generator | None = None,
    uniform: torch.Tensor | None = None,
) -> torch.Tensor:
    """One "pixel weighting" step of the paper (its step 4), for a batch of grids.

    1. Resample (:func:`flip_cells`): every on-cell (value > 0) stays on with probability ``p`` (else 0);
       every off-cell turns on with probability ``1 - p``. Every cell is now exactly 0 or 1.
    2. Rescale with ``D = new - old`` computed on the *values* (as the authors' code does): cells with
       ``D > 0`` are multiplied by ``1 - step_size * |delta_p|``, cells with ``D < 0`` by
       ``1 + step_size * |delta_p|`` (they are 0, so they stay 0), cells with ``D = 0`` are unchanged.
       ``D > 0`` holds for cells that turned on *and* for kept cells whose old value was below 1 (rescaled
       earlier), so a rescaled cell stays rescaled (by the latest ``|delta_p|``) until it is switched off.

    A mask that keeps the class (p high) is mostly kept; one that loses it is mostly inverted.

    Args:
        grids: float ``(B, s, s)`` with values in [0, 1].
        p: target-class probability of each masked image, ``(B,)`` in [0, 1].
        delta_p: ``p - p_previous``, ``(B,)``.
        step_size: the paper's learning rate lr (0.02), in [0, 1].
        generator: random source (ignored when ``uniform`` is given).
        uniform: optional ``(B, s, s)`` uniform numbers in [0, 1) to use instead of drawing them.

    Returns:
        float ``(B, s, s)``: values in {0, 1, 1 - step_size*|delta_p|}.
    """
    if not isinstance(grids, torch.Tensor) or grids.dim() != 3:
        shape = tuple(grids.shape) if isinstance(grids, torch.Tensor) else type(grids).__name__
        raise ValueError(f"grids must have shape (B, s, s), got {shape}")
    check_fraction("step_size", step_size)
    batch = grids.shape[0]
    p = torch.as_tensor(p, dtype=grids.dtype, device=grids.device).reshape(-1)
    delta_p = torch.as_tensor(delta_p, dtype=grids.dtype, device=grids.device).reshape(-1)
    if p.numel() != batch or delta_p.numel() != batch:
        raise ValueError(f"p and delta_p need one value per grid ({batch}), got {p.numel()} and {delta_p.numel()}")
    if not bool(torch.all((p >= 0) & (p <= 1))):
        raise ValueError("p must be probabilities in [0, 1]")
    if uniform is None:
        source = _source_device(generator, grids.device)
        uniform = torch.rand(grids.shape, generator=generator, device=source).to(grids.device)
    elif uniform.shape != grids.shape:
        raise ValueError(f"uniform must have the grids' shape {tuple(grids.shape)}, got {tuple(uniform.shape)}")
    on = flip_cells(grids > 0, p.view(-1, 1, 1), uniform).to(grids.dtype)
    shrink = 1 - step_size * delta_p.abs().view(-1, 1, 1)
    return rescale_cells(on, grids, shrink)


def rescale_cells(on: torch.Tensor, old: torch.Tensor, shrink: torch.Tensor) -> torch.Tensor:
    """The rescaling half of the update (``on``, ``old``: ``(B, s, s)``; ``shrink``: ``(B, 1, 1)``).

    ``shrink = 1 - lr |delta_p|`` where ``D = on - old > 0``, else ``on`` (``D < 0`` cells are 0 either way)."""
    return torch.where(on > old, shrink, on)


def postprocess(saliency_sum: torch.Tensor, mean_fraction: float = 1.0) -> torch.Tensor:
    """The paper's post-processing: ``max(S - mean(S), 0) / max(...)`` per map (0 where the map is flat).

    Args:
        saliency_sum: float ``(B, H, W)``, the accumulated masks.
        mean_fraction: how much of the mean to subtract. 1.0 is the method as described (our reference,
            ``method.md``); the authors' ``explainer.py`` has a helper ``process_sal`` subtracting 0.96 of the
            mean, which leaves a faint floor of positive values.

    Returns:
        float ``(B, H, W)`` in [0, 1].
    """
    if not isinstance(saliency_sum, torch.Tensor) or saliency_sum.dim() != 3:
        shape = tuple(saliency_sum.shape) if isinstance(saliency_sum, torch.Tensor) else type(saliency_sum).__name__
        raise ValueError(f"saliency_sum must have shape (B, H, W), got {shape}")
    centred = (saliency_sum - mean_fraction * saliency_sum.mean(dim=(1, 2), keepdim=True)).clamp_min(0)
    peak = centred.amax(dim=(1, 2), keepdim=True)
    return torch.where(peak > 0, centred / peak.clamp_min(torch.finfo(centred.dtype).tiny), torch.zeros_like(centred))
