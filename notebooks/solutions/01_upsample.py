# Solution to notebook 01's exercise: RISE-style upsampling of one grid, as the authors' code does it.
import math

import skimage.transform
import torch


def my_upsample(grid: torch.Tensor, size: tuple[int, int], shift: tuple[int, int]) -> torch.Tensor:
    """One ``(s, s)`` grid -> one ``(H, W)`` mask: bilinear resize to ``(s+1)*cell``, crop at ``shift``."""
    grid_size = grid.shape[-1]
    height, width = size
    cell_h, cell_w = math.ceil(height / grid_size), math.ceil(width / grid_size)
    big = skimage.transform.resize(
        grid.double().numpy(),
        ((grid_size + 1) * cell_h, (grid_size + 1) * cell_w),
        order=1,
        mode="reflect",
        anti_aliasing=False,
    )
    dy, dx = shift
    return torch.from_numpy(big[dy : dy + height, dx : dx + width]).float()
