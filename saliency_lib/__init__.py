"""saliency_lib: the library behind the saliency-tutorial notebooks.

Rebuilds the black-box saliency method of Thakur & Fischmeister, *A generalizable saliency map-based
interpretation of model outcome* (ICPR 2020; the authors call it OISE), with RISE, baselines, metrics and the
generative reconstruction of salient regions. One module per idea; see the README for the map.
"""

__version__ = "0.1.0"

from .masks import apply_mask, init_grid, postprocess, update_grid, upsample  # noqa: E402
from .oise import OISEStep, Recorder, oise  # noqa: E402
from .rise import rise  # noqa: E402

__all__ = ["oise", "rise", "OISEStep", "Recorder", "init_grid", "upsample", "apply_mask", "update_grid",
           "postprocess"]
