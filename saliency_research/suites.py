"""The evaluation's suites: which datasets, methods, budgets and settings each suite runs (:data:`SUITES`).

A :class:`DatasetPlan` is one dataset of a suite; :func:`method_options` turns it into one method's options
(the same budget for OISE and RISE, the dataset's reference for every method that masks), and
:func:`plan_runtime` picks the runtime its black-box methods use. The suites are described in
:mod:`saliency_research.runner`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from saliency_lib.evaluation.baselines import METHODS
from saliency_lib.evaluation.datasets import DATASET_REFERENCES
from saliency_lib.method.core import model_device

__all__ = [
    "DatasetPlan",
    "SUITES",
    "EXPERIMENT",
    "LOCALIZATION",
    "FAITHFULNESS",
    "BLACK_BOX",
    "PAPER_BUDGET",
    "REFERENCE_METHODS",
    "AGREEMENT_METHODS",
    "result_stem",
    "method_options",
    "plan_runtime",
    "SCORING",
]

# The scoring protocol, the same for every method (saliency_lib.evaluation.metrics); result files record it.
SCORING = (
    "every method's own map, OISE's raw sum S as RISE's raw expectation map (no post-processing for any method); "
    "energy in the box and IoU's threshold on min-max scaled maps; deletion and insertion take tied pixels in a "
    "seeded random order; Spearman gives tied pixels their average rank; the pointing game scores a tied "
    "maximum by its share inside the box"
)
EXPERIMENT = "evaluation"  # result files are named evaluation_<suite>.json and .md
LOCALIZATION = ("pointing", "iou", "energy")
FAITHFULNESS = ("deletion", "insertion")


@dataclass
class DatasetPlan:
    """How one dataset is run within a suite.

    Attributes:
        name: one of :data:`DATASETS`.
        n: images (canvases) evaluated.
        budget: model calls per image for OISE (``n_steps``) and RISE (``n_masks``), always equal.
        pixels_per_step: pixels deleted/inserted per step of the curves.
        methods: which of :data:`saliency_lib.evaluation.baselines.METHODS` run.
        options: per-method options beyond the budget (e.g. LIME's ``n_samples``).
        chunk: images explained per batch.
        curve_batch: masked images per model call in the deletion/insertion curves.
        runtime: ``"torch"``, or ``"auto"``/``"onnx"``: the black-box methods (:data:`BLACK_BOX`) and every
            method's curves run in ONNX Runtime (:func:`saliency_lib.io.runtime.fast_model`), gradients in PyTorch.
        record_runtime: each record says its runtime and the machine (CPU, cores, load) it ran on.
        reference: the masked-pixel value of the methods (:data:`REFERENCE_METHODS`) and of the deletion metric,
            a name of :data:`saliency_lib.method.core.REFERENCES`; ``None``: the dataset's own
            (:data:`saliency_lib.evaluation.datasets.DATASET_REFERENCES`).
        insertion_start: the insertion metric's starting image (RISE's ``"blur"``).
        agreement_n: seed-to-seed agreement of the seeded methods is measured on the first ``agreement_n`` images.
    """

    name: str
    n: int
    budget: int
    pixels_per_step: int = 28
    methods: tuple[str, ...] = tuple(METHODS)
    options: dict = field(default_factory=dict)
    chunk: int = 50
    curve_batch: int = 256
    runtime: str = "torch"
    record_runtime: bool = False
    reference: str | None = None
    insertion_start: str = "blur"
    agreement_n: int = 50

    def masked_value(self) -> str:
        """The reference this plan runs with: its own, else the dataset's default."""
        return self.reference if self.reference is not None else DATASET_REFERENCES[self.name]


# Methods that only call the model (no gradients): a plan with ``runtime`` "auto"/"onnx" runs them, and every
# method's deletion/insertion curves, on the fast runtime (saliency_lib.io.runtime). Captum's Occlusion and LIME call
# the model under ``torch.no_grad``; Grad-CAM, Integrated Gradients and Saliency differentiate: PyTorch.
BLACK_BOX = ("oise", "rise", "random", "occlusion", "lime")
PAPER_BUDGET = 5000  # the paper's N: model calls per image for OISE and RISE
# Methods that replace pixels by a reference (Integrated Gradients: its baseline): they get the plan's reference.
REFERENCE_METHODS = ("oise", "rise", "occlusion", "lime", "integrated_gradients")
# Seeded methods whose seed-to-seed agreement is recorded (random: the control, ~0); Occlusion is deterministic.
AGREEMENT_METHODS = ("oise", "rise", "lime", "random")


def result_stem(suite: str, reference: str | None = None) -> str:
    """``evaluation_<suite>`` (each dataset's own reference) or ``evaluation_<suite>_<reference>`` (one
    reference forced on every dataset, e.g. the authors' ``mean``): results of two references never share a file."""
    return f"{EXPERIMENT}_{suite}" + (f"_{reference}" if reference is not None else "")


def _suite(scale: str) -> list[DatasetPlan]:
    quick = scale == "quick"
    # Budgets are set by the time the suite may take on a shared 2-core CPU (full: <= 35 min), never per method.
    common = {
        "lime": {"n_samples": 50 if quick else 100},
        "integrated_gradients": {"n_path_points": 16},
        "rise": {"batch_size": 500},
    }
    plans = [
        DatasetPlan(
            "planted",
            16 if quick else 100,
            300,
            pixels_per_step=256,
            options={**common, "occlusion": {"window": 8, "stride": 4}},
        ),
        DatasetPlan(
            "clutter",
            20 if quick else 500,
            300,
            pixels_per_step=256,
            options={**common, "occlusion": {"window": 8, "stride": 8}},
        ),
        DatasetPlan(
            "fashion",
            20 if quick else 500,
            300,
            pixels_per_step=56,
            options={**common, "occlusion": {"window": 4, "stride": 4}},
        ),
        DatasetPlan(
            "sanity",
            4 if quick else 10,
            300,
            methods=tuple(m for m in METHODS if m != "random"),
            options={**common, "occlusion": {"window": 4, "stride": 4}},
            chunk=16,
        ),
    ]
    if not quick:
        # How OISE and RISE change with the budget (the paper runs 5000 steps): a few images, three budgets.
        plans.append(
            DatasetPlan(
                "budget",
                20,
                3000,
                pixels_per_step=56,
                methods=("oise", "rise"),
                options={"rise": {"batch_size": 500}, "budgets": (300, 1000, 3000)},
                chunk=20,
            )
        )
        # EfficientNet-Lite0 costs ~0.1-0.5 s per image on the shared CPU: small budgets, coarse curves (stated).
        photo = {
            "lime": {"n_samples": 30},
            "integrated_gradients": {"n_path_points": 4, "batch_size": 8},
            "occlusion": {"window": 56, "stride": 56, "batch_size": 16},
            "rise": {"batch_size": 25},
            "oise": {"batch_size": 25},
        }
        plans.append(DatasetPlan("photos", 4, 150, pixels_per_step=224 * 56, options=photo, chunk=4, curve_batch=20))
    return plans


def _paper_suite() -> list[DatasetPlan]:
    """The paper's budget (5,000 calls per image for OISE and RISE), 500 images per dataset, baselines as in the
    full suite. Black-box methods and all curves run in ONNX Runtime (same logits; ``runtime="auto"``), except on
    the planted-evidence model, a tiny PyTorch module that is cheap as it is."""
    common = {"lime": {"n_samples": 100}, "integrated_gradients": {"n_path_points": 16}, "rise": {"batch_size": 500}}
    photo = {
        "lime": {"n_samples": 30},
        "integrated_gradients": {"n_path_points": 4, "batch_size": 8},
        "occlusion": {"window": 56, "stride": 56, "batch_size": 16},
        "rise": {"batch_size": 50},
        "oise": {"batch_size": 50},
    }
    paper = {"record_runtime": True}
    return [
        DatasetPlan(
            "planted",
            500,
            PAPER_BUDGET,
            pixels_per_step=256,
            chunk=250,
            **paper,
            options={**common, "occlusion": {"window": 8, "stride": 4}},
        ),
        DatasetPlan(
            "clutter",
            500,
            PAPER_BUDGET,
            pixels_per_step=256,
            chunk=250,
            runtime="auto",
            **paper,
            options={**common, "occlusion": {"window": 8, "stride": 8}},
        ),
        DatasetPlan(
            "fashion",
            500,
            PAPER_BUDGET,
            pixels_per_step=56,
            chunk=250,
            runtime="auto",
            **paper,
            options={**common, "occlusion": {"window": 4, "stride": 4}},
        ),
        DatasetPlan(
            "photos",
            4,
            PAPER_BUDGET,
            pixels_per_step=224 * 56,
            options=photo,
            chunk=4,
            curve_batch=50,
            runtime="auto",
            **paper,
        ),
    ]


SUITES = {"quick": _suite("quick"), "full": _suite("full"), "paper": _paper_suite()}


def method_options(plan: DatasetPlan, method: str, seed: int) -> dict:
    """One method's options on ``plan``: its own options, the dataset's reference for every method that masks,
    the plan's budget as OISE's steps and RISE's masks, OISE's raw sum (``postprocess=False``, as RISE's raw
    map) and ``seed`` for every seeded method."""
    options = dict(plan.options.get(method, {}))
    if method in REFERENCE_METHODS:
        options.setdefault("reference", plan.masked_value())
    if method == "oise":
        options.setdefault("n_steps", plan.budget)
        # Scored raw, as RISE's expectation map is: the same post-processing (none) for every method, so no
        # method wins by it (budget_report.POSTPROCESSING compares the post-processings side by side).
        options.setdefault("postprocess", False)
    elif method == "rise":
        options.setdefault("n_masks", plan.budget)
    if method in ("oise", "rise", "random", "lime"):
        options.setdefault("seed", seed)
    return options


def plan_runtime(plan: DatasetPlan, model: nn.Module) -> tuple[nn.Module, str]:
    """The model black-box methods and curves use under ``plan.runtime``, and that runtime's name (a model on a
    GPU stays in PyTorch)."""
    if plan.runtime == "torch" or model_device(model, torch.device("cpu")).type != "cpu":
        return model, "torch"
    from saliency_lib.io.runtime import fast_model  # imported here: only the paper suite needs ONNX Runtime

    fast = fast_model(model, runtime=plan.runtime)
    return fast, getattr(fast, "runtime", "torch")
