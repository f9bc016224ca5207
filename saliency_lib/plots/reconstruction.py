"""Figures of Part B, the reconstruction (notebook 05)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from .maps import as_array, show_image, show_map

__all__ = [
    "plot_inpainting_setup",
    "plot_variations",
    "plot_search_loss",
    "plot_agreement_curves",
    "CONDITION_LABELS",
    "agreement_table",
]

# Figures of Part B: the inpainting set-up (hole, context weights), a grid of variations with the classifier's
# class on each, the latent-search loss, and the agreement curves of `python -m saliency_research reconstruct`.

# Fixed colours per condition so every figure of the experiment reads the same way.
_CONDITION_STYLE = {
    "oise_generated": ("OISE region, regenerated", "#1f77b4", "-", "o"),
    "rise_generated": ("RISE region, regenerated", "#ff7f0e", "-", "s"),
    "random_generated": ("random region, regenerated", "#2ca02c", "-", "^"),
    "oise_mean": ("OISE region, mean fill", "#1f77b4", ":", "x"),
    "oise_blur": ("OISE region, blurred", "#1f77b4", "--", "+"),
    "rise_mean": ("RISE region, mean fill", "#ff7f0e", ":", "x"),
    "rise_blur": ("RISE region, blurred", "#ff7f0e", "--", "+"),
}


def plot_inpainting_setup(image, region, weights, *, size: float = 2.6):
    """Four panels: the image, the hole B over it, the context weights W = K * boxfilter(B), the known pixels."""
    region_array = as_array(region).astype(np.float32)
    figure, axes = plt.subplots(1, 4, figsize=(4 * size + 1.5, size))
    show_image(axes[0], image, "image x", axis_labels=False)
    show_image(axes[1], image, "hole B (red, regenerated)", axis_labels=False)
    tint = np.zeros((*region_array.shape, 4), dtype=np.float32)
    tint[..., 0], tint[..., 3] = 1.0, 0.55 * region_array
    axes[1].imshow(tint)
    show_map(axes[2], weights, "context weights W", vmin=0.0, vmax=None, label="weight", axis_labels=False)
    known = as_array(image) * (1 - region_array if as_array(image).ndim == 2 else (1 - region_array)[..., None])
    show_image(axes[3], known, "known pixels K * x", axis_labels=False)
    figure.tight_layout()
    return figure


def plot_variations(
    image,
    reconstructions,
    predicted,
    class_names,
    original_class: int,
    *,
    n_cols: int = 8,
    size: float = 1.35,
    hole=None,
):
    """A grid: the original then each variation, titled with the classifier's class (green = kept, red = changed).

    Args:
        image: ``(C, H, W)``; reconstructions: ``(K, C, H, W)``; predicted: ``(K,)`` classes of the variations.
        class_names: names of the classes; original_class: the class of the original.
        hole: optional ``(H, W)`` region, outlined on the original.
    """
    predicted = [int(p) for p in predicted]
    count = len(predicted) + 1
    n_cols = min(n_cols, count)
    n_rows = math.ceil(count / n_cols)
    # Two-line titles (number, class) need about 0.45 inch above each row; constrained layout keeps them off the
    # row above and the suptitle off the first row.
    figure, axes = plt.subplots(
        n_rows, n_cols, figsize=(n_cols * size, n_rows * (size + 0.45) + 0.3), squeeze=False, layout="constrained"
    )
    for ax in axes.flat:
        ax.axis("off")
    show_image(axes[0, 0], image, axis_labels=False)
    axes[0, 0].set_title(f"original\n{class_names[original_class]}", fontsize=8)
    if hole is not None:
        axes[0, 0].contour(as_array(hole), levels=[0.5], colors="red", linewidths=0.8)
    for index, (variation, cls) in enumerate(zip(reconstructions, predicted), start=1):
        ax = axes.flat[index]
        show_image(ax, variation, axis_labels=False)
        ax.set_title(
            f"#{index}\n{class_names[cls]}", fontsize=8, color="#2ca02c" if cls == original_class else "#d62728"
        )
    kept = sum(cls == original_class for cls in predicted)
    figure.suptitle(
        f"{kept}/{len(predicted)} variations keep the class '{class_names[original_class]}' "
        "(green: kept, red: changed)",
        fontsize=9,
    )
    return figure


def plot_search_loss(ax, history, title: str | None = "latent search"):
    """The loss (mean over an image's codes) against the step, one line per image. ``history``: ``(steps+1, B)``."""
    values = as_array(history) if not isinstance(history, torch.Tensor) else history.detach().float().cpu().numpy()
    ax.plot(np.arange(len(values)), values, alpha=0.7)
    ax.set_xlabel("search step")
    ax.set_ylabel("context + lambda * realism loss")
    if title:
        ax.set_title(title)
    return ax


def plot_agreement_curves(result: dict, *, conditions=None, size: float = 4.2):
    """Agreement (mean ± 95% CI over images, ours) and reconstruction loss against the regenerated fraction.

    ``result`` is the dict written by ``python -m saliency_research reconstruct`` (``reconstruction_<suite>.json``).
    The paper's one-image figures (a lynx, ResNet50) are drawn as separate black stars, labelled theirs.
    """
    fractions = result["fractions"]
    xs = [100 * f for f in fractions]
    names = conditions or [name for name in _CONDITION_STYLE if name in result["conditions"]]
    figure, (left, right) = plt.subplots(1, 2, figsize=(2 * size + 2.5, size + 0.9), layout="constrained")
    for name in names:
        label, colour, style, marker = _CONDITION_STYLE.get(name, (name, None, "-", "o"))
        rows = [result["conditions"][name][str(f)] for f in fractions]
        means = [100 * row["agreement"]["mean"] for row in rows]
        # ci95 is [low, high] (reports.summarise): asymmetric error bars, one row below and one above the mean.
        errors = [
            [m - 100 * row["agreement"]["ci95"][0] for m, row in zip(means, rows)],
            [100 * row["agreement"]["ci95"][1] - m for m, row in zip(means, rows)],
        ]
        left.errorbar(xs, means, yerr=errors, label=label, color=colour, linestyle=style, marker=marker, capsize=3)
        if "loss" in rows[0]:
            right.plot(xs, [row["loss"] for row in rows], label=label, color=colour, linestyle=style, marker=marker)
    paper = result.get("paper_lynx_theirs")
    if paper:
        left.plot(
            xs,
            [100 * paper[str(f)] for f in fractions],
            "k*",
            markersize=10,
            linestyle="none",
            label="paper, theirs (one lynx image)",
        )
    left.set_xlabel("share of the salient region regenerated (%)")
    left.set_ylabel("agreement with the original class (%)")
    left.set_title(f"agreement, ours: {result['images']} Fashion-MNIST images")
    left.set_ylim(0, 102)
    right.set_xlabel("share of the salient region regenerated (%)")
    right.set_ylabel("reconstruction loss (final, mean)")
    right.set_title("latent-search loss")
    # One legend for both panels, below them: inside either axes it covered the curves.
    handles, labels = left.get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=7, frameon=False)
    return figure


CONDITION_LABELS = {
    "oise_generated": "OISE region, regenerated (GAN)",
    "rise_generated": "RISE region, regenerated (GAN)",
    "random_generated": "random region, regenerated (GAN)",
    "oise_mean": "OISE region, filled with the mean",
    "oise_black": "OISE region, filled with black",
    "oise_blur": "OISE region, blurred",
    "rise_mean": "RISE region, filled with the mean",
    "rise_black": "RISE region, filled with black",
    "rise_blur": "RISE region, blurred",
    "oise_biharmonic": "OISE region, biharmonic inpainting",
    "rise_biharmonic": "RISE region, biharmonic inpainting",
    "random_biharmonic": "random region, biharmonic inpainting",
}


def agreement_table(result: dict) -> str:
    """The agreement table of a reconstruction result file (ours) as markdown, the paper's one-image figures on a
    separate, labelled row: the table beside :func:`plot_agreement_curves`."""
    fractions = result["fractions"]
    head = "| condition (ours, " + f"{result['images']} images) | " + " | ".join(f"{f:.0%}" for f in fractions) + " |"
    lines = [head, "|---|" + "---|" * len(fractions)]
    for name, label in CONDITION_LABELS.items():
        if name not in result["conditions"]:
            continue
        cells = []
        for f in fractions:
            a = result["conditions"][name][str(f)]["agreement"]
            cells.append(f"{a['mean']:.1%} [{a['ci95'][0]:.1%}, {a['ci95'][1]:.1%}]")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for name in ("oise_generated", "rise_generated", "random_generated"):
        if name in result["conditions"]:
            cells = [f"{result['conditions'][name][str(f)]['loss']:.2f}" for f in fractions]
            lines.append(f"| loss, {CONDITION_LABELS[name]} | " + " | ".join(cells) + " |")
    lines.append(
        "| *paper (theirs): one lynx image, ResNet50* | "
        + " | ".join(f"*{result['paper_lynx_theirs'][str(f)]:.1%}*" for f in fractions)
        + " |"
    )
    return "\n".join(lines)
