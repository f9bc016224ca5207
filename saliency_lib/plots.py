"""Matplotlib figures shared by notebooks, widgets and commands. Every function returns the ``Figure`` (or draws
on the ``Axes`` it is given), labels its axes, and gives colour maps a colour bar; overlays keep the image visible.

Three groups: images, maps and overlays (notebooks 01-03, the widgets); evaluation curves, method grids and
benchmark bars (notebook 04); the figures of Part B, the reconstruction (notebook 05). The method behind them is
described in ``docs/method.md``.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch, Rectangle

__all__ = [
    # images, maps and overlays
    "as_array",
    "show_image",
    "show_map",
    "show_grid",
    "draw_cell_lines",
    "overlay",
    "show_cell_changes",
    "cell_fates",
    "plot_update_rule",
    "compare_maps",
    "CHANGE_COLOURS",
    "cell_value_text",
    # evaluation (notebook 04)
    "plot_curves",
    "draw_box",
    "plot_method_grid",
    "plot_benchmark_bars",
    "scaled_map",
    "colour_range",
    # reconstruction (notebook 05)
    "plot_inpainting_setup",
    "plot_variations",
    "plot_search_loss",
    "plot_agreement_curves",
]

# ---- images, maps and overlays (notebooks 01-03, widgets) --------------------------------------------------------
# Every helper takes a tensor or array in any of the shapes (H, W), (1, H, W), (C, H, W), (1, C, H, W) and draws
# on the Axes it is given, so notebooks, widgets (which draw on a Figure without pyplot) and commands share them.

# Colours of the four fates of a cell in one update (kept, dropped, turned on, stayed off).
CHANGE_COLOURS = {"kept": "#2ca02c", "dropped": "#d62728", "turned on": "#1f77b4", "stayed off": "#dddddd"}


def cell_value_text(value: float, digits: int = 3) -> str:
    """A cell value in (0, 1) as a short label without the leading zero: ``0.25`` -> ``".250"``.

    Shows as many digits as needed (up to 6) to tell the value from 0 and 1: ``0.9996`` -> ``".9996"``, never
    ``".000"`` or ``"1.000"`` for a value that is neither. Values of exactly 0 or 1 give ``"0"`` and ``"1"``.
    """
    value = float(value)
    if value in (0.0, 1.0):
        return str(int(value))
    for places in range(digits, 7):
        text = f"{value:.{places}f}"
        if float(text) not in (0.0, 1.0):
            break
    else:
        text = ">.999999" if value > 0.5 else "<.000001"
        return text
    return text[1:] if text.startswith("0.") else text


def as_array(values) -> np.ndarray:
    """A float numpy array ``(H, W)`` or ``(H, W, 3)`` from ``(H, W)``, ``(C, H, W)`` or ``(1, C, H, W)`` input."""
    if isinstance(values, torch.Tensor):
        values = values.detach().float().cpu().numpy()
    array = np.asarray(values, dtype=np.float32)
    while array.ndim > 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3:
        if array.shape[0] == 1:
            array = array[0]
        elif array.shape[0] == 3:
            array = array.transpose(1, 2, 0)
        elif array.shape[-1] not in (1, 3):
            raise ValueError(f"expected (H, W), (1, H, W) or (3, H, W), got shape {array.shape}")
        if array.ndim == 3 and array.shape[-1] == 1:
            array = array[..., 0]
    if array.ndim not in (2, 3):
        raise ValueError(f"expected an image or map of shape (H, W) or (C, H, W), got shape {array.shape}")
    return array


def _label_pixels(ax, axis_labels: bool) -> None:
    if axis_labels:
        ax.set_xlabel("x (pixels)")
        ax.set_ylabel("y (pixels)")
    else:
        ax.set_xticks([])
        ax.set_yticks([])


def _colourbar(ax, image, label: str):
    return ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=label)


def show_image(ax, image, title: str | None = None, *, axis_labels: bool = True):
    """Draw an image in [0, 1] (grey for one channel, RGB for three). Returns the ``AxesImage``."""
    array = as_array(image)
    drawn = ax.imshow(np.clip(array, 0, 1), cmap="gray" if array.ndim == 2 else None, vmin=0, vmax=1)
    if title:
        ax.set_title(title)
    _label_pixels(ax, axis_labels)
    return drawn


def show_map(
    ax,
    values,
    title: str | None = None,
    *,
    cbar: bool = True,
    cmap: str = "viridis",
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
    label: str = "saliency",
    axis_labels: bool = True,
):
    """Draw a map ``(H, W)`` with a colour bar named ``label``. ``vmin``/``vmax`` ``None``: the map's range."""
    drawn = ax.imshow(as_array(values), cmap=cmap, vmin=vmin, vmax=vmax)
    if cbar:
        _colourbar(ax, drawn, label)
    if title:
        ax.set_title(title)
    _label_pixels(ax, axis_labels)
    return drawn


def draw_cell_lines(ax, size: int, colour: str = "tab:orange", linewidth: float = 0.6) -> None:
    """Draw the borders of an ``size x size`` grid of cells (replacing earlier ones) and tick every few cells."""
    for collection in list(ax.collections):
        if collection.get_gid() == "cell-lines":
            collection.remove()
    edges = np.arange(-0.5, size, 1)
    ax.vlines(edges, -0.5, size - 0.5, colors=colour, linewidth=linewidth, gid="cell-lines")
    ax.hlines(edges, -0.5, size - 0.5, colors=colour, linewidth=linewidth, gid="cell-lines")
    ticks = np.arange(0, size, max(1, size // 4))
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)


def show_grid(
    ax,
    grid,
    title: str | None = "coarse grid",
    *,
    cbar: bool = True,
    cmap: str = "Greys_r",
    vmin: float = 0.0,
    vmax: float = 1.0,
    label: str = "cell value",
    annotate: bool = False,
):
    """Draw a coarse grid ``(s, s)`` cell by cell, with cell borders and a colour bar.

    ``annotate=True`` writes each cell's value in it (useful for small grids, e.g. to see a 0.98 rescaled cell).
    """
    array = as_array(grid)
    size = array.shape[0]
    drawn = ax.imshow(array, cmap=cmap, vmin=vmin, vmax=vmax)
    draw_cell_lines(ax, size, "tab:orange")
    ax.set_xlabel("cell column")
    ax.set_ylabel("cell row")
    if annotate:
        for (row, col), value in np.ndenumerate(array):
            ax.text(
                col,
                row,
                f"{value:.2f}".rstrip("0").rstrip("."),
                ha="center",
                va="center",
                fontsize=7,
                color="black" if value > (vmin + vmax) / 2 else "white",
            )
    if cbar:
        _colourbar(ax, drawn, label)
    if title:
        ax.set_title(title)
    return drawn


def overlay(
    ax,
    image,
    values,
    alpha: float = 0.5,
    title: str | None = None,
    *,
    cbar: bool = True,
    cmap: str = "jet",
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
    label: str = "saliency",
    axis_labels: bool = True,
):
    """Draw ``values`` ``(H, W)`` over ``image`` with transparency ``alpha`` (< 1 keeps the image visible).

    Returns the map's ``AxesImage`` (its colour bar is drawn when ``cbar``).
    """
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    show_image(ax, image, axis_labels=axis_labels)
    drawn = ax.imshow(as_array(values), cmap=cmap, vmin=vmin, vmax=vmax, alpha=alpha)
    if cbar:
        _colourbar(ax, drawn, label)
    if title:
        ax.set_title(title)
    return drawn


def cell_fates(old_grid, new_grid) -> np.ndarray:
    """Fate of each cell as an int array ``(s, s)``: 0 kept, 1 dropped, 2 turned on, 3 stayed off."""
    old, new = as_array(old_grid) > 0, as_array(new_grid) > 0
    return np.select([old & new, old & ~new, ~old & new], [0, 1, 2], default=3)


def show_cell_changes(ax, old_grid, new_grid, title: str | None = "what the update did", *, legend: bool = True):
    """Colour every cell by its fate between two grids ``(s, s)``: kept, dropped, turned on, stayed off.

    Returns the ``AxesImage``; the legend gives the count of each fate.
    """
    fate = cell_fates(old_grid, new_grid)
    colours = list(CHANGE_COLOURS.values())
    drawn = ax.imshow(fate, cmap=ListedColormap(colours), vmin=-0.5, vmax=3.5, interpolation="nearest")
    draw_cell_lines(ax, fate.shape[0], "white")
    ax.set_xlabel("cell column")
    ax.set_ylabel("cell row")
    if legend:
        handles = [
            Patch(color=colour, label=f"{name} ({int((fate == k).sum())})")
            for k, (name, colour) in enumerate(CHANGE_COLOURS.items())
        ]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8, frameon=False)
    if title:
        ax.set_title(title)
    return drawn


def plot_update_rule(ax, p: float | None = None, title: str | None = "the update rule"):
    """Keep probability (``p``) and turn-on probability (``1 - p``) of a cell against the masked image's ``p``.

    Marks ``p`` when given. Returns the list of vertical-marker artists (empty without ``p``).
    """
    grid = np.linspace(0, 1, 101)
    ax.plot(grid, grid, color=CHANGE_COLOURS["kept"], label="on cell stays on: p")
    ax.plot(grid, 1 - grid, color=CHANGE_COLOURS["turned on"], label="off cell turns on: 1 - p")
    ax.set_xlabel("p = target probability of the masked image")
    ax.set_ylabel("probability")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    markers = []
    if p is not None:
        markers.append(ax.axvline(float(p), color="black", linestyle="--", label=f"this step: p = {float(p):.2f}"))
    ax.legend(loc="center left", fontsize=8)
    if title:
        ax.set_title(title)
    return markers


def compare_maps(
    image, maps: dict, *, alpha: float = 0.5, cmap: str = "jet", size: float = 2.6, title: str | None = None
):
    """One row: the image, then each map of ``maps`` (name -> ``(H, W)``) over it, each with its own colour bar.

    Each map is drawn on its own range, from its minimum to its maximum (its colour bar shows the values), so a
    map whose values all sit in a narrow band (RISE's: every pixel near the mean score) shows its structure
    instead of one flat colour. Colours therefore compare *where* each map is high, not *how high* across maps;
    the figure's caption says so. Returns the ``Figure`` (made with pyplot, for notebooks).
    """
    figure, axes = plt.subplots(
        1,
        len(maps) + 1,
        figsize=(size * (len(maps) + 1) + 0.6 * len(maps), size),
        squeeze=False,
        constrained_layout=True,
    )
    show_image(axes[0, 0], image, "image")
    for ax, (name, values) in zip(axes[0, 1:], maps.items()):
        low, high = colour_range(values)
        overlay(
            ax, image, values, alpha=alpha, title=name, cmap=cmap, vmin=low, vmax=high, label="saliency (own range)"
        )
    figure.suptitle(
        (f"{title}\n" if title else "") + "each map coloured from its own minimum to its own maximum", fontsize=10
    )
    return figure


# ---- evaluation curves (notebook 04) -----------------------------------------------------------------------------
# Deletion/insertion curves, the paper-style method grid (rows = images, columns = methods, scores in titles), and
# benchmark bars with confidence intervals. All draw from tensors/dicts the library returns (metrics, benchmark).


def colour_range(values, *, signed: bool = False) -> tuple[float, float]:
    """The colour range ``(vmin, vmax)`` of one map ``(H, W)``: the one home of map colour scaling.

    A map runs from its smallest to its largest finite value, so a map whose values all lie in a narrow band (RISE's)
    shows its structure; ``signed``: symmetric around 0 (red for, blue against). A flat map gets a unit range
    around its value (one colour, no division by zero); a map with no finite value gets ``(0, 1)``.
    """
    array = as_array(values).astype(np.float64)
    finite = array[np.isfinite(array)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if signed:
        bound = max(abs(low), abs(high)) or 1.0
        return -bound, bound
    if high <= low:
        return low - 0.5, high + 0.5
    return low, high


def scaled_map(values) -> np.ndarray:
    """A map min-max scaled to [0, 1] by :func:`colour_range` (flat maps become 0), so methods with different units
    share a colour bar."""
    array = as_array(values).astype(np.float64)
    if not array.max() > array.min():
        return np.zeros_like(array, dtype=np.float32)
    low, high = colour_range(array)
    return ((array - low) / (high - low)).astype(np.float32)


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
):
    """The paper-style figure: one row per image, one column per method, each map over its image.

    Args:
        images: ``(B, C, H, W)``.
        maps: method -> ``(B, H, W)``; each map is min-max scaled to [0, 1] for display (one shared colour bar).
        scores: method -> list of B title strings (e.g. ``"del 0.07 / ins 0.81"``).
        boxes: ``(B, 4)`` ground-truth boxes drawn on every panel.
        row_names: B labels for the first column.

    Returns:
        The ``Figure`` (pyplot).
    """
    names = list(maps)
    batch = len(images)
    figure, axes = plt.subplots(
        batch,
        len(names) + 1,
        figsize=(size * (len(names) + 1) + 0.8, size * batch + 0.3),
        squeeze=False,
        constrained_layout=True,
    )
    drawn = None
    for row in range(batch):
        show_image(axes[row, 0], images[row], row_names[row] if row_names is not None else None, axis_labels=False)
        if boxes is not None:
            draw_box(axes[row, 0], boxes[row])
        for col, name in enumerate(names, start=1):
            ax = axes[row, col]
            show_image(ax, images[row], axis_labels=False)
            drawn = ax.imshow(scaled_map(maps[name][row]), cmap=cmap, vmin=0, vmax=1, alpha=alpha)
            if boxes is not None:
                draw_box(ax, boxes[row])
            label = name if scores is None else f"{name}\n{scores[name][row]}"
            ax.set_title(label, fontsize=8)
    figure.colorbar(
        drawn, ax=axes[:, 1:].ravel().tolist(), fraction=0.02, pad=0.01, label="saliency (min-max scaled per map)"
    )
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
# Figures of Part B: the inpainting set-up (hole, context weights), a grid of variations with the classifier's
# class on each, the latent-search loss, and the agreement curves of `python -m saliency_lib reconstruct`.

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

    ``result`` is the dict written by ``python -m saliency_lib reconstruct`` (``reconstruction_<suite>.json``).
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
