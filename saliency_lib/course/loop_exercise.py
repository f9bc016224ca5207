"""Notebook 03's exercise, the OISE loop: the right loop from the library's pieces, the known wrong ones, and the
learner's loop run so that an error in it reads in one line.

The task fixes where every random number comes from: one ``torch.Generator().manual_seed(seed)``, drawn by
``init_grid``, ``upsample``, then in every step ``update_grid`` and ``upsample``, each with
``generator=generator``. With that order the loop is deterministic, so the check is exact: the learner's map must
equal :func:`oise_loop`'s to float rounding, and each known mistake (:data:`MISTAKES`) gives a map of its own,
which :func:`wrong_loops` computes with the same pieces and the same seed so that the check can name it.

The library's ``oise`` runs the same pieces and draws the same kinds of numbers, but in blocks of 64 steps (for
speed), so its map for a seed is another, equally valid draw; ``tests/test_oise.py`` shows that the pieces in
``oise``'s order give ``oise``'s map exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..method.checks import check_int
from ..method.core import class_probabilities
from ..method.masks import apply_mask, cell_size, init_grid, postprocess, random_shifts, update_grid, upsample
from .exercises import ExerciseFailed, learner_call

__all__ = ["MISTAKES", "LOGITS", "GLOBAL_RANDOM", "oise_loop", "wrong_loops", "run_learner"]

#: The known wrong loops: name (``oise_loop(..., mistake=name)``) -> what the check says when a map equals its map.
MISTAKES: dict[str, str] = {
    "rise_weights": "It matches a loop that weights each added mask by p (RISE's rule): OISE adds the masks "
    "unweighted, since a chain that lingers on good masks adds them often.",
    "rise_weights_evaluated": "It matches a loop that adds each evaluated mask weighted by its p (RISE's rule): "
    "OISE adds the new mask after each update, unweighted.",
    "evaluated_mask": "It matches a loop that adds the evaluated mask (the one the model just saw) to the sum: add "
    "the new mask, upsampled from the updated grid, after the update.",
    "initial_mask_too": "It matches a loop that adds the initial mask to the sum as well (n_steps + 1 masks): start "
    "the sum at zero and add one mask per step, after the update.",
    "no_rescaling": "It matches a loop that does not rescale the changed cells (only flips them, or step_size=0): "
    "pass step_size to update_grid, which scales every cell whose value went up by 1 - step_size * |Δp|.",
    "p_previous_never_updated": "It matches a loop that never updates p_previous (Δp = p at every step): set "
    "p_previous = p at the end of each step.",
    "no_upsample": "It matches a loop that never upsamples the updated grid, so the model sees the initial mask at "
    "every step: upsample the new grid after each update.",
    "fixed_shift": "It matches a loop that reuses the first random shift at every step: let every upsample draw a "
    "fresh shift (upsample(grid, size, generator=generator), no shifts=).",
    "zero_shift": "It matches a loop that upsamples with the shift (0, 0): let every upsample draw a fresh random "
    "shift (upsample(grid, size, generator=generator), no shifts=).",
    "generator_every_step": "It matches a loop that makes a new generator at every step, so every step draws the "
    "same numbers: make one torch.Generator().manual_seed(seed) before the loop and pass it to every piece.",
    "generator_every_call": "It matches a loop that gives every piece a new generator, so every call draws the "
    "same numbers: make one torch.Generator().manual_seed(seed) before the loop and pass it to every piece.",
    "raw_sum": "It matches the raw sum of the masks: pass the sum through postprocess (subtract the mean, clip at "
    "0, scale to [0, 1]).",
    "seed_ignored": "It matches the loop for seed 0, not for the seed asked for: seed the generator with the "
    "argument seed.",
}
#: What the check says when update_grid refused the learner's p (a logit is outside [0, 1]).
LOGITS = (
    "update_grid refused p: it was outside [0, 1], so it is a logit, not a probability. Read p with "
    "class_probabilities(model, masked_image)[:, target] (the softmax of the model's output), not model(...)."
)
#: What the check says when the learner's loop drew from torch's global random generator.
GLOBAL_RANDOM = (
    "your loop drew random numbers from torch's global generator (a piece called without generator=, or "
    "torch.manual_seed): make one generator = torch.Generator().manual_seed(seed) and pass generator=generator "
    "to init_grid, upsample and update_grid."
)


def oise_loop(
    model,
    image: torch.Tensor,
    target: int,
    n_steps: int,
    seed: int,
    reference: float | torch.Tensor = 0.0,
    *,
    grid_size: int = 8,
    p_init: float = 0.3,
    step_size: float = 0.02,
    mistake: str | None = None,
) -> torch.Tensor:
    """OISE with one chain, written from the library's pieces in the task's order: the exercise's right answer.

    Args:
        model: the classifier (logits out).
        image: ``(1, C, H, W)`` in [0, 1].
        target: the class whose probability drives the walk.
        n_steps: steps = model calls (>= 1).
        seed: seeds the one generator every piece draws from (>= 0).
        reference: the value of hidden pixels (a number or ``(C, 1, 1)``).
        grid_size, p_init, step_size: the paper's s = 8, p = 0.3 and lr = 0.02.
        mistake: ``None`` for the right loop, or a key of :data:`MISTAKES` for that wrong loop.

    Returns:
        The map ``(H, W)`` in [0, 1] (``mistake="raw_sum"``: the sum of the masks, unscaled).
    """
    if mistake is not None and mistake not in MISTAKES:
        raise ValueError(f"mistake must be None or one of {sorted(MISTAKES)}, got {mistake!r}")
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[0] != 1:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"image must have shape (1, C, H, W), got {shape}")
    check_int("n_steps", n_steps)
    check_int("seed", seed, minimum=0)
    if mistake == "seed_ignored":
        seed, mistake = 0, None
    generator = torch.Generator().manual_seed(seed)

    def source() -> torch.Generator:  # the generator the next piece draws from
        return torch.Generator().manual_seed(seed) if mistake == "generator_every_call" else generator

    size = tuple(image.shape[-2:])
    zero = torch.zeros(1, 2, dtype=torch.long)
    grid = init_grid(1, grid_size, p_init, generator=source())
    first_shift = zero if mistake == "zero_shift" else random_shifts(1, cell_size(size, grid_size), generator=source())
    mask = upsample(grid, size, shifts=first_shift)
    p_previous = torch.zeros(1)
    total = mask.clone() if mistake == "initial_mask_too" else torch.zeros(1, *size)
    for _ in range(n_steps):
        if mistake == "generator_every_step":
            generator = torch.Generator().manual_seed(seed)
        p = class_probabilities(model, apply_mask(image, mask, reference))[:, target]  # one model call
        evaluated = mask
        rate = 0.0 if mistake == "no_rescaling" else step_size
        grid = update_grid(grid, p, p - p_previous, step_size=rate, generator=source())
        if mistake in ("fixed_shift", "zero_shift"):
            mask = upsample(grid, size, shifts=first_shift)
        elif mistake != "no_upsample":
            mask = upsample(grid, size, generator=source())  # a fresh random shift
        if mistake == "rise_weights":
            total += p * mask
        elif mistake == "rise_weights_evaluated":
            total += p * evaluated
        elif mistake == "evaluated_mask":
            total += evaluated
        else:
            total += mask  # the authors' unweighted sum of the visited masks
        if mistake != "p_previous_never_updated":
            p_previous = p
    return total[0] if mistake == "raw_sum" else postprocess(total)[0]


def wrong_loops(model, image: torch.Tensor, target: int, n_steps: int, seed: int, reference=0.0, **settings):
    """The map of every known wrong loop for these arguments: ``{message of MISTAKES: map (H, W)}``.

    For :func:`~saliency_lib.course.exercises.check_exercise`'s ``known_mistakes``; seed 0 leaves out
    ``"seed_ignored"`` (it would be the right loop).
    """
    return {
        message: oise_loop(model, image, target, n_steps, seed, reference, mistake=mistake, **settings)
        for mistake, message in MISTAKES.items()
        if not (mistake == "seed_ignored" and seed == 0)
    }


def run_learner(
    function: Callable,
    model,
    image: torch.Tensor,
    target: int,
    n_steps: int,
    seed: int,
    reference=0.0,
    *,
    name: str = "my_oise",
):
    """``function(model, image, target, n_steps, seed, reference=reference)``: the learner's map, or one line.

    torch's global random state is the same afterwards (a loop that changed it is reported, and the state put
    back, so the notebook's later cells still draw what they drew before).

    Raises:
        ExerciseFailed: the function raised (the message: the exception and the learner's line; a logit given to
            ``update_grid`` gets :data:`LOGITS`), or it drew from torch's global generator (:data:`GLOBAL_RANDOM`).
    """
    state = torch.get_rng_state()
    try:
        result = learner_call(
            function,
            model,
            image,
            target,
            n_steps,
            seed,
            reference=reference,
            name=name,
            known_errors={r"^ValueError: p must be probabilities": f"stopped: {LOGITS}"},
        )
    finally:
        drew = not torch.equal(state, torch.get_rng_state())
        torch.set_rng_state(state)
    if drew:
        raise ExerciseFailed(f"{name}: {GLOBAL_RANDOM}")
    return result
