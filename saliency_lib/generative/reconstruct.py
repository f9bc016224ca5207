"""Part B: regenerate the salient region with a generative model and check that the decision holds.

The authors' "acceptable variations" (semantic inpainting after Yeh et al., CVPR 2017; ``docs/method.md``)::

    B  = salient_region(saliency, fraction)          # the hole: the most salient pixels (1 = regenerate)
    K  = 1 - B                                       # the context: pixels we keep
    W  = context_weights(B)  = K * boxfilter_k(B)    # known pixels near the hole count most
    z* = argmin_z  ||W * (G(z) - x)||_1  +  lambda * (-log D(G(z)))     # many codes per image, in parallel
    x' = K * x + B * G(z*)                           # one reconstruction per code
    agreement = share of x' whose top-1 class equals the original prediction

Paper's choices: DCGAN ``G``/``D``, ``z`` in ``[-1, 1]^100`` (clipped after each step), lambda = 0.005, Nesterov
momentum (lr 0.01, momentum 0.9), 64 codes per image, 1000-1500 steps, box filter k = 15 at 64 px (70 at 224 px).
Ours: k = 7 at 28 px (the paper's k/size ratio), the defaults of :func:`inpaint` (fewer codes and steps so a CPU
can run a whole test set), the realism loss per code (the authors' TensorFlow code averages it over the batch,
which only rescales lambda), and the region rule of :func:`salient_region`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..method.checks import check_fraction, check_images, check_int, check_maps, check_number
from ..method.core import broadcast_reference, class_probabilities, seeded_generator
from ..method.progress import progress_bar

__all__ = [
    "CONTEXT_KERNEL",
    "salient_region",
    "box_region",
    "random_region",
    "context_weights",
    "InpaintResult",
    "inpaint",
    "fill_region",
    "predictions",
    "agreement",
]

CONTEXT_KERNEL = 7  # ours: the paper's k = 15 at 64 px, scaled to 28 px


def salient_region(saliency: torch.Tensor, fraction: float, *, box: bool = False) -> torch.Tensor:
    """The salient region: the ``fraction`` of pixels with the highest saliency (or the box around them).

    Exactly ``round(fraction * H * W)`` pixels (at least 1) per map; ties are broken by pixel order (row-major),
    so the result is deterministic.

    Args:
        saliency: ``(B, H, W)`` (or ``(H, W)``) maps, any range.
        fraction: share of the pixels to select, in (0, 1].
        box: return the bounding box of the selected pixels instead (the paper's "salient box").

    Returns:
        bool ``(B, H, W)``: True = in the region (to be regenerated).
    """
    saliency = check_maps(saliency, name="saliency")
    fraction = check_fraction("fraction", fraction, open_low=True)
    batch, height, width = saliency.shape
    count = max(1, round(fraction * height * width))
    flat = saliency.reshape(batch, -1).float()
    # Stable sort: equal values keep pixel order, so ties never depend on the platform.
    order = torch.sort(flat, dim=1, descending=True, stable=True).indices[:, :count]
    region = torch.zeros_like(flat, dtype=torch.bool).scatter_(1, order, True).view(batch, height, width)
    return box_region(region) if box else region


def box_region(region: torch.Tensor) -> torch.Tensor:
    """The bounding box of each region: bool ``(B, H, W)`` -> bool ``(B, H, W)`` (an empty region stays empty)."""
    region = check_maps(region, name="region").bool()
    rows, cols = region.any(dim=2), region.any(dim=1)  # (B, H), (B, W)
    inside_rows = rows.cumsum(1).gt(0) & rows.flip(1).cumsum(1).flip(1).gt(0)
    inside_cols = cols.cumsum(1).gt(0) & cols.flip(1).cumsum(1).flip(1).gt(0)
    return inside_rows[:, :, None] & inside_cols[:, None, :]


def random_region(like: torch.Tensor, *, grid_size: int = 7, seed: int | None = None) -> torch.Tensor:
    """A random region with exactly as many pixels as each region in ``like`` (the control; ours).

    The pixels are the top ones of a smooth random map (a uniform ``grid_size`` x ``grid_size`` grid upsampled
    bilinearly), so the region is made of blobs like a salient region, not scattered single pixels (which a
    generator would fill from their neighbours too easily).

    Args:
        like: bool ``(B, H, W)`` regions.
        grid_size: cells of the random map per side (smaller = larger blobs).
        seed: seed of a private generator (``None``: fresh); the global random state is untouched.

    Returns:
        bool ``(B, H, W)`` with ``random.sum((1, 2)) == like.sum((1, 2))``.
    """
    like = check_maps(like, name="like").bool()
    check_int("grid_size", grid_size, 1)
    batch, height, width = like.shape
    generator = seeded_generator(seed)
    grid = torch.rand(batch, 1, grid_size, grid_size, generator=generator)
    smooth = F.interpolate(grid, size=(height, width), mode="bilinear", align_corners=False)[:, 0]
    smooth = smooth + 1e-6 * torch.rand(batch, height, width, generator=generator)  # no ties
    counts = like.reshape(batch, -1).sum(1)
    ranks = smooth.reshape(batch, -1).argsort(dim=1, descending=True).argsort(dim=1)
    return (ranks < counts[:, None]).view(batch, height, width).to(like.device)


def context_weights(region: torch.Tensor, kernel_size: int = CONTEXT_KERNEL) -> torch.Tensor:
    """Yeh et al.'s context weights ``W = K * boxfilter_k(B)``: known pixels weighted by how much hole is near.

    A known pixel's weight is the share of hole pixels in the ``k`` x ``k`` window around it (zero padding);
    pixels in the hole get 0, and known pixels far from the hole get 0 as well.

    Args:
        region: the hole B, bool or 0/1 float ``(B, H, W)`` (True = regenerated).
        kernel_size: the box filter size k, odd (paper: 15 at 64 px; default 7 at 28 px is ours).

    Returns:
        float32 ``(B, H, W)`` in [0, 1].
    """
    region = check_maps(region, name="region").float()
    check_int("kernel_size", kernel_size, 1)
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd (a window centred on the pixel), got {kernel_size}")
    near = F.avg_pool2d(region.unsqueeze(1), kernel_size, stride=1, padding=kernel_size // 2, count_include_pad=True)[
        :, 0
    ]
    return (1 - region) * near


@dataclass
class InpaintResult:
    """What :func:`inpaint` found (B images, K codes per image).

    Attributes:
        reconstructions: ``(B, K, C, H, W)`` = ``context * x + hole * G(z)``.
        generated: ``(B, K, C, H, W)`` the generator's whole images ``G(z)`` (the fill is their hole part).
        z: ``(B, K, latent_dim)`` the final codes (in [-1, 1]).
        loss, context_loss, realism_loss: ``(B, K)`` at the final codes (``loss = context + lambda * realism``).
        initial_loss: ``(B, K)`` the loss at the starting codes.
        history: ``(n_iterations + 1, B)`` the mean loss over each image's codes after every step (row 0 = start).
        partial: True when the search was stopped (``KeyboardInterrupt``) before ``n_iterations``.
        steps_done: optimisation steps completed.
        region: bool ``(B, H, W)`` the hole.
    """

    reconstructions: torch.Tensor
    generated: torch.Tensor
    z: torch.Tensor
    loss: torch.Tensor
    context_loss: torch.Tensor
    realism_loss: torch.Tensor
    initial_loss: torch.Tensor
    history: torch.Tensor
    region: torch.Tensor
    partial: bool = False
    steps_done: int = 0

    @property
    def fill(self) -> torch.Tensor:
        """``(B, K, C, H, W)``: the generated pixels in the hole, 0 elsewhere."""
        return self.generated * self.region[:, None, None].to(self.generated.dtype)


def _losses(
    generator: nn.Module,
    discriminator: nn.Module,
    z: torch.Tensor,
    target: torch.Tensor,
    weights: torch.Tensor,
    realism_weight: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-code losses. z ``(N, d)``, target ``(N, C, H, W)``, weights ``(N, 1, H, W)`` -> three ``(N,)``."""
    fake = generator(z)
    context = (weights * (fake - target).abs()).flatten(1).sum(1)
    realism = F.softplus(-discriminator(fake).reshape(-1))  # -log sigmoid(D logit) = -log D(G(z))
    return context + realism_weight * realism, context, realism


@torch.no_grad()
def _warm_start(
    generator: nn.Module,
    images: torch.Tensor,
    weights: torch.Tensor,
    n_codes: int,
    n_candidates: int,
    latent_dim: int,
    rng: torch.Generator,
) -> torch.Tensor:
    """``(B, n_codes, d)``: per image, the candidate codes whose images best match the context (weighted L1)."""
    check_int("n_candidates", n_candidates, n_codes)
    device = images.device
    candidates = torch.rand(n_candidates, latent_dim, generator=rng, device=device) * 2 - 1
    bank = torch.cat([generator(chunk) for chunk in candidates.split(1024)]).flatten(1)  # (N, H*W*C)
    flat_images = images.flatten(1)
    flat_weights = weights.expand_as(images).flatten(1)
    best = []
    for start in range(0, len(images), 8):  # 8 images x N candidates x pixels at a time bounds the memory
        diff = (bank[None] - flat_images[start : start + 8, None]).abs()
        losses = (diff * flat_weights[start : start + 8, None]).sum(-1)  # (b, N)
        best.append(losses.topk(n_codes, dim=1, largest=False).indices)
    return candidates[torch.cat(best)]


def inpaint(
    generator: nn.Module,
    discriminator: nn.Module,
    images: torch.Tensor,
    region: torch.Tensor,
    *,
    n_codes: int = 32,
    n_iterations: int = 300,
    lr: float = 0.01,
    momentum: float = 0.9,
    realism_weight: float = 0.005,
    kernel_size: int = CONTEXT_KERNEL,
    n_candidates: int | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    progress: bool = False,
    callback: Callable[[int, int, torch.Tensor], None] | None = None,
) -> InpaintResult:
    """Regenerate ``region`` of each image by searching the generator's latent space (Yeh et al.).

    For each image, ``n_codes`` codes ``z ~ U[-1, 1]^d`` are optimised in parallel (all images and codes in
    one batch) with SGD + Nesterov momentum on ``||W * (G(z) - x)||_1 + realism_weight * (-log D(G(z)))``,
    ``z`` clipped to ``[-1, 1]`` after every step. ``G`` and ``D`` stay in eval mode, so every code's loss
    depends only on that code.

    Args:
        generator: ``(N, d)`` codes -> ``(N, C, H, W)`` images in [0, 1] (``latent_dim`` attribute, or d = 100).
        discriminator: ``(N, C, H, W)`` images in [0, 1] -> ``(N,)`` logits.
        images: ``(B, C, H, W)`` in [0, 1].
        region: the hole, bool ``(B, H, W)`` (True = regenerate); e.g. :func:`salient_region`.
        n_codes: codes per image (paper: 64; default 32 is ours).
        n_iterations: optimisation steps of the latent search (paper: 1000-1500; default 300 is ours).
        lr, momentum: Nesterov SGD (paper: 0.01, 0.9).
        realism_weight: lambda (paper: 0.005).
        kernel_size: box filter of :func:`context_weights`.
        n_candidates: ``None`` (paper): start from ``n_codes`` random codes. A number (ours, a warm start that
            lets a CPU use far fewer steps): draw ``n_candidates`` codes from the prior once, and start each
            image from the ``n_codes`` of them with the lowest context loss; the search then refines them.
        batch_size: images per optimisation batch (default: all; each batch holds ``batch_size * n_codes`` codes).
        seed: seed of the starting codes (private generator); ``None`` draws a fresh one.
        progress: ``tqdm.auto`` progress bar over steps (and batches).
        callback: called after every step as ``callback(step, total_steps, loss)`` with ``loss`` the ``(b,)``
            mean loss of the current batch's images (e.g. a widget's progress bar); ``total_steps`` counts all
            batches.

    Returns:
        :class:`InpaintResult`.

    Raises:
        ValueError: ``region`` is not ``(B, H, W)`` for the images, a region is empty or covers the whole image
            (no context to match), the generator's output size differs from the images', a network in training
            mode, bad numbers.
    """
    images, _ = check_images(images, value_range=(0, 1))  # the generator's output range
    batch, channels, height, width = images.shape
    region = check_maps(region, images, name="region").bool().to(images.device)
    sizes = region.flatten(1).sum(1)
    if (sizes == 0).any():
        raise ValueError(
            f"region is empty for image(s) {torch.nonzero(sizes == 0).flatten().tolist()}: nothing to regenerate"
        )
    if (sizes == height * width).any():
        raise ValueError(
            f"region covers the whole image for image(s) "
            f"{torch.nonzero(sizes == height * width).flatten().tolist()}: no context to match"
        )
    check_int("n_codes", n_codes, 1)
    check_int("n_iterations", n_iterations, 0)
    for name, value in (("lr", lr), ("momentum", momentum), ("realism_weight", realism_weight)):
        check_number(name, value, minimum=0)
    if batch_size is not None:
        check_int("batch_size", batch_size, 1)
    for name, network in (("generator", generator), ("discriminator", discriminator)):
        if network.training:
            raise ValueError(f"{name} is in training mode; call .eval() (batch norm would couple the codes)")
    latent_dim = int(getattr(generator, "latent_dim", 100))
    device = images.device
    with torch.no_grad():
        try:
            probe = generator(torch.zeros(1, latent_dim, device=device))
        except RuntimeError as error:  # e.g. the generator on the GPU, the images on the CPU
            raise ValueError(
                f"generator rejected a code of shape (1, {latent_dim}) on {device}: {str(error).splitlines()[0]}"
            ) from None
    if tuple(probe.shape[1:]) != (channels, height, width):
        raise ValueError(
            f"generator makes images of shape {tuple(probe.shape[1:])} but the images are "
            f"{(channels, height, width)}; use a generator trained at this size"
        )

    rng = seeded_generator(seed, device)
    weights_all = context_weights(region, kernel_size).unsqueeze(1)  # (B, 1, H, W)
    if n_candidates is None:
        z_all = torch.rand(batch, n_codes, latent_dim, generator=rng, device=device) * 2 - 1
    else:
        z_all = _warm_start(generator, images, weights_all, n_codes, n_candidates, latent_dim, rng)
    step_images = batch_size or batch
    chunks = [(start, min(start + step_images, batch)) for start in range(0, batch, step_images)]
    out_z, out_loss, out_context, out_realism, out_initial, out_history = [], [], [], [], [], []
    partial, steps_done, total_done = False, n_iterations, 0
    bar = progress_bar(total=n_iterations * len(chunks), desc="latent search", unit="step", enabled=progress)
    try:
        for start, stop in chunks:
            n_img = stop - start
            target = images[start:stop].repeat_interleave(n_codes, dim=0)
            weights = weights_all[start:stop].repeat_interleave(n_codes, dim=0)
            z = z_all[start:stop].reshape(-1, latent_dim).clone().requires_grad_(True)
            optimiser = torch.optim.SGD([z], lr=lr, momentum=momentum, nesterov=momentum > 0)
            history = []
            initial = None
            done = 0
            try:
                for step in range(n_iterations + 1):
                    with torch.enable_grad():
                        loss, _, _ = _losses(generator, discriminator, z, target, weights, realism_weight)
                        history.append(loss.detach().view(n_img, n_codes).mean(1))
                        if initial is None:
                            initial = loss.detach().clone()
                        if step == n_iterations:
                            break
                        optimiser.zero_grad(set_to_none=True)
                        loss.sum().backward()  # per-code losses are independent: each z gets its own gradient
                    optimiser.step()
                    with torch.no_grad():
                        z.clamp_(-1, 1)
                    done = step + 1
                    bar.update()
                    total_done += 1
                    if callback is not None:
                        callback(total_done, n_iterations * len(chunks), history[-1])
            except KeyboardInterrupt:
                partial, steps_done = True, min(steps_done, done)
            with torch.no_grad():
                loss, context, realism = _losses(generator, discriminator, z.detach(), target, weights, realism_weight)
            out_z.append(z.detach().view(n_img, n_codes, latent_dim))
            out_loss.append(loss.view(n_img, n_codes))
            out_context.append(context.view(n_img, n_codes))
            out_realism.append(realism.view(n_img, n_codes))
            out_initial.append(initial.view(n_img, n_codes))
            history = torch.stack(history)
            if len(history) < n_iterations + 1:  # stopped early: pad with the last value
                history = torch.cat([history, history[-1:].expand(n_iterations + 1 - len(history), -1)])
            out_history.append(history)
            if partial:
                break
    finally:
        bar.close()
    z = torch.cat(out_z)
    done_images = len(z)
    with torch.no_grad():
        generated = generator(z.reshape(-1, latent_dim)).view(done_images, n_codes, channels, height, width)
    hole = region[:done_images].view(done_images, 1, 1, height, width)
    reconstructions = torch.where(hole, generated, images[:done_images].unsqueeze(1))
    return InpaintResult(
        reconstructions=reconstructions,
        generated=generated,
        z=z,
        loss=torch.cat(out_loss),
        context_loss=torch.cat(out_context),
        realism_loss=torch.cat(out_realism),
        initial_loss=torch.cat(out_initial),
        history=torch.cat(out_history, dim=1),
        region=region[:done_images],
        partial=partial,
        steps_done=steps_done,
    )


def fill_region(images: torch.Tensor, region: torch.Tensor, value) -> torch.Tensor:
    """The controls: replace the region by ``value`` (a number, ``(C, 1, 1)`` tensor or ``(B, C, H, W)`` images).

    ``fill_region(x, B, classifier.spec.reference())`` fills with the dataset mean (the masking reference);
    ``fill_region(x, B, saliency_lib.method.masks.blur(x))`` with a blurred copy. Returns ``(B, C, H, W)``.
    """
    images, _ = check_images(images)
    region = check_maps(region, images, name="region")
    hole = region.bool().to(images.device).unsqueeze(1)
    if isinstance(value, torch.Tensor):
        value = value.to(images.device, images.dtype)
    return torch.where(hole, broadcast_reference(value, images), images)


def predictions(model: nn.Module, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Top-1 classes of ``images`` ``(..., C, H, W)`` (any leading shape) -> int64 ``(...)``."""
    lead = images.shape[:-3]
    flat = images.reshape(-1, *images.shape[-3:])
    return class_probabilities(model, flat, batch_size=batch_size).argmax(1).view(lead).cpu()


def agreement(model: nn.Module, images: torch.Tensor, variations: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Per image, the share of its variations whose top-1 class equals the model's class for the original.

    Args:
        images: originals ``(B, C, H, W)``.
        variations: ``(B, K, C, H, W)`` (e.g. :attr:`InpaintResult.reconstructions`) or ``(B, C, H, W)`` (K = 1).

    Returns:
        float ``(B,)`` in [0, 1] (the paper reports its mean for one image: 88.9% at 50%).
    """
    images, _ = check_images(images)
    if variations.dim() == 4:
        variations = variations.unsqueeze(1)
    if variations.dim() != 5 or variations.shape[0] != images.shape[0] or variations.shape[2:] != images.shape[1:]:
        raise ValueError(
            f"variations must have shape (B, K, C, H, W) with B, C, H, W = {images.shape[0]}, "
            f"{tuple(images.shape[1:])}, got {tuple(variations.shape)}"
        )
    original = predictions(model, images, batch_size)
    varied = predictions(model, variations, batch_size)
    return (varied == original[:, None]).float().mean(1)
