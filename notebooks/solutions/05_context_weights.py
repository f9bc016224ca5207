# Solution to notebook 05's exercise: the context weights of Yeh et al.'s semantic inpainting.
import torch.nn.functional as F


def my_context_weights(hole, k=7):
    """Yeh et al.'s context weights: the share of hole pixels in the k x k window of each known pixel."""
    hole = hole.float().unsqueeze(1)  # (B, 1, H, W): avg_pool2d wants a channel axis
    # stride 1 and padding k // 2 keep the size; count_include_pad divides by k * k at the borders too
    near = F.avg_pool2d(hole, k, stride=1, padding=k // 2, count_include_pad=True)
    return ((1 - hole) * near)[:, 0]
