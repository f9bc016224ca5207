"""Images, maps and overlays (notebooks 01-03, the widgets): a map, the grid of a mask, the update rule, maps
of several methods side by side, and the one colour scale of every map (:func:`colour_range`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

__all__ = [
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
    "scaled_map",
    "colour_range",
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


def fit_title(text: str, width_inches: float, fontsize: float) -> str:
    """``text`` with each line wrapped to fit ``width_inches`` at ``fontsize`` points (a glyph is ~0.55 em wide), so
    titles over narrow columns wrap instead of running into the next one or off the figure."""
    import textwrap

    per_line = max(8, int(width_inches * 72 / (0.55 * fontsize)))
    return "\n".join(textwrap.fill(line, per_line, break_on_hyphens=False) or line for line in text.split("\n"))
