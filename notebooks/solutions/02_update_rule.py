# Solution to notebook 02's exercise: the paper's update rule ("pixel weighting") for a batch of grids.
import torch


def my_update_grid(
    grid: torch.Tensor, p: torch.Tensor, delta_p: torch.Tensor, step_size: float, uniform: torch.Tensor
) -> torch.Tensor:
    """Grids ``(B, s, s)``, ``p`` and ``delta_p`` ``(B,)``, ``uniform`` ``(B, s, s)`` -> new grids ``(B, s, s)``."""
    p = p.view(-1, 1, 1)
    was_on = grid > 0
    # On cells stay on when uniform < p; off cells turn on when uniform >= p (probability 1 - p).
    now_on = torch.where(was_on, uniform < p, uniform >= p).float()
    rate = step_size * delta_p.abs().view(-1, 1, 1)
    # D = new - old on the values: D > 0 -> times (1 - rate); D < 0 cells are 0 and stay 0.
    return torch.where(now_on > grid, now_on * (1 - rate), now_on)
