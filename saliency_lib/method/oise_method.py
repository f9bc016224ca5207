"""OISE, the saliency method of Thakur & Fischmeister (ICPR 2020), as one batched call.

The loop, as in the authors' code (``explain_and_update`` in ``shailja-thakur/explainability-project``;
see ``docs/method.md`` and :mod:`saliency_lib.method.masks` for each piece)::

    M = init_grid(p_init)                    # 8x8 cells, on with probability 0.3
    m = upsample(M)                          # bilinear, random shift
    p_prev = 0
    repeat n_steps times:
        p  = f_target(apply_mask(x, m))      # one model call (all images and chains at once)
        M  = update_grid(M, p, p - p_prev)   # keep with prob. p, turn on with prob. 1 - p, rescale changes
        m  = upsample(M)                     # fresh random shift; this mask is the next one evaluated
        S += m                               # the authors sum the new masks, unweighted
        p_prev = p
    saliency = postprocess(S)                # mean-subtract, clip at 0, scale to [0, 1]

Our additions, each off by default and each labelled "ours" below: ``n_chains`` parallel chains per image,
``weight_by_score`` (sum ``p * m`` as RISE does), other references (``"blur"``, a number, a tensor),
``output="probabilities"``, ``record_every`` (a history), the partial result on ``KeyboardInterrupt``.

Speed (ours, not part of the method): the random numbers of 64 steps are drawn at once, the upsampling weights
are precomputed (:class:`~saliency_lib.method.masks.Upsampler`), the input is checked once, the loop runs under
``torch.inference_mode`` and never synchronises with the device. ``saliency_research/bench/speed.py`` measures the cost
against bare model calls.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from . import masks as M
from .checks import check_callable, check_fraction, check_images, check_int
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
from .results import Recorder, SaliencyResult
from .threads import runs_black_box

__all__ = ["oise", "OISE", "OISEStep", "Recorder", "RANDOM_CHUNK"]

# Random numbers are drawn for this many steps at a time. A constant (not tied to batch_size or n_steps), so
# a run with n_steps=N is the first N steps of a longer run with the same seed.
RANDOM_CHUNK = 64
# Upper bound on the pre-selected upsampling weights kept per chunk (bytes); above it they are picked per step.
_WEIGHTS_BUDGET = 16 * 2**20


@dataclass
class OISEStep:
    """What the loop looks like after one update; passed to ``callback``.

    Attributes (B images, K chains, s cells, H x W pixels):
        step: 1-based step number; n_steps: steps per chain in this run.
        grid: ``(B, K, s, s)`` grid after the update.
        previous_grid: ``(B, K, s, s)`` grid that was evaluated.
        mask: ``(B, K, H, W)`` the upsampled mask that was evaluated (``previous_grid`` upsampled).
        p: ``(B, K)`` target probability of the masked image; delta_p: ``(B, K)`` change from the last step.
        saliency_sum: ``(B, H, W)`` the running sum (the loop keeps adding to it: copy what you keep).
        next_mask: ``(B, K, H, W)`` ``grid`` upsampled with its fresh shift: the mask just added to the sum and
            evaluated at the next step.

    The tensors are the loop's own (made under ``torch.inference_mode``): read or copy them, do not modify them.
    """

    step: int
    n_steps: int
    grid: torch.Tensor
    previous_grid: torch.Tensor
    mask: torch.Tensor
    p: torch.Tensor
    delta_p: torch.Tensor
    saliency_sum: torch.Tensor
    next_mask: torch.Tensor | None = None

    @property
    def saliency(self) -> torch.Tensor:
        """The running saliency map ``(B, H, W)`` in [0, 1] (post-processed on demand)."""
        return M.postprocess(self.saliency_sum)


def _check_common(grid_size, p_init, n_steps, step_size, n_chains, batch_size, height, width) -> None:
    check_int("grid_size", grid_size, 1, min(height, width))
    check_fraction("p_init", p_init)
    check_int("n_steps", n_steps, 1)
    check_int("n_chains", n_chains, 1)
    if n_chains > n_steps:
        raise ValueError(f"n_chains must be <= n_steps ({n_steps}): each chain needs at least one step, got {n_chains}")
    check_fraction("step_size", step_size)
    if batch_size is not None:
        check_int("batch_size", batch_size, 1)


@runs_black_box
def oise(
    model: nn.Module,
    images: torch.Tensor,
    target=None,
    *,
    grid_size: int = 8,
    p_init: float = 0.3,
    n_steps: int = 5000,
    step_size: float = 0.02,
    n_chains: int = 1,
    reference="mean",
    weight_by_score: bool = False,
    batch_size: int | None = None,
    seed: int | None = None,
    progress: bool = False,
    callback: Callable[[OISEStep], None] | None = None,
    output: str = "logits",
    record_every: int | list[int] | tuple[int, ...] | None = None,
    postprocess: bool = True,
) -> SaliencyResult:
    """Saliency maps by the authors' mask random walk (OISE). Black-box: only calls ``model``.

    Args:
        model: maps ``(B, C, H, W)`` images to logits ``(B, n_classes)`` (or probabilities, see ``output``).
        images: float ``(B, C, H, W)`` or ``(C, H, W)``; in [0, 1] for models of :mod:`saliency_lib.io.models`.
        target: ``None`` (top-1 class of each clean image, the paper's choice), an int, or one int per image.
        grid_size: cells per side s (paper: 8).
        p_init: probability a cell starts on (paper: 0.3).
        n_steps: model calls per image (paper: 5000). With ``n_chains = K`` each chain runs ``ceil(n_steps/K)``.
        step_size: the rescaling rate lr (paper: 0.02), in [0, 1].
        n_chains: independent chains per image, run in the same model call and summed into one map
            (ours; 1 reproduces the paper).
        reference: masked-pixel value: ``"mean"`` (paper: 0 in the normalised space = dataset mean),
            ``"blur"`` (ours), a number or a tensor (see :func:`saliency_lib.method.masks.apply_mask`).
        weight_by_score: sum ``p * mask`` over the evaluated masks instead of the plain masks (ours, as RISE
            weights its masks; paper: False).
        batch_size: largest batch per model call (default: :func:`saliency_lib.method.core.default_batch_size`, chosen
            from the image size: all ``B*K`` masked images of a step in one call for small images, e.g. up to 1,536
            at 28 x 28, 8 at a time at 3 x 224 x 224). Splitting bounds memory; it does not change the random numbers.
        seed: makes the output bit-identical for the same inputs; ``None`` draws a fresh seed. Only a private
            ``torch.Generator`` is used, never the global random state.
        progress: show a ``tqdm.auto`` progress bar.
        callback: called with an :class:`OISEStep` after every update (e.g. a :class:`Recorder`).
        output: ``"logits"`` (softmax applied, default) or ``"probabilities"`` (the model returns them; ours).
        record_every: an int k records step 1, every k-th step and the last; a list of ints records those
            steps (per chain); either way into a :class:`Recorder` returned as ``result.history`` (ours; a
            history without writing a callback).
        postprocess: ``True`` (the paper): the maps (and a history's saliency) are the mean-subtracted, clipped,
            scaled sum (:func:`saliency_lib.method.masks.postprocess`); ``False``: the raw sum S of the masks (ours: for
            scoring every method's maps the same way, ``docs/results.md``).

    Returns:
        A :class:`~saliency_lib.method.results.SaliencyResult`: ``maps`` float32 ``(B, H, W)`` saliency in [0, 1] (a
        single ``(C, H, W)`` image gives ``(1, H, W)``), ``model_calls`` (masked images evaluated per input
        image), ``target`` (int64 ``(B,)``), ``partial`` (True when stopped by ``KeyboardInterrupt``, e.g. the
        notebook's Stop button: the map of the steps done so far), ``steps_done`` (steps per chain), ``seconds``
        and ``history`` (the :class:`Recorder` when ``record_every`` is set, else ``None``).

    Raises:
        TypeError, ValueError: bad images, target, numbers or model output (the message names the argument).
    """
    began = time.perf_counter()
    images, _ = check_images(images, model)
    batch, _, height, width = images.shape
    _check_common(grid_size, p_init, n_steps, step_size, n_chains, batch_size, height, width)
    if not isinstance(postprocess, bool):
        raise TypeError(f"postprocess must be True (the paper's map) or False (the raw sum), got {postprocess!r}")
    history = None
    if isinstance(record_every, (list, tuple)):
        for step in record_every:
            check_int("record_every", step, 1)
        history = Recorder(at=tuple(record_every), postprocess=postprocess)
    elif record_every is not None:
        history = Recorder(every=check_int("record_every", record_every, 1), postprocess=postprocess)
    if callback is not None:
        check_callable("callback", callback)
    device = model_device(model, images.device)
    images = images.to(device)
    if batch_size is None:
        batch_size = default_batch_size(images)
    if target is None:
        # The paper's default target: the top-1 class of the clean image (one extra, checked model call).
        clean = class_probabilities(model, images, output=output, batch_size=batch_size)
        targets = resolve_target(None, clean)
    ref = resolve_reference(reference, model, images)

    callbacks = [c for c in (callback, history) if c is not None]
    chains = n_chains
    rows_total = batch * chains  # image b's chains are rows b*K ... b*K + K - 1 of every step's batch
    steps = math.ceil(n_steps / chains)
    generator = seeded_generator(seed, device)
    upsampler = M.Upsampler(grid_size, (height, width), device=device)
    cell_h, cell_w = upsampler.cell

    with torch.inference_mode():
        repeated = images.repeat_interleave(chains, dim=0) if chains > 1 else images
        ref = broadcast_reference(ref, images, repeats=chains)
        difference = repeated - ref  # masked = ref + (x - ref) * mask, one fused op per step
        one = torch.ones((), device=device)
        grid = M.init_grid(rows_total, grid_size, p_init, generator=generator)
        first_shift = M.random_shifts(rows_total, (cell_h, cell_w), generator=generator)
        mask = upsampler(grid, first_shift)
        # The first step's model call is the checked one (shape (B*K, n_classes), finite values, a channel
        # count the model accepts); the loop then trusts the model and never synchronises with the device.
        first_probs = class_probabilities(
            model, torch.addcmul(ref, difference, mask.unsqueeze(1)), output=output, batch_size=batch_size
        )
        if target is not None:
            targets = resolve_target(target, first_probs.view(batch, chains, -1)[:, 0])
        row_targets = targets.repeat_interleave(chains).view(-1, 1)
        was_on = grid > 0
        p_previous = torch.zeros(rows_total, 1, 1, device=device)
        total = torch.zeros(batch, height, width, device=device)
        # Pre-select upsampling weights for a whole chunk only when that stays small (e.g. 28 px images).
        per_step_bytes = rows_total * (height + width) * grid_size * 4
        preselect = per_step_bytes * RANDOM_CHUNK <= _WEIGHTS_BUDGET
        done = 0
        partial = False
        bar = progress_bar(total=steps, desc="OISE", unit="step", enabled=progress)
        try:
            for start in range(0, steps, RANDOM_CHUNK):
                # Always draw a full chunk (in a fixed order) so shorter runs are prefixes of longer ones.
                uniforms = torch.rand(
                    RANDOM_CHUNK, rows_total, grid_size, grid_size, generator=generator, device=device
                )
                dys = torch.randint(0, cell_h, (RANDOM_CHUNK, rows_total), generator=generator, device=device)
                dxs = torch.randint(0, cell_w, (RANDOM_CHUNK, rows_total), generator=generator, device=device)
                uniform_steps = uniforms.unbind(0)  # views, so the loop does not index per step
                if preselect:
                    chunk_rows, chunk_cols = upsampler.rows[dys].unbind(0), upsampler.cols_t[dxs].unbind(0)
                for offset in range(min(RANDOM_CHUNK, steps - start)):
                    if first_probs is not None:
                        probs, first_probs = first_probs, None
                    else:
                        masked = torch.addcmul(ref, difference, mask.unsqueeze(1))
                        probs = to_probabilities(call_model(model, masked, batch_size), output)
                    p = probs.gather(1, row_targets).view(rows_total, 1, 1)
                    delta_p = p - p_previous
                    # The update (masks.update_grid, inlined without its input checks):
                    # resample the cells, then rescale those with D > 0 by 1 - lr |delta_p|.
                    on = M.flip_cells(was_on, p, uniform_steps[offset])
                    shrink = torch.add(one, delta_p.abs(), alpha=-step_size)
                    new_grid = M.rescale_cells(on.float(), grid, shrink)
                    if preselect:
                        new_mask = M.Upsampler.apply(new_grid, chunk_rows[offset], chunk_cols[offset])
                    else:
                        new_mask = M.Upsampler.apply(
                            new_grid, upsampler.rows[dys[offset]], upsampler.cols_t[dxs[offset]]
                        )
                    if weight_by_score:  # ours: each evaluated mask weighted by its own score, as RISE
                        contribution = mask * p
                    else:  # the authors: the new mask, unweighted
                        contribution = new_mask
                    if chains > 1:
                        contribution = contribution.view(batch, chains, height, width).sum(dim=1)
                    total.add_(contribution)
                    done = start + offset + 1
                    if callbacks:
                        state = OISEStep(
                            done,
                            steps,
                            new_grid.view(batch, chains, grid_size, grid_size),
                            grid.view(batch, chains, grid_size, grid_size),
                            mask.view(batch, chains, height, width),
                            p.view(batch, chains),
                            delta_p.view(batch, chains),
                            total,
                            new_mask.view(batch, chains, height, width),
                        )
                        for function in callbacks:
                            function(state)
                    grid, was_on, mask, p_previous = new_grid, on, new_mask, p
                    bar.update()
        except KeyboardInterrupt:
            partial = True  # the Stop button: keep what was computed so far
        finally:
            bar.close()
    if done and not bool(torch.isfinite(p_previous).all()):
        raise ValueError("the model returned NaN or infinite values for a masked image")
    return SaliencyResult(
        maps=M.postprocess(total.clone()) if postprocess else total.clone(),  # an ordinary tensor
        model_calls=done * chains,
        target=targets.clone(),  # an ordinary tensor too
        partial=partial,
        steps_done=done,
        seconds=time.perf_counter() - began,
        history=history,
    )


class OISE:
    """Captum-shaped entry point: ``OISE(model).attribute(images, target=...)`` is ``oise(model, images, target)``.

    For users who know Captum (``IntegratedGradients(model).attribute(inputs, target=...)``). Two differences:
    Captum returns attributions shaped like the input ``(B, C, H, W)``; OISE's map is per pixel, ``(B, H, W)``,
    and comes in a :class:`~saliency_lib.method.results.SaliencyResult` (the tensor is ``result.maps``).

    Args:
        forward_func: the model (``(B, C, H, W)`` -> logits ``(B, n_classes)``).
    """

    def __init__(self, forward_func) -> None:
        self.forward_func = forward_func

    def attribute(self, inputs: torch.Tensor, target=None, **options) -> SaliencyResult:
        """:func:`oise`'s result (``.maps``: ``(B, H, W)`` saliency in [0, 1]); ``options`` are its keyword
        arguments."""
        return oise(self.forward_func, inputs, target, **options)
