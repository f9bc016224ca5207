"""What notebook 06's panel shows and writes: the row of maps, each with its own colour scale
(:func:`draw_maps`, :func:`map_scale`), the table of model calls and seconds (:func:`results_table`), and the
saved figure and maps with their links (:func:`write_figure_and_maps`, :func:`saved_links`).
:mod:`.your_model_panel` is the panel.
"""

from __future__ import annotations

import base64
import html
import time
from pathlib import Path

import numpy as np

from ... import plots

__all__ = ["METHOD_LABELS", "map_scale", "draw_maps", "write_figure_and_maps", "saved_links", "results_table"]

#: Methods the panel runs: name for :func:`saliency_lib.evaluation.baselines.attribute` -> label.
METHOD_LABELS = {
    "oise": "OISE",
    "rise": "RISE",
    "gradcam": "Grad-CAM",
    "saliency": "Gradients",
    "integrated_gradients": "Integrated Gradients",
    "occlusion": "Occlusion",
    "lime": "LIME",
}
# Signed maps (evidence for and against) get a diverging colour map centred on 0.
_SIGNED = ("integrated_gradients", "occlusion", "lime")
_UNITS = {
    "oise": "OISE saliency",
    "rise": "E[probability | pixel kept]",
    "gradcam": "weighted activations",
    "saliency": "|gradient|",
    "integrated_gradients": "attribution (signed)",
    "occlusion": "score drop (signed)",
    "lime": "superpixel weight (signed)",
}


def map_scale(method: str, values) -> dict:
    """The colour scale of one map: ``{"vmin", "vmax", "cmap", "label"}``.

    Each map type keeps its own units and gets its own colour bar: non-negative maps run from their smallest to
    their largest value ("jet"), so a RISE map whose values all lie near 0.6 is not drawn uniformly red on a
    0-to-max scale; signed maps run symmetrically around 0 ("RdBu_r": red for, blue against the class).
    """
    label = _UNITS.get(method, method)
    low, high = plots.colour_range(values, signed=method in _SIGNED)
    if method in _SIGNED:
        return {"vmin": low, "vmax": high, "cmap": "RdBu_r", "label": label + "\n(red for, blue against)"}
    return {"vmin": low, "vmax": high, "cmap": "jet", "label": label + "\n(its min to its max)"}


def draw_maps(figure, image, maps: dict, *, title: str | None = None, notes: dict | None = None, alpha: float = 0.5):
    """One row on ``figure``: the image, then each map (method -> ``(H, W)``) over it with its own colour bar.

    Args:
        figure: a matplotlib ``Figure`` (cleared first).
        image: ``(C, H, W)`` or ``(1, C, H, W)`` in [0, 1].
        maps: method name (a key of :data:`METHOD_LABELS`, or any name) -> map ``(H, W)``.
        title: the image's title (e.g. the model and the target class).
        notes: method -> a line under its title (e.g. ``"500 calls, 12.3 s"``).
        alpha: opacity of the maps over the image.

    Returns:
        The list of axes.
    """
    figure.clear()
    figure.set_layout_engine("constrained")  # a panel's view turns layout off after its first frame
    # Square images: as tall as one column is wide, plus room for two title lines and a colour bar.
    width = figure.get_size_inches()[0]
    figure.set_size_inches(width, width / max(len(maps) + 1, 4) + 1.8)
    axes = figure.subplots(1, len(maps) + 1, squeeze=False)[0]
    column = width / (len(maps) + 1)  # inches: long titles wrap to their column instead of being cut off
    plots.show_image(axes[0], image, axis_labels=False)
    axes[0].set_title(plots.fit_title(title or "image", column, 9), fontsize=9)
    for ax, (method, values) in zip(axes[1:], maps.items()):
        scale = map_scale(method, values)
        plots.show_image(ax, image, axis_labels=False)
        drawn = ax.imshow(
            plots.as_array(values), cmap=scale["cmap"], vmin=scale["vmin"], vmax=scale["vmax"], alpha=alpha
        )
        heading = METHOD_LABELS.get(method, method)
        if notes and notes.get(method):
            heading += f"\n{notes[method]}"
        ax.set_title(plots.fit_title(heading, column, 9), fontsize=9)
        bar = figure.colorbar(drawn, ax=ax, fraction=0.046, pad=0.03, orientation="horizontal")
        bar.set_label(scale["label"], fontsize=7)
        bar.ax.tick_params(labelsize=7)
    return list(axes)


def results_table(outcomes: dict, calls: dict, seconds: dict) -> str:
    """The HTML table under the maps: each method's model calls, seconds and outcome ("" before any run)."""
    cell = "<td style='padding:0 12px; text-align:{}'>{}</td>"
    rows = "".join(
        "<tr>"
        + cell.format("left", METHOD_LABELS.get(m, m))
        + cell.format("right", calls.get(m, ""))
        + cell.format("right", f"{seconds[m]:.1f}" if m in seconds else "")
        + cell.format("left", html.escape(outcome))
        + "</tr>"
        for m, outcome in outcomes.items()
    )
    head = "".join(
        cell.format(align, f"<b>{name}</b>")
        for name, align in (("method", "left"), ("model calls", "right"), ("seconds", "right"), ("outcome", "left"))
    )
    return f"<table><tr>{head}</tr>{rows}</table>" if rows else ""


def write_figure_and_maps(directory: Path, names: tuple, figure, dpi: int, **arrays) -> tuple[Path, Path]:
    """Save ``figure`` as PNG and ``arrays`` as a compressed ``.npz`` in ``directory``, under one stem made of
    ``names`` (the model and the image) and the time; returns the two paths. The caller holds the figure's lock."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = "saliency-" + "-".join(_slug(part) for part in names) + time.strftime("-%Y%m%d-%H%M%S")
    png, npz = directory / f"{stem}.png", directory / f"{stem}.npz"
    figure.savefig(png, dpi=dpi)
    np.savez_compressed(npz, **arrays)
    return png, npz


def saved_links(directory: Path, paths: tuple[Path, ...], embed_limit: int) -> str:
    """HTML naming ``directory`` with a link to each file: a download link holding the data while the files are
    smaller than ``embed_limit`` bytes together (so it works in Voila and on Binder too), else the file's name."""
    links = []
    embed = sum(path.stat().st_size for path in paths) <= embed_limit
    for path in paths:
        kind = "image/png" if path.suffix == ".png" else "application/octet-stream"
        href = f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}" if embed else html.escape(path.name)
        links.append(
            f"<a href='{href}' download='{html.escape(path.name)}' target='_blank'>{html.escape(path.name)}</a>"
        )
    return f"Saved in {html.escape(str(directory.resolve()))}: " + " · ".join(links)


def _slug(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_" else "-" for c in str(text).lower())
    return "-".join(part for part in keep.split("-") if part)[:40] or "image"
