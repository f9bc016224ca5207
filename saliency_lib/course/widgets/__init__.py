"""Widget panels for the notebooks, as factories that return the widget (no global state), one panel per module.

Tests drive them without a browser: set ``.value`` on the controls, call ``.click()`` on buttons, then read what
the panel computed (each panel exposes its controls and results as attributes). Widgets import the library's
public names, never the other way round.

==================  ==========  ============================================================================
module              notebook    panel
==================  ==========  ============================================================================
view                all         :class:`FigureView` (a figure shown as a PNG widget) and drawing helpers
mask_panel          01          :func:`mask_panel`: grid, upsampling, shifted crop, masked image, probabilities
update_panel        02          :func:`update_panel`: the pixel-weighting update, one step per click
loop_panel          03          :func:`loop_panel`: the whole OISE loop, Run / Stop, scrub the recorded steps
evaluation_panel    04          :func:`evaluation_panel`: maps of several methods, deletion/insertion curves
reconstruct_panel   05          :func:`reconstruct_panel`: acceptable variations of one image
your_model_panel    06          :func:`your_model_panel`: your image and model, OISE, RISE, baselines
==================  ==========  ============================================================================
"""

from .evaluation_panel import EvaluationPanel, evaluation_panel
from .loop_panel import LoopPanel, loop_panel
from .mask_panel import MaskPanel, mask_panel
from .reconstruct_panel import ReconstructPanel, reconstruct_panel
from .update_panel import UpdatePanel, update_panel
from .view import FigureView
from .your_model_panel import YourModelPanel, your_model_panel

__all__ = [
    "FigureView",
    "MaskPanel",
    "UpdatePanel",
    "LoopPanel",
    "mask_panel",
    "update_panel",
    "loop_panel",
    "EvaluationPanel",
    "evaluation_panel",
    "ReconstructPanel",
    "reconstruct_panel",
    "YourModelPanel",
    "your_model_panel",
]
