"""saliency_lib: the library behind the saliency-tutorial notebooks.

Rebuilds the black-box saliency method of Thakur & Fischmeister, *A generalizable saliency map-based
interpretation of model outcome* (ICPR 2020; the authors call it OISE), with RISE, baselines, metrics and the
generative reconstruction of salient regions. One module per idea; docs/library.md lists them, and
``docs/method.md`` describes the method.

The two methods are functions, ``oise(model, images, target)`` and ``rise(...)``, with Captum-shaped twins,
``OISE(model).attribute(images, target=...)`` and ``RISE``. Their modules are ``oise_method`` and
``rise_method``, so a function never hides a module of the same name. Every method returns a
:class:`SaliencyResult` (``result.maps``, ``result.model_calls``, ``result.target``, ...; module ``results``).
"""

__version__ = "0.1.0"

from .masks import apply_mask, init_grid, postprocess, update_grid, upsample  # noqa: E402
from .oise_method import OISE, OISEStep, Recorder, oise  # noqa: E402
from .results import SaliencyResult  # noqa: E402
from .rise_method import RISE, rise  # noqa: E402

__all__ = [
    "oise",
    "rise",
    "OISE",
    "RISE",
    "SaliencyResult",
    "OISEStep",
    "Recorder",
    "init_grid",
    "upsample",
    "apply_mask",
    "update_grid",
    "postprocess",
]
