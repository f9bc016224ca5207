"""Matplotlib figures shared by notebooks, widgets and commands. Every function returns the ``Figure`` (or draws
on the ``Axes`` it is given), labels its axes, and gives colour maps a colour bar; overlays keep the image visible.

Three groups, one module each: images, maps and overlays (notebooks 01-03, the widgets; :mod:`.maps`);
evaluation curves, method grids and benchmark bars (notebook 04; :mod:`.curves`); the figures of Part B, the
reconstruction (notebook 05; :mod:`.reconstruction`). ``plots.compare_maps`` and the like reach every one of
them. Nothing here imports the rest of the library. The method behind them is described in ``docs/method.md``.
"""

from .curves import draw_box, plot_benchmark_bars, plot_curves, plot_method_grid
from .maps import (
    CHANGE_COLOURS,
    as_array,
    cell_fates,
    cell_value_text,
    colour_range,
    compare_maps,
    draw_cell_lines,
    fit_title,
    overlay,
    plot_update_rule,
    scaled_map,
    show_cell_changes,
    show_grid,
    show_image,
    show_map,
)
from .reconstruction import (
    CONDITION_LABELS,
    agreement_table,
    plot_agreement_curves,
    plot_inpainting_setup,
    plot_search_loss,
    plot_variations,
)

__all__ = [
    "as_array",
    "show_image",
    "show_map",
    "show_grid",
    "draw_cell_lines",
    "fit_title",
    "overlay",
    "show_cell_changes",
    "cell_fates",
    "plot_update_rule",
    "compare_maps",
    "CHANGE_COLOURS",
    "cell_value_text",
    "scaled_map",
    "colour_range",
    "plot_curves",
    "draw_box",
    "plot_method_grid",
    "plot_benchmark_bars",
    "plot_inpainting_setup",
    "plot_variations",
    "plot_search_loss",
    "plot_agreement_curves",
    "CONDITION_LABELS",
    "agreement_table",
]
