"""The package's OISE and RISE against references written from the authors' code
(``saliency_research/bench/authors_reference.py``).

A small version of ``saliency_research/bench/authors_crosscheck.py``. Three kinds of check:

* **One step, and one loop, exactly.** The authors' ``upsize_mask`` and their resampling + rescaling step give the
  package's :class:`~saliency_lib.method.masks.Upsampler` and :func:`~saliency_lib.method.masks.update_grid` to float
  rounding
  once the same random numbers are fed to both (the authors draw on-cells first and compare ``rand > 1 - p``; the
  package compares ``uniform < p`` cell by cell, so the numbers are mapped, not reused). Fed the package's own
  random stream, the authors' whole loop gives the package's map (measured: max difference 2e-6 over 150 steps).
* **Whole runs, statistically.** Package and reference maps from independent random streams can only agree in
  distribution, so these tests compare statistics with tolerances: the Spearman correlation of a package map with
  a reference map must be as high as that of two seeds of one implementation ("cross minus within" near 0), and
  deletion AUCs must agree, paired over images.
* **The statistics catch a real deviation.** The reference with ``p`` and ``1 - p`` swapped in the update (a
  broken rule) must fail the same statistics by a wide margin.

Tolerances (ours, measured on the planted model, 6 images x 300 steps, seed pairs (0, 1), (2, 3), (4, 5), (6, 7)):
OISE cross minus within -0.02 to +0.03 with the authors' rule, -0.58 to -0.76 with the swapped rule; deletion
package minus reference -0.01 to +0.01 against -0.61 to -0.64. RISE: cross minus within -0.01 to +0.07, deletion
-0.03 to +0.04. A package whose flip uses 1 - p gives -0.75 and +0.64. A rescaling that grows cells instead of
shrinking them is invisible to the statistics (-0.06, -0.01) and caught by the exact loop test (difference 0.4).
On Fashion-MNIST the statistics need the benchmark's size; here the Fashion-MNIST tests check the references'
conversion to the normalised space and run one tiny part of the benchmark.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))  # conftest

import saliency_lib as S  # noqa: E402
from conftest import PlantedModel  # noqa: E402
from saliency_lib.evaluation import metrics  # noqa: E402
from saliency_lib.io import data  # noqa: E402
from saliency_lib.method import masks as M  # noqa: E402
from saliency_lib.method.core import class_probabilities, resolve_reference  # noqa: E402
from saliency_lib.method.oise_method import RANDOM_CHUNK  # noqa: E402
from saliency_research.bench import authors_crosscheck as C  # noqa: E402
from saliency_research.bench import authors_reference as R  # noqa: E402

SEEDS = (0, 1)
STEPS = 300  # model calls per image in the statistical tests (the benchmark: 2,000 and 5,000)
N_PLANTED = 6
# A gap this large is not seed noise at this size (measured: |cross - within| <= 0.03, the swapped rule -0.58).
AGREEMENT_TOLERANCE = 0.15
DELETION_TOLERANCE = 0.1  # measured: |package - reference| <= 0.014; the swapped rule -0.62
SWAPPED_GAP = 0.3  # the broken rule must fall at least this far below


# ---- one step and one loop, exactly ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(28, 28), (64, 64), (30, 17)])
def test_authors_upsize_mask_is_the_package_upsampler(size):
    """``upsize_mask`` (skimage bilinear resize + crop at ``(x, y)``) = ``Upsampler`` at shift ``(x, y)``."""
    grid_rng = np.random.RandomState(3)
    upsampler = M.Upsampler(8, size)
    for _ in range(5):
        grid = (grid_rng.rand(8, 8) > 0.5).astype("float32") * np.where(grid_rng.rand(8, 8) > 0.7, 0.983, 1.0)
        state = np.random.RandomState(int(grid_rng.randint(1 << 30)))
        shift_rng = np.random.RandomState()
        shift_rng.set_state(state.get_state())
        ours = R.upsize_mask(state, 8, grid.astype("float32"), size)[:, :, 0]
        x, y = shift_rng.randint(0, upsampler.cell[0]), shift_rng.randint(0, upsampler.cell[1])
        package = upsampler(torch.from_numpy(grid.astype("float32"))[None], torch.tensor([[x, y]]))[0].numpy()
        np.testing.assert_allclose(package, ours, atol=1e-6)


def test_authors_update_step_is_the_package_update_grid():
    """The authors' resampling and both regularizer branches = ``masks.update_grid`` fed the same randomness."""
    rng = np.random.RandomState(7)
    for trial in range(200):
        grid = (rng.rand(8, 8) > 0.5).astype("float32")
        grid[rng.rand(8, 8) > 0.8] *= np.float32(1 - 0.02 * rng.rand())  # earlier rescaled cells (value < 1)
        p = float(rng.rand()) if trial % 10 else float(trial % 20 == 0)  # include p = 0 and p = 1
        p_previous = float(rng.rand())
        state = rng.get_state()
        mask = grid.copy()  # the reference step (explain_and_update's body after the model call), on a copy
        delta_pred = p - p_previous
        R.update_step(mask, p, delta_pred, rng)
        # The same random numbers for the package: on-cells drew u_on (stay on if u_on > 1 - p, i.e. 1 - u_on < p),
        # off-cells u_off (turn on if u_off > p, i.e. not u_off < p).
        replay = np.random.RandomState()
        replay.set_state(state)
        on_r, on_c = np.where(grid > 0)
        off_r, off_c = np.where(grid == 0)
        uniform = np.empty((8, 8))
        uniform[on_r, on_c] = 1 - replay.rand(len(on_r))
        uniform[off_r, off_c] = replay.rand(len(off_r))
        package = M.update_grid(
            torch.from_numpy(grid)[None],
            torch.tensor([p]),
            torch.tensor([delta_pred]),
            uniform=torch.from_numpy(uniform).float()[None],
        )[0].numpy()
        np.testing.assert_allclose(package, mask, atol=1e-6, err_msg=f"trial {trial}, p={p}")


def test_the_authors_loop_calls_the_model_once_per_step():
    """N steps = N model calls of one image each, and the sum holds N soft (bilinear) masks in [0, 1]."""
    calls = []

    def prob(batch: np.ndarray) -> np.ndarray:  # a constant model: p = 0.8 at every step
        calls.append(len(batch))
        return np.full(len(batch), 0.8)

    total = R.explain_and_update(prob, np.zeros((1, 1, 28, 28), dtype=np.float32), 25, np.random.RandomState(0))
    assert calls == [1] * 25
    assert total.shape == (28, 28) and 0 <= total.min() and total.max() <= 25
    assert len(np.unique(np.round(total, 4))) > 2  # soft edges, not a sum of binary masks
    with pytest.raises(ValueError, match="rule"):
        R.explain_and_update(prob, np.zeros((1, 1, 28, 28), dtype=np.float32), 1, np.random.RandomState(0), rule="x")


class _PackageStream:
    """Serves the reference's random calls from the package's own random stream, so both loops see the same
    randomness (one image). It replays ``oise``'s drawing order: ``init_grid`` (``rand < 0.3``), the first
    ``random_shifts``, then per chunk of ``RANDOM_CHUNK`` steps the uniforms and the row and column shifts. If
    the package changes that order, this class (not the method) needs the change.
    """

    def __init__(self, seed: int, n_steps: int, grid_size: int = 8, cell: tuple[int, int] = (4, 4)) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.init = torch.rand(1, grid_size, grid_size, generator=generator)[0].double().numpy()
        first_dy = int(torch.randint(0, cell[0], (1,), generator=generator))  # random_shifts: all dy, then all dx
        shifts = [(first_dy, int(torch.randint(0, cell[1], (1,), generator=generator)))]
        self.uniforms = []
        for start in range(0, n_steps, RANDOM_CHUNK):
            uniforms = torch.rand(RANDOM_CHUNK, 1, grid_size, grid_size, generator=generator)
            dys = torch.randint(0, cell[0], (RANDOM_CHUNK, 1), generator=generator)
            dxs = torch.randint(0, cell[1], (RANDOM_CHUNK, 1), generator=generator)
            for k in range(min(RANDOM_CHUNK, n_steps - start)):
                self.uniforms.append(uniforms[k, 0].double().numpy())
                shifts.append((int(dys[k, 0]), int(dxs[k, 0])))
        self._uniforms = iter(self.uniforms)
        self._offsets = iter([v for pair in shifts for v in pair])  # upsize_mask draws x (rows), then y (columns)

    def rand(self, *shape: int) -> np.ndarray:
        """``gen_initial_mask``'s ``rand(s, s) > 0.7``: on exactly where the package's ``uniform < 0.3``."""
        assert shape == self.init.shape, shape
        return 1 - self.init

    def randint(self, low: int, high: int) -> int:
        return next(self._offsets)

    @staticmethod
    def flip(mask: np.ndarray, p: float, rng: _PackageStream) -> None:
        """A resampling rule that runs the authors' ``_flip_update`` on the package's uniforms for this step:
        on-cells get ``1 - u`` (``1 - u > 1 - p`` iff ``u < p``), off-cells ``u`` (``u > p``), in ``np.where``
        order."""
        uniform = next(rng._uniforms)
        draws = iter([1 - uniform[mask > 0], uniform[mask == 0]])
        R._flip_update(mask, p, SimpleNamespace(rand=lambda n: next(draws)))


def test_package_oise_follows_the_authors_loop_step_by_step(monkeypatch, planted_six):
    """With the same randomness, the package's loop and the authors' loop visit the same masks: the maps agree to
    float rounding over 150 steps (three random chunks). Catches what the statistics cannot see at test size,
    such as a rescaling that grows cells instead of shrinking them."""
    model, images = planted_six
    monkeypatch.setitem(R.RESAMPLING_RULES, "package-stream", _PackageStream.flip)
    prob = R.TargetProbability(model, (0.0,), (1.0,))
    for index, seed in ((0, 0), (3, 11)):
        steps = 150
        package = S.oise(model, images[index : index + 1], 0, n_steps=steps, seed=seed, reference=0.0).maps[0].numpy()
        stream = _PackageStream(seed, steps)
        raw = R.explain_and_update(
            lambda batch: prob(batch, 0), images[index : index + 1].numpy(), steps, stream, rule="package-stream"
        )
        assert next(stream._uniforms, None) is None  # every step used exactly one step's uniforms
        np.testing.assert_allclose(package, R.process_sal(raw), atol=1e-4)


# ---- whole runs, statistically --------------------------------------------------------------------------------


def _planted_maps(planted_model, images, rule: str = "authors", seeds: tuple[int, int] = SEEDS):
    """(package OISE maps per seed, reference OISE maps per seed, package RISE, reference RISE), each ``(B, H, W)``.

    RISE draws one mask set per image on both sides (as ``authors_crosscheck.compute_maps``): with one set for all
    images, as RISE's code does, six near-identical planted images would give six copies of one statistic.
    """
    targets = torch.zeros(len(images), dtype=torch.long)
    prob = R.TargetProbability(planted_model, (0.0,), (1.0,))  # no normalisation: pixel space, reference 0
    xs = images.numpy()
    pkg, ref, pkg_rise, ref_rise = [], [], [], []
    for seed in seeds:
        pkg.append(S.oise(planted_model, images, targets, n_steps=STEPS, seed=seed, reference=0.0).maps.numpy())
        rngs = [np.random.RandomState([seed, i]) for i in range(len(images))]
        raw = R.oise_reference(prob, xs, targets.numpy(), STEPS, rngs, reference=0.0, rule=rule)
        ref.append(np.stack([R.process_sal(s) for s in raw]))
        if rule != "authors":
            continue
        pkg_rise.append(
            np.concatenate(
                [
                    S.rise(
                        planted_model,
                        images[i : i + 1],
                        0,
                        n_masks=STEPS,
                        seed=C.package_rise_seed(seed, i),
                        reference=0.0,
                    ).maps.numpy()
                    for i in range(len(images))
                ]
            )
        )
        masks = [
            R.generate_masks(np.random.RandomState([seed, i]), STEPS, 8, 0.5, (28, 28)) for i in range(len(images))
        ]
        ref_rise.append(
            np.concatenate(
                [R.rise_reference(prob, xs[i : i + 1], [0], masks[i], 0.5, reference=0.0) for i in range(len(images))]
            )
        )
    return tuple(pkg), tuple(ref), tuple(pkg_rise), tuple(ref_rise)


def _deletion(model, images, maps):
    targets = torch.zeros(len(images), dtype=torch.long)
    return tuple(
        metrics.deletion(model, images, torch.from_numpy(m.astype(np.float32)), targets, reference=0.0).auc.numpy()
        for m in maps
    )


@pytest.fixture(scope="module")
def planted_six():
    """Six planted-evidence images (class 0 lives in rows and columns 4-13) and the planted model."""
    generator = torch.Generator().manual_seed(0)
    images = 0.3 * torch.rand(N_PLANTED, 1, 28, 28, generator=generator)
    images[:, :, 4:14, 4:14] += 0.6
    return PlantedModel(), images.clamp(0, 1)


@pytest.fixture(scope="module")
def planted_runs(planted_six):
    model, images = planted_six
    return {rule: _planted_maps(model, images, rule) for rule in ("authors", "swapped")}


def test_package_oise_agrees_with_the_authors_loop(planted_six, planted_runs):
    model, images = planted_six
    pkg, ref, _, _ = planted_runs["authors"]
    stats = C.agreement(pkg, ref)
    assert stats["within_package"]["mean"] > 0.3  # the maps carry signal at this size, or the test says nothing
    assert abs(stats["cross_minus_within"]["mean"]) < AGREEMENT_TOLERANCE, stats["cross_minus_within"]
    deletion = C.score_difference(_deletion(model, images, pkg), _deletion(model, images, ref))
    assert abs(deletion["package_minus_reference"]["mean"]) < DELETION_TOLERANCE, deletion["package_minus_reference"]


def test_package_rise_agrees_with_rise_code(planted_six, planted_runs):
    model, images = planted_six
    _, _, pkg, ref = planted_runs["authors"]
    stats = C.agreement(pkg, ref)
    assert stats["within_package"]["mean"] > 0.15  # measured 0.25-0.30 at 300 masks
    assert abs(stats["cross_minus_within"]["mean"]) < AGREEMENT_TOLERANCE, stats["cross_minus_within"]
    deletion = C.score_difference(_deletion(model, images, pkg), _deletion(model, images, ref))
    assert abs(deletion["package_minus_reference"]["mean"]) < DELETION_TOLERANCE, deletion["package_minus_reference"]


def test_the_statistics_catch_a_swapped_update_rule(planted_six, planted_runs):
    """The same statistics, against a reference whose update keeps a mask with probability 1 - p (broken)."""
    model, images = planted_six
    pkg, _, _, _ = planted_runs["authors"]
    _, broken, _, _ = planted_runs["swapped"]
    stats = C.agreement(pkg, broken)
    assert stats["cross_minus_within"]["mean"] < -AGREEMENT_TOLERANCE - SWAPPED_GAP, stats["cross_minus_within"]
    assert stats["cross_minus_within"]["ci95"][1] < -AGREEMENT_TOLERANCE  # the whole CI, not just the mean
    deletion = C.score_difference(_deletion(model, images, pkg), _deletion(model, images, broken))
    assert deletion["package_minus_reference"]["mean"] < -DELETION_TOLERANCE - SWAPPED_GAP


def test_fashion_reference_masks_in_the_normalised_space_like_the_package():
    """The benchmark's two references, put in the normalised space as the authors do (``ref + (x - ref) * m``),
    give the probabilities the package gets in pixel space: black (pixel 0 = -0.810 normalised) and the mean (0)."""
    model = C.load_model()
    spec = model.spec
    images = data.fashion_sample()[0][torch.from_numpy(C.select_images(4))]
    targets = model(images).argmax(dim=1)
    mask = M.upsample(M.init_grid(4, 8, 0.5, generator=torch.Generator().manual_seed(0)), (28, 28), generator=None)
    prob = R.TargetProbability(model, spec.mean, spec.std)
    normed = R.normalise(images.numpy(), spec.mean, spec.std)
    for name in C.REFERENCES:
        package_ref, normed_ref = C.reference_values(name, spec)
        pixel_ref = resolve_reference(package_ref, model, images)
        package = class_probabilities(model, M.apply_mask(images, mask, pixel_ref)).gather(1, targets.view(-1, 1))[:, 0]
        masked = normed_ref + (normed - normed_ref) * mask.numpy()[:, None]
        reference = np.array([prob(masked[b : b + 1], int(targets[b]))[0] for b in range(4)])
        np.testing.assert_allclose(reference, package.numpy(), atol=1e-4, err_msg=name)
    assert C.reference_values("black", spec)[1] == pytest.approx(-0.286 / 0.353)


def test_fashion_crosscheck_part_runs(tmp_path):
    """One tiny part of the benchmark (2 images, 20 calls, both seeds) through ``run_part`` and ``merge``: the files,
    the tables and every score in [0, 1]."""
    model = C.load_model()
    for seed in SEEDS:
        C.run_part(0, 2, seed, 20, "black", out_dir=tmp_path / "parts", model=model)
    payload = C.merge(tmp_path / "parts", tmp_path)
    (table,) = payload["tables"]
    assert (table["reference"], table["budget"], table["n"]) == ("black", 20, 2)
    for method in C.COMPARISONS:
        for metric in ("deletion", "insertion"):
            assert 0 <= table[method][metric]["package"]["mean"] <= 1
        assert -1 <= table[method]["spearman"]["cross"]["mean"] <= 1
    assert "| OISE |" in (tmp_path / "authors_crosscheck.md").read_text()
    record = json.loads((tmp_path / "parts" / "black_b20_s0_i0-2.json").read_text())
    assert set(C.MAP_KINDS) <= set(record["scores"]) and record["images"] == [0, 2]
