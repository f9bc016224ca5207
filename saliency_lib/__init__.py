"""saliency_lib: the library behind the saliency-tutorial notebooks.

Rebuilds the black-box saliency method of Thakur & Fischmeister, *A generalizable saliency map-based
interpretation of model outcome* (ICPR 2020; the authors call it OISE), with RISE, baselines, metrics and the
generative reconstruction of salient regions. ``docs/library.md`` lists the modules, and ``docs/method.md``
describes the method.

The modules live in subpackages by concern, and imports only run downwards:

==============  ====================================================================================
``cli``         ``python -m saliency_lib COMMAND``: one thin module per command
``course``      the tutorial's helpers (``tutorial``, ``learner_edition``, ``install_check``) and ``widgets``
``generative``  Part B: the GAN, the reconstruction of salient regions and its experiment
``evaluation``  metrics, baselines, datasets, the evaluation suites and their reports
``io``          files and models: shipped assets, data, uploads, image files, classifiers, ONNX Runtime, sharded runs
``method``      OISE, RISE, their masks, results and shared pieces: the bottom, imported by everything
``plots``       figures (matplotlib only; imports nothing of the library)
==============  ====================================================================================

A learner keeps the short names: ``from saliency_lib import models, data, plots, widgets`` and
``from saliency_lib.core import class_probabilities`` work as before (:data:`SHORT_NAMES` maps each to its home;
a short name is loaded the first time it is used, so ``import saliency_lib`` stays light).

The two methods are functions, ``oise(model, images, target)`` and ``rise(...)``, with Captum-shaped twins,
``OISE(model).attribute(images, target=...)`` and ``RISE``. Their modules are ``oise_method`` and
``rise_method``, so a function never hides a module of the same name. Every method returns a
:class:`SaliencyResult` (``result.maps``, ``result.model_calls``, ``result.target``, ...; module ``results``).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

from .method.masks import apply_mask, init_grid, postprocess, update_grid, upsample  # noqa: E402
from .method.oise_method import OISE, OISEStep, Recorder, oise  # noqa: E402
from .method.results import SaliencyResult  # noqa: E402
from .method.rise_method import RISE, rise  # noqa: E402

# The short name a learner types -> where the module lives (under saliency_lib).
SHORT_NAMES = {
    "core": "method.core",
    "masks": "method.masks",
    "oise_method": "method.oise_method",
    "rise_method": "method.rise_method",
    "results": "method.results",
    "assets": "io.assets",
    "data": "io.data",
    "uploads": "io.uploads",
    "image_files": "io.image_files",
    "models": "io.models",
    "runtime": "io.runtime",
    "distributed": "io.distributed",
    "metrics": "evaluation.metrics",
    "baselines": "evaluation.baselines",
    "datasets": "evaluation.datasets",
    "reports": "evaluation.reports",
    "box_annotations": "evaluation.box_annotations",
    "gan": "generative.gan",
    "reconstruct": "generative.reconstruct",
    "reconstruction_experiment": "generative.reconstruction_experiment",
    "tutorial": "course.tutorial",
    "learner_edition": "course.learner_edition",
    "install_check": "course.install_check",
    "widgets": "course.widgets",
}


def __getattr__(name: str):
    """``saliency_lib.models`` and ``from saliency_lib import models``: the module, imported on first use."""
    if name in SHORT_NAMES:
        module = importlib.import_module(f"{__name__}.{SHORT_NAMES[name]}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(SHORT_NAMES))


class _ShortNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import saliency_lib.core`` / ``from saliency_lib.widgets.view import ...``: the module at its home.

    The short dotted name is the same module object as the long one (no second copy, so state and
    monkeypatching are shared); ``python -m`` with a short name runs the module at its home.
    """

    @staticmethod
    def home(fullname: str) -> str | None:
        parts = fullname.split(".")
        if len(parts) < 2 or parts[0] != __name__ or parts[1] not in SHORT_NAMES:
            return None
        return ".".join([__name__, SHORT_NAMES[parts[1]], *parts[2:]])

    def find_spec(self, fullname, path=None, target=None):
        home = self.home(fullname)
        if home is None or importlib.util.find_spec(home) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        home = self.home(spec.name)
        module = importlib.import_module(home)
        # The home's submodules already loaded get their short names too, so that importing one by its short name
        # later finds it in sys.modules instead of loading it again: a fresh load would set it as an attribute of
        # its package and hide a function of the same name (``widgets.your_model_panel``, the function).
        for name, loaded in list(sys.modules.items()):
            if name.startswith(home + "."):
                sys.modules.setdefault(spec.name + name[len(home) :], loaded)
        return module

    def exec_module(self, module):
        pass  # already executed under its home name

    def get_code(self, fullname):
        """``python -m saliency_lib.tutorial ...``: run the module at its home as ``__main__``."""
        home = self.home(fullname)
        return compile(f"import runpy\nrunpy.run_module({home!r}, run_name='__main__', alter_sys=True)\n", home, "exec")


if not any(isinstance(finder, _ShortNames) for finder in sys.meta_path):
    sys.meta_path.insert(0, _ShortNames())

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
    "SHORT_NAMES",
]
