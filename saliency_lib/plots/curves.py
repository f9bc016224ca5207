"""Figures of the evaluation (notebook 04): deletion and insertion curves, a grid of every method's maps with the
object's box, and benchmark bars with their confidence intervals.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Rectangle

from .maps import fit_title, scaled_map, show_image

__all__ = ["plot_curves", "draw_box", "plot_method_grid", "plot_benchmark_bars"]


def plot_curves(
    ax, fraction, curves: dict, mode: str = "deletion", *, upto: int | None = None, title: str | None = None
):
    """Target probability against the share of pixels deleted (or inserted), one line per method.

    Args:
        fraction: ``(T,)`` share of pixels changed at each point.
        curves: method -> ``(T,)`` probabilities; the legend gives each curve's AUC (trapezoid / steps).
        upto: draw only the first ``upto + 1`` points (the widget's "as pixels go"), with a marker at the last.
    """
    x = np.asarray(torch.as_tensor(fraction).detach().float().cpu().numpy()).reshape(-1)
    for name, curve in curves.items():
        y = np.asarray(torch.as_tensor(curve).detach().float().cpu().numpy()).reshape(-1)
        area = (y.sum() - y[0] / 2 - y[-1] / 2) / (len(y) - 1)
        stop = len(y) if upto is None else min(len(y), upto + 1)
        (line,) = ax.plot(x[:stop], y[:stop], label=f"{name} (AUC {area:.3f})")
        if upto is not None:
            ax.plot(x[stop - 1], y[stop - 1], "o", color=line.get_color())
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"share of pixels {'deleted' if mode == 'deletion' else 'inserted'} (most salient first)")
    ax.set_ylabel("target-class probability")
    ax.set_title(title or f"{mode} ({'lower' if mode == 'deletion' else 'higher'} area is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right" if mode == "deletion" else "lower right")
    return ax


def draw_box(ax, box, colour: str = "lime", linewidth: float = 1.5) -> None:
    """Draw an ``(x0, y0, x1, y1)`` end-exclusive pixel box on an image axes."""
    x0, y0, x1, y1 = (float(v) for v in box)
    ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor=colour, linewidth=linewidth))


def plot_method_grid(
    images,
    maps: dict,
    *,
    scores: dict | None = None,
    boxes=None,
    row_names=None,
    size: float = 2.0,
    alpha: float = 0.5,
    cmap: str = "jet",
    title: str | None = None,
    max_columns: int = 5,
):
    """The paper-style figure: one row per image, one column per method, each map over its image.

    Args:
        images: ``(B, C, H, W)``.
        maps: method -> ``(B, H, W)``; each map is min-max scaled to [0, 1] for display (one shared colour bar).
        scores: method -> list of B title strings (e.g. ``"del 0.07 / ins 0.81"``).
        boxes: ``(B, 4)`` ground-truth boxes drawn on every panel.
        row_names: B labels for the first column.
        max_columns: for one image, panels per row (the image and up to ``max_columns - 1`` methods); more
            methods continue on the next row. Several images keep one row each.

    Returns:
        The ``Figure`` (pyplot).
    """
    names = list(maps)
    batch = len(images)
    # One image and many methods: wrap the row after ``columns`` panels, so the figure stays about 12 inches wide
    # (the width a notebook shows without shrinking it, and its titles with it).
    columns = len(names) + 1 if batch > 1 else min(len(names) + 1, max_columns)
    rows_per_image = -(-(len(names) + 1) // columns)
    figure, axes = plt.subplots(
        batch * rows_per_image,
        columns,
        figsize=(size * columns + 0.8, (size + 0.35) * batch * rows_per_image + 0.3),
        squeeze=False,
        constrained_layout=True,
    )
    fontsize = 8 if size * columns <= 12 else 8 * size * columns / 12  # shown shrunk to ~12 inches: keep it legible
    drawn, map_axes = None, []
    for row in range(batch):
        panels = axes[row * rows_per_image : (row + 1) * rows_per_image].ravel()
        show_image(panels[0], images[row], axis_labels=False)
        if row_names is not None:
            panels[0].set_title(fit_title(str(row_names[row]), size, fontsize), fontsize=fontsize)
        if boxes is not None:
            draw_box(panels[0], boxes[row])
        for ax, name in zip(panels[1:], names):
            show_image(ax, images[row], axis_labels=False)
            drawn = ax.imshow(scaled_map(maps[name][row]), cmap=cmap, vmin=0, vmax=1, alpha=alpha)
            map_axes.append(ax)
            if boxes is not None:
                draw_box(ax, boxes[row])
            label = name if scores is None else f"{name}\n{scores[name][row]}"
            ax.set_title(fit_title(label, size, fontsize), fontsize=fontsize)
        for ax in panels[len(names) + 1 :]:
            ax.axis("off")
    figure.colorbar(drawn, ax=map_axes, fraction=0.02, pad=0.01, label="saliency (min-max scaled per map)")
    if title:
        figure.suptitle(title)
    return figure


def plot_benchmark_bars(ax, payload: dict, dataset: str, metric: str, *, title: str | None = None):
    """Means with 95% confidence intervals of one metric for every method of one dataset (benchmark JSON)."""
    rows = [r for r in payload["records"] if r["dataset"] == dataset and metric in r["metrics"]]
    if not rows:
        raise ValueError(f"no records of metric {metric!r} for dataset {dataset!r}")
    means = np.array([r["metrics"][metric]["mean"] for r in rows])
    low = np.array([r["metrics"][metric]["ci95"][0] for r in rows])
    high = np.array([r["metrics"][metric]["ci95"][1] for r in rows])
    colours = [
        "tab:red" if r["method"] == "oise" else "tab:grey" if r["method"] == "random" else "tab:blue" for r in rows
    ]
    positions = np.arange(len(rows))
    ax.bar(positions, means, color=colours, yerr=np.vstack([means - low, high - means]), capsize=3)
    ax.set_xticks(positions)
    ax.set_xticklabels([r["method"] for r in rows], rotation=40, ha="right", fontsize=8)
    ax.set_ylabel(f"{metric} (mean, 95% CI)")
    ax.set_xlabel("method")
    ax.set_title(title or f"{dataset}: {metric} (n = {rows[0]['n']})")
    ax.grid(axis="y", alpha=0.3)
    return ax


# ---- reconstruction (notebook 05) -------------------------------------------------------------------------------
