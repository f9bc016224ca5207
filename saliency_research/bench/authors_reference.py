"""Reference implementations written from the authors' own code, to cross-check the package. Not used by the library.

Everything here is a step-for-step transcription (batch 1, numpy, the authors' own resampling branches and
accumulation order) of public code, kept apart from ``saliency_lib`` so that the package can be compared against
something written independently of it (``saliency_research/bench/authors_crosscheck.py``,
``tests/test_authors_crosscheck.py``):

* OISE from ``github.com/shailja-thakur/explainability-project`` (commit 068d679), file ``explainer.py`` and the
  same cells of ``explainer-prototype.ipynb``: ``gen_initial_mask``, ``upsize_mask``, ``explain_and_update`` and
  the two ``process_sal`` helpers (the notebook subtracts 1.0 x mean, ``explainer.py`` 0.96 x mean and saves the
  raw sum).
* RISE from ``github.com/eclique/RISE`` (commit d91ea00): ``explanations.py`` (``RISE.generate_masks``,
  ``RISE.forward``) and ``evaluation.py`` (``gkern``, ``auc``, ``CausalMetric.single_run``).

What we changed, and why (each a line in the code, marked "ours"):

* ``np.random`` is replaced by a ``np.random.RandomState`` passed in, so runs are seedable; the calls (``rand``,
  ``randint``) and their order are the authors'.
* The model is reached through :class:`TargetProbability`, a small adapter from a numpy batch in the model's
  normalised input space ``(B, C, H, W)`` to the target-class probability ``(B,)`` (the authors call Keras'
  ``model.predict`` on NHWC input and index ``pred[:, class_idx]``; RISE indexes its softmax output).
* The masked-pixel value is a parameter ``reference`` in the normalised space: ``masked = ref + (x - ref) * mask``.
  ``reference=0`` is exactly the authors' ``mask_ * inp`` (0 after normalisation = the dataset mean).
* The running sum starts at zeros; the authors allocate it with ``np.empty`` (uninitialised memory) and restart
  the whole explanation when its mean after the first step is negative, above 5 or NaN, which catches most of the
  garbage that ``np.empty`` can return. With zeros that restart never triggers, so it is left out.
* Sizes come from the image instead of the hard-coded 224; the float ``cell_size`` is cast to int for
  ``randint`` and ``resize`` (new numpy and skimage refuse floats there).

None of this code is tuned for speed: batch 1 and a ``skimage`` resize per mask, as in the originals.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from skimage.transform import resize

__all__ = [
    "TargetProbability",
    "normalise",
    "gen_initial_mask",
    "upsize_mask",
    "update_step",
    "explain_and_update",
    "process_sal",
    "oise_reference",
    "generate_masks",
    "rise_reference",
    "gkern",
    "auc",
    "causal_metric_reference",
]

# The two post-processing helpers the authors wrote: explainer-prototype.ipynb's process_sal (1.0 x mean) and
# explainer.py's process_sal (0.96 x mean).
NOTEBOOK_MEAN_FRACTION = 1.0
EXPLAINER_PY_MEAN_FRACTION = 0.96


class TargetProbability:
    """The adapter: a numpy batch in the model's normalised input space -> the target-class probability.

    Args:
        model: a :mod:`saliency_lib.io.models` classifier (takes ``(B, C, H, W)`` in [0, 1], returns logits).
        mean, std: the model's per-channel normalisation (``model.spec.mean``, ``model.spec.std``).

    ``adapter(batch, target)``: ``batch`` float ``(B, C, H, W)`` normalised, ``target`` an int; returns float64
    ``(B,)``. ``adapter.calls`` counts the images evaluated.
    """

    def __init__(self, model: Callable, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        from saliency_lib.method.core import call_model, to_probabilities  # the package's fast, unchecked model call

        self._call, self._soft = call_model, to_probabilities
        self.model = model
        self.mean = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
        self.std = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
        self.calls = 0

    def __call__(self, batch: np.ndarray, target: int) -> np.ndarray:
        pixels = np.ascontiguousarray(batch * self.std + self.mean, dtype=np.float32)  # the model normalises itself
        with torch.inference_mode():
            probs = self._soft(self._call(self.model, torch.from_numpy(pixels)), "logits")
        self.calls += len(batch)
        return probs[:, int(target)].double().numpy()


def normalise(images: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """``(B, C, H, W)`` images in [0, 1] -> the model's normalised space (the authors' ``preprocess_input``)."""
    mean_a = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    std_a = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
    return ((images - mean_a) / std_a).astype(np.float32)


# ---- OISE: explainability-project/explainer.py ------------------------------------------------------------------


def gen_initial_mask(rng: np.random.RandomState, s: int, p1: float) -> np.ndarray:
    """``gen_initial_mask``: float32 ``(s, s)``, a cell is on where ``rand > p1`` (the authors pass 0.7: 30% on)."""
    grid = rng.rand(s, s) > p1
    return grid.astype("float32")


def upsize_mask(rng: np.random.RandomState, s: int, mask: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """``upsize_mask``: bilinear resize to ``(s + 1) * cell`` and a random ``H x W`` crop. ``(H, W, 1)``.

    ``cell = ceil(input_size / s)`` per axis; the row offset ``x`` and column offset ``y`` are drawn in that order
    from ``[0, cell)``, a fresh pair at every call (so at every step).
    """
    cell_size = np.ceil(np.array(input_size) / s)
    up_size = (s + 1) * cell_size
    masks = np.empty(input_size)
    # Random shifts (ours: int() because numpy's randint no longer takes a float bound)
    x = rng.randint(0, int(cell_size[0]))
    y = rng.randint(0, int(cell_size[1]))
    # Linear upsampling and cropping
    masks[:, :] = resize(mask, tuple(int(u) for u in up_size), order=1, mode="reflect", anti_aliasing=False)[
        x : x + input_size[0], y : y + input_size[1]
    ]
    return masks.reshape(*input_size, 1)


def _flip_update(mask: np.ndarray, p: float, rng: np.random.RandomState) -> None:
    """The authors' resampling, in place: on-cells stay on with probability p, off-cells turn on with 1 - p."""
    obs_r_prev, obs_c_prev = np.where(mask > 0.0)
    masked_r_prev, masked_c_prev = np.where(mask == 0.0)
    mask[obs_r_prev, obs_c_prev] = rng.rand(len(obs_r_prev)) > (1 - p)
    mask[masked_r_prev, masked_c_prev] = rng.rand(len(masked_r_prev)) > p


def _swapped_update(mask: np.ndarray, p: float, rng: np.random.RandomState) -> None:
    """A deliberately broken rule for the tests: ``p`` and ``1 - p`` swapped (keep a losing mask, invert a good one)."""
    _flip_update(mask, 1.0 - p, rng)


RESAMPLING_RULES: dict[str, Callable[[np.ndarray, float, np.random.RandomState], None]] = {
    "authors": _flip_update,
    "swapped": _swapped_update,  # broken on purpose (tests and the demonstration in authors_crosscheck.py)
}


def update_step(
    mask: np.ndarray,
    pred_curr: float,
    delta_pred: float,
    rng: np.random.RandomState,
    *,
    learning_rate: float = 0.02,
    rule: str = "authors",
) -> None:
    """One update of ``explain_and_update`` after the model call, in place on the grid ``mask`` ``(s, s)``.

    The authors' resampling (:data:`RESAMPLING_RULES`), ``delta_mask = mask - mask_prev`` on the values, then their
    two regularizer branches as written (both shrink ``D > 0`` cells by ``lr * |delta_pred|`` and grow ``D < 0``
    cells, which are 0, by the same factor).
    """
    mask_prev = np.copy(mask)
    # ith iteration input sample selection and mask update
    RESAMPLING_RULES[rule](mask, pred_curr, rng)
    delta_mask = np.subtract(mask, mask_prev)
    # regularizer
    if delta_pred < 0:
        r, c = np.where(delta_mask < 0)
        mask[r, c] = mask[r, c] - learning_rate * delta_pred * mask[r, c]
        r, c = np.where(delta_mask > 0)
        mask[r, c] = mask[r, c] + learning_rate * delta_pred * mask[r, c]
    if delta_pred >= 0:
        r, c = np.where(delta_mask < 0)
        mask[r, c] = mask[r, c] + learning_rate * delta_pred * mask[r, c]
        r, c = np.where(delta_mask > 0)
        mask[r, c] = mask[r, c] - learning_rate * delta_pred * mask[r, c]


def explain_and_update(
    prob: Callable[[np.ndarray], np.ndarray],
    inp: np.ndarray,
    N: int,
    rng: np.random.RandomState,
    *,
    reference: float | np.ndarray = 0.0,
    learning_rate: float = 0.02,
    s: int = 8,
    p1: float = 0.7,
    rule: str = "authors",
) -> np.ndarray:
    """``explain_and_update``: the authors' loop for one image; returns the raw sum ``m`` ``(H, W)`` (float64).

    Args:
        prob: ``prob(batch)`` -> ``(B,)`` target probability of a normalised ``(B, C, H, W)`` batch (one image
            per call here: the authors' batch is 1).
        inp: the normalised image ``(1, C, H, W)`` (the authors': ``(1, H, W, C)``, Keras' layout).
        N: steps = model calls.
        rng: the random source (the authors: ``np.random``).
        reference: masked-pixel value in the normalised space (ours; 0 = the authors' ``mask_ * inp``).
        learning_rate: ``config['learning_rate']`` (0.02).
        s, p1: grid size 8 and ``gen_initial_mask``'s threshold 0.7 (cells on with probability 0.3).
        rule: ``"authors"``, or ``"swapped"`` (p and 1 - p exchanged: a broken rule the tests must catch).
    """
    if rule not in RESAMPLING_RULES:
        raise ValueError(f"rule must be one of {tuple(RESAMPLING_RULES)}, got {rule!r}")
    height, width = inp.shape[2], inp.shape[3]
    pred_prev = 0.0
    m = np.zeros((height, width))  # ours: zeros; the authors' np.empty is uninitialised memory
    mask = gen_initial_mask(rng, s, p1)
    mask_ = upsize_mask(rng, s, mask, (height, width))
    for _ in range(N):
        # masked_inp = mask_ * inp, in the normalised space; (H, W, 1) -> (1, 1, H, W) for our NCHW model
        masked = reference + (inp - reference) * mask_[None, :, :, 0][:, None]
        pred_curr = float(prob(masked)[0])
        delta_pred = pred_curr - pred_prev
        update_step(mask, pred_curr, delta_pred, rng, learning_rate=learning_rate, rule=rule)
        new_mask_ = upsize_mask(rng, s, mask, (height, width))
        mask_ = new_mask_
        m += new_mask_[:, :, 0]  # the new mask, unweighted: evaluated at the next step (the last one never)
        pred_prev = pred_curr
    return m


def process_sal(sal_oise: np.ndarray, mean_fraction: float = NOTEBOOK_MEAN_FRACTION) -> np.ndarray:
    """``process_sal``: ``max(S - f * mean(S), 0) / max``; f = 1.0 (the notebook) or 0.96 (``explainer.py``).

    The authors divide by the maximum unguarded; a flat map gives zeros here (ours, as the package).
    """
    sal = sal_oise - mean_fraction * sal_oise.mean()
    sal = np.maximum(sal, 0)
    peak = sal.max()
    return sal / peak if peak > 0 else np.zeros_like(sal)


def oise_reference(
    prob_fn: TargetProbability,
    images: np.ndarray,
    targets: np.ndarray,
    n_steps: int,
    seeds: list[np.random.RandomState],
    *,
    reference: float = 0.0,
    rule: str = "authors",
) -> np.ndarray:
    """The authors' loop over a batch, one image at a time. Raw sums ``(B, H, W)`` float64 (post-process apart).

    Args:
        images: normalised ``(B, C, H, W)``; targets ``(B,)`` ints; seeds: one ``RandomState`` per image.
    """
    sums = []
    for image, target, rng in zip(images, targets, seeds):
        sums.append(
            explain_and_update(
                lambda batch, _t=int(target): prob_fn(batch, _t),
                image[None],
                n_steps,
                rng,
                reference=reference,
                rule=rule,
            )
        )
    return np.stack(sums)


# ---- RISE: eclique/RISE explanations.py ------------------------------------------------------------------------


def generate_masks(rng: np.random.RandomState, N: int, s: int, p1: float, input_size: tuple[int, int]) -> np.ndarray:
    """``RISE.generate_masks``: ``N`` grids (``rand < p1``) drawn at once, then per mask a shift and a resize.

    Returns float32 ``(N, 1, H, W)`` (RISE keeps them as a float tensor on the GPU).
    """
    cell_size = np.ceil(np.array(input_size) / s)
    up_size = (s + 1) * cell_size
    grid = rng.rand(N, s, s) < p1
    grid = grid.astype("float32")
    masks = np.empty((N, *input_size))
    for i in range(N):
        # Random shifts (ours: int() for numpy's randint)
        x = rng.randint(0, int(cell_size[0]))
        y = rng.randint(0, int(cell_size[1]))
        # Linear upsampling and cropping
        masks[i, :, :] = resize(grid[i], tuple(int(u) for u in up_size), order=1, mode="reflect", anti_aliasing=False)[
            x : x + input_size[0], y : y + input_size[1]
        ]
    return masks.reshape(-1, 1, *input_size).astype(np.float32)


def rise_reference(
    prob_fn: TargetProbability,
    images: np.ndarray,
    targets: np.ndarray,
    masks: np.ndarray,
    p1: float,
    *,
    reference: float = 0.0,
    gpu_batch: int = 100,
) -> np.ndarray:
    """``RISE.forward`` for the target class of each image: ``sum_i p_i * m_i / N / p1``. ``(B, H, W)`` float64.

    Args:
        images: normalised ``(B, C, H, W)``; targets ``(B,)``; masks ``(N, 1, H, W)`` from :func:`generate_masks`
            (one set for all images, as RISE's code does); reference: masked value in the normalised space (ours;
            RISE's ``torch.mul(masks, x)`` is 0); gpu_batch: masked images per model call (RISE's default 100).
    """
    n_masks, _, height, width = masks.shape
    out = []
    for image, target in zip(images, targets):
        stack = reference + (image[None] - reference) * masks  # torch.mul(self.masks, x.data), (N, C, H, W)
        p = np.concatenate(
            [prob_fn(stack[i : min(i + gpu_batch, n_masks)], int(target)) for i in range(0, n_masks, gpu_batch)]
        )
        sal = p @ masks.reshape(n_masks, height * width).astype(np.float64)  # torch.matmul(p.T, masks.view(N, HW))
        out.append(sal.reshape(height, width) / n_masks / p1)
    return np.stack(out)


# ---- RISE: eclique/RISE evaluation.py --------------------------------------------------------------------------


def gkern(klen: int, nsig: float, channels: int) -> torch.Tensor:
    """``gkern``: a Gaussian made by ``gaussian_filter`` of a centred delta (so tails beyond ``klen`` are mirrored
    back in), one kernel per channel. ``(C, C, klen, klen)`` float32 (RISE hard-codes C = 3)."""
    from scipy.ndimage import gaussian_filter

    inp = np.zeros((klen, klen))
    inp[klen // 2, klen // 2] = 1
    k = gaussian_filter(inp, nsig)
    kern = np.zeros((channels, channels, klen, klen))
    for c in range(channels):
        kern[c, c] = k
    return torch.from_numpy(kern.astype("float32"))


def auc(arr: np.ndarray) -> float:
    """``auc``: normalised trapezoid area of a curve ``(n + 1,)``."""
    return float((arr.sum() - arr[0] / 2 - arr[-1] / 2) / (arr.shape[0] - 1))


def causal_metric_reference(
    prob_fn: TargetProbability,
    image: np.ndarray,
    explanation: np.ndarray,
    target: int,
    mode: str,
    step: int,
    *,
    reference: float = 0.0,
    klen: int = 11,
    ksig: float = 5.0,
) -> float:
    """``CausalMetric.single_run`` + ``auc`` for one normalised image ``(C, H, W)`` and map ``(H, W)``.

    Deletion's substrate is ``torch.zeros_like`` (here ``reference``, ours); insertion's is the notebook's
    ``conv2d(x, gkern(11, 5), padding=klen // 2)`` in the normalised space (zero padding = the dataset mean).
    Pixels are ordered by ``np.flip(np.argsort(...))``: ties go last pixel first (the package: first pixel first).
    The target is given (RISE takes the clean image's top-1, which is what we pass).
    """
    channels, height, width = image.shape
    hw = height * width
    img = torch.from_numpy(np.ascontiguousarray(image[None], dtype=np.float32))
    if mode == "del":
        start, finish = img.clone(), torch.full_like(img, float(reference))
    elif mode == "ins":
        kern = gkern(klen, ksig, channels)
        start, finish = torch.nn.functional.conv2d(img, kern, padding=klen // 2), img.clone()
    else:
        raise ValueError(f"mode must be 'del' or 'ins', got {mode!r}")
    n_steps = (hw + step - 1) // step
    scores = np.empty(n_steps + 1)
    salient_order = np.flip(np.argsort(explanation.reshape(-1, hw), axis=1), axis=-1)
    start_np, finish_np = start.numpy().reshape(1, channels, hw), finish.numpy().reshape(1, channels, hw)
    for i in range(n_steps + 1):
        scores[i] = prob_fn(start_np.reshape(1, channels, height, width), target)[0]
        if i < n_steps:
            coords = salient_order[:, step * i : step * (i + 1)]
            start_np[0, :, coords] = finish_np[0, :, coords]
    return auc(scores)
