# Solution to notebook 03's exercise: the OISE loop written with the library's pieces (one chain). One generator,
# drawn in the task's order (init_grid, upsample, then per step update_grid and upsample): the check compares exactly.
import torch

from saliency_lib.method.core import class_probabilities
from saliency_lib.method.masks import apply_mask, init_grid, postprocess, update_grid, upsample


def my_oise(model, image, target, n_steps, seed, reference=0.0, grid_size=8, p_init=0.3, step_size=0.02):
    """``image`` ``(1, C, H, W)`` in [0, 1] -> saliency ``(H, W)`` in [0, 1], after ``n_steps`` model calls."""
    generator = torch.Generator().manual_seed(seed)
    size = tuple(image.shape[-2:])
    grid = init_grid(1, grid_size, p_init, generator=generator)
    mask = upsample(grid, size, generator=generator)
    p_previous = torch.zeros(1)
    total = torch.zeros(1, *size)
    for _ in range(n_steps):
        p = class_probabilities(model, apply_mask(image, mask, reference))[:, target]  # one model call
        grid = update_grid(grid, p, p - p_previous, step_size=step_size, generator=generator)
        mask = upsample(grid, size, generator=generator)  # a fresh random shift
        total += mask  # the authors' unweighted sum
        p_previous = p
    return postprocess(total)[0]
