"""saliency_lib: the library behind the saliency-tutorial notebooks.

Rebuilds the black-box saliency method of Thakur & Fischmeister, *A generalizable saliency map-based
interpretation of model outcome* (ICPR 2020; the authors call it OISE), with RISE, baselines, metrics and the
generative reconstruction of salient regions. ``docs/library.md`` lists the modules, and ``docs/method.md``
describes the method.

The modules live in subpackages by concern, and imports only run downwards:

==============  ====================================================================================
``cli``         ``python -m saliency_lib COMMAND`` (``explain`` one image, ``assets``): a thin module each
``course``      the tutorial's helpers (``tutorial``, ``learner_edition``, ``install_check``) and ``widgets``
``generative``  Part B: the GAN and the reconstruction of salient regions
``evaluation``  metrics, baselines and the datasets with ground truth
``io``          files and models: shipped assets, data, uploads, image files, classifiers, ONNX Runtime
``method``      OISE, RISE, their masks, results and shared pieces: the bottom, imported by everything
``plots``       figures (matplotlib only; imports nothing of the library)
==============  ====================================================================================

Every module is imported by its own path, as its file sits: ``from saliency_lib.io import data, models``,
``from saliency_lib.method.core import class_probabilities``, ``from saliency_lib.course import tutorial, widgets``.
The package itself re-exports the two methods and their pieces (below), as ``captum.attr`` does, and nothing else,
so ``import saliency_lib`` stays light. The research bench (evaluation suites, budget study, boxes, sharded runs,
reports, experiment commands) is the separate package ``saliency_research``, which imports this one.

The two methods are functions, ``oise(model, images, target)`` and ``rise(...)``, with Captum-shaped twins,
``OISE(model).attribute(images, target=...)`` and ``RISE``. Their modules are ``oise_method`` and
``rise_method``, so a function never hides a module of the same name. Every method returns a
:class:`SaliencyResult` (``result.maps``, ``result.model_calls``, ``result.target``, ...; module ``results``).
"""

from __future__ import annotations

__version__ = "0.1.0"

from .method.masks import apply_mask, init_grid, postprocess, update_grid, upsample
from .method.oise_method import OISE, OISEStep, Recorder, oise
from .method.results import SaliencyResult
from .method.rise_method import RISE, rise

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
