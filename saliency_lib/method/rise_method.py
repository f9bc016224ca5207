"""RISE (Petsiuk, Das & Saenko, BMVC 2018) on the same mask machinery as OISE: the method's closest relative.

RISE draws ``n_masks`` independent random grids (cells on with probability ``p_keep``), upsamples them the same
way as OISE (:class:`~saliency_lib.method.masks.Upsampler`, bilinear with a random shift), and weights each mask by
the target probability of the masked image::

    saliency = sum_i p_i * m_i / (n_masks * p_keep)

The same masks serve every image of the batch, as in the original code. Where OISE walks one mask at a time,
each step depending on the last, RISE's masks are independent, so any number of them go into one model call.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from . import masks as M
from .checks import check_fraction, check_images, check_int
from .core import (
    broadcast_reference,
    call_model,
    class_probabilities,
    default_batch_size,
    model_device,
    resolve_reference,
    resolve_target,
    seeded_generator,
    to_probabilities,
)
from .progress import progress_bar
from .results import SaliencyResult
from .threads import runs_black_box

__all__ = ["rise", "RISE"]


@runs_black_box
def rise(
    model: nn.Module,
    images: torch.Tensor,
    target=None,
    *,
    n_masks: int = 4000,
    grid_size: int = 8,
    p_keep: float = 0.5,
    reference="mean",
    batch_size: int | None = None,
    seed: int | None = None,
    progress: bool = False,
    output: str = "logits",
) -> SaliencyResult:
    """RISE saliency maps.

    Args:
        model: maps ``(B, C, H, W)`` images to logits ``(B, n_classes)``.
        images: float ``(B, C, H, W)`` or ``(C, H, W)``.
        target: ``None`` (top-1 of the clean image), an int or one int per image.
        n_masks: number of random masks = model calls per image (RISE: 4000 for ResNet50). Masks are drawn in
            chunks of 100, so ``n_masks = N`` draws the first N masks of a longer run only when N is a multiple of 100.
        grid_size: cells per side (RISE: 7 or 8).
        p_keep: probability a cell is on (0.5 as in RISE's easy-start notebook, which the authors copied; RISE's
            saliency and evaluation notebooks use 0.1 with s = 8 or 10, compared in protocol_choices.md).
        reference: masked-pixel value, as in :func:`saliency_lib.method.oise_method.oise` (default: the dataset mean =
        RISE's 0
            after normalisation).
        batch_size: masked images per model call, over all images (default:
            :func:`saliency_lib.method.core.default_batch_size`, chosen from the image size: 100 masks x B images in one
            call for small images, e.g. up to 1,536 at 28 x 28; 8 at a time at 3 x 224 x 224). The masked images
            are built one call at a time, so memory stays bounded. It does not change the masks drawn.
        seed: bit-identical output for the same seed (a private generator; the global state is untouched).
        progress: ``tqdm.auto`` progress bar.
        output: ``"logits"`` or ``"probabilities"``.

    Returns:
        A :class:`~saliency_lib.method.results.SaliencyResult`: ``maps`` float32 ``(B, H, W)``, RISE's normalised
        expectation (near [0, 1], not rescaled); ``model_calls`` (per image), ``target``, ``partial`` (stopped by
        ``KeyboardInterrupt``; the sum so far is normalised by the masks actually used), ``steps_done`` (masks
        used) and ``seconds``.
    """
    began = time.perf_counter()
    images, _ = check_images(images, model)
    batch, _, height, width = images.shape
    check_int("grid_size", grid_size, 1, min(height, width))
    check_int("n_masks", n_masks, 1)
    check_fraction("p_keep", p_keep, open_low=True)
    if batch_size is not None:
        check_int("batch_size", batch_size, 1)
    device = model_device(model, images.device)
    images = images.to(device)
    if batch_size is None:
        batch_size = default_batch_size(images)
    targets = None
    if target is None:  # top-1 of the clean image: one extra, checked model call
        targets = resolve_target(None, class_probabilities(model, images, output=output, batch_size=batch_size))
    ref = resolve_reference(reference, model, images)
    generator = seeded_generator(seed, device)
    upsampler = M.Upsampler(grid_size, (height, width), device=device)

    # Masks are drawn in fixed chunks of 100 (independent of batch_size), each chunk evaluated on every image.
    masks_per_draw = 100
    total = torch.zeros(batch, height, width, device=device)
    used = 0
    partial = False
    bar = progress_bar(total=n_masks, desc="RISE", unit="mask", enabled=progress)
    with torch.inference_mode():
        ref = broadcast_reference(ref, images)
        ref_rows = ref.unsqueeze(1) if ref.dim() == 4 else ref  # (B, 1, C, H, W) or broadcastable
        difference = (images - ref).unsqueeze(1)  # (B, 1, C, H, W)
        try:
            for start in range(0, n_masks, masks_per_draw):
                count = min(masks_per_draw, n_masks - start)
                grids = M.init_grid(count, grid_size, p_keep, generator=generator)
                shifts = M.random_shifts(count, upsampler.cell, generator=generator)
                masks = upsampler(grids, shifts)  # (n, H, W)
                # Every image with every mask, image-major (row r = image r // n, mask r % n), built and
                # evaluated batch_size rows at a time: the B * n masked images never exist at once.
                chunks = []
                for first in range(0, batch * count, batch_size):
                    rows = torch.arange(first, min(first + batch_size, batch * count), device=device)
                    which, mask_index = rows // count, rows % count
                    rows_ref = ref_rows[which, 0] if ref_rows.dim() == 5 else ref_rows
                    masked = torch.addcmul(rows_ref, difference[which, 0], masks[mask_index].unsqueeze(1))
                    if start == 0:  # the checked call: output shape, finite values, the channels the model accepts
                        chunks.append(class_probabilities(model, masked, output=output, batch_size=batch_size))
                    else:
                        chunks.append(to_probabilities(call_model(model, masked, batch_size), output))
                probs = torch.cat(chunks)
                if start == 0 and targets is None:
                    targets = resolve_target(target, probs.view(batch, count, -1)[:, 0])
                p = probs.view(batch, count, -1).gather(2, targets.view(batch, 1, 1).expand(batch, count, 1))[..., 0]
                total += torch.einsum("bn,nhw->bhw", p, masks)
                used += count
                bar.update(count)
        except KeyboardInterrupt:
            partial = True
        finally:
            bar.close()
    saliency = total.clone() / (max(used, 1) * p_keep)
    if not bool(torch.isfinite(saliency).all()):
        raise ValueError("the model returned NaN or infinite values for a masked image")
    return SaliencyResult(
        maps=saliency,
        model_calls=used,
        target=targets.clone(),  # an ordinary tensor (not an inference tensor)
        partial=partial,
        steps_done=used,
        seconds=time.perf_counter() - began,
    )


class RISE:
    """Captum-shaped entry point: ``RISE(model).attribute(images, target=...)`` is ``rise(model, images, target)``.

    Returns :func:`rise`'s :class:`~saliency_lib.method.results.SaliencyResult`: its maps are ``(B, H, W)`` (per pixel),
    where Captum's methods return a tensor of the input's shape.
    """

    def __init__(self, forward_func) -> None:
        self.forward_func = forward_func

    def attribute(self, inputs: torch.Tensor, target=None, **options) -> SaliencyResult:
        """:func:`rise`'s result (``.maps``: ``(B, H, W)``); ``options`` are its keyword arguments."""
        return rise(self.forward_func, inputs, target, **options)
