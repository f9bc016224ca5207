"""The exercises of notebooks 01, 02, 04 and 05 fail every mistake ``docs/instructor.md`` lists, each by name.

Each test runs the notebook's own check cell (its source, read from the notebook) with a learner's function written
the way a learner writes it: the solution with one mistake, not ``saliency_lib.course.mistakes``' own variants, so
the test checks that the check recognises the learner's code. The solution, and the listed "mistakes" that give
the library's answer after all, pass.
"""

from __future__ import annotations

import math
import re
import runpy
from types import SimpleNamespace

import nbformat
import numpy as np
import pytest
import skimage.transform
import torch
import torch.nn.functional as F

from saliency_lib.course import exercises, mistakes, tutorial
from saliency_lib.evaluation import datasets, metrics
from saliency_lib.generative import reconstruct
from saliency_lib.io import models
from saliency_lib.method.core import class_probabilities
from saliency_lib.method.masks import init_grid, update_grid, upsample


def check_cell(notebook: str) -> str:
    cells = nbformat.read(tutorial.NOTEBOOK_DIR / notebook, as_version=4).cells
    [cell] = [c for c in cells if c.cell_type == "code" and "tutorial.check_exercise(" in c.source]
    return cell.source


def run_check(notebook: str, scope: dict, capsys) -> str:
    """Run the notebook's check cell in ``scope`` (the names its earlier cells define); returns what it printed."""
    exec(compile(check_cell(notebook), notebook, "exec"), {"torch": torch, **scope})  # noqa: S102 - our notebook
    return capsys.readouterr().out


def assert_named(notebook: str, scope: dict, expected: tuple[str, str], messages: dict[str, str], capsys) -> None:
    """The check cell fails with one line that matches ``pattern`` and names this mistake (``messages[key]``, or a
    known error's message for ``key == "error"``), and no other."""
    pattern, key = expected
    with pytest.raises(exercises.ExerciseFailed) as failed:
        run_check(notebook, scope, capsys)
    message = str(failed.value)
    assert re.search(pattern, message), message
    assert key == "error" or messages[key] in message, message
    named = [text for text in messages.values() if text in message]
    assert len(named) == (key != "error"), f"the message names {len(named)} known mistakes: {message}"
    assert "Hint" not in message  # a named mistake needs no generic hint
    assert "\n" not in message  # one line


def solution(file: str, name: str):
    return runpy.run_path(str(tutorial.SOLUTIONS / file))[name]


# ---- 01 · my_upsample ---------------------------------------------------------------------------------------------
def learner_upsample(mistake: str | None):
    def my_upsample(grid, size, shift):
        grid_size = grid.shape[-1]
        height, width = size
        rounding = math.floor if mistake == "floor" else math.ceil
        cell_h, cell_w = rounding(height / grid_size), rounding(width / grid_size)
        cells = grid_size if mistake == "s cells" else grid_size + 1
        options = dict(order=1, mode="reflect", anti_aliasing=False)
        if mistake == "mode constant":
            options["mode"] = "constant"
        if mistake == "nearest":
            options["order"] = 0
        if mistake == "skimage defaults":
            options = {}
        big = skimage.transform.resize(grid.double().numpy(), (cells * cell_h, cells * cell_w), **options)
        dy, dx = shift
        if mistake == "swapped":
            return torch.from_numpy(big[dx : dx + height, dy : dy + width]).float()
        if mistake == "numpy float64":
            return big[dy : dy + height, dx : dx + width]
        if mistake == "typo":
            return torch.from_numpy(big[dy : dy + height, dx : dx + widht])  # noqa: F821 - the learner's typo
        return torch.from_numpy(big[dy : dy + height, dx : dx + width]).float()

    return my_upsample


UPSAMPLE = {
    "floor": (r"s = 8, 28 x 28, shift .*: shape \(27, 27\), expected \(28, 28\)\. It matches cells of floor", "floor"),
    "s cells": (r"resize to s · cell pixels per side", "s_cells"),
    "mode constant": (r'mode="constant"', "mode_constant"),
    "nearest": (r"nearest-neighbour resizing \(order=0", "nearest"),
    "swapped": (r"shift \(dy, dx\) = \(3, 1\): .*dy and dx swapped", "swapped_shift"),
}


def upsample_scope(function):
    return {"my_upsample": function, "init_grid": init_grid, "upsample": upsample}


@pytest.mark.parametrize("mistake", UPSAMPLE)
def test_01_every_listed_mistake_is_named(mistake, capsys):
    scope = upsample_scope(learner_upsample(mistake))
    assert_named("01_mask_initialization.ipynb", scope, UPSAMPLE[mistake], mistakes.UPSAMPLE, capsys)


@pytest.mark.parametrize("right", [None, "skimage defaults", "numpy float64"])
def test_01_the_right_upsampling_passes_skimages_defaults_and_a_float64_array_too(right, capsys):
    out = run_check("01_mask_initialization.ipynb", upsample_scope(learner_upsample(right)), capsys)
    assert out.count("Correct: my_upsample") == 5 and "Not yours" not in out


def test_01_an_error_in_the_learners_code_is_one_line_naming_their_line(capsys):
    with pytest.raises(exercises.ExerciseFailed) as failed:
        run_check("01_mask_initialization.ipynb", upsample_scope(learner_upsample("typo")), capsys)
    message = str(failed.value)
    assert message.startswith("my_upsample raised NameError: name 'widht' is not defined (line ")
    assert "of your code: return torch.from_numpy(big[dy : dy + height, dx : dx + widht])" in message


# ---- 02 · my_update_grid ------------------------------------------------------------------------------------------
def learner_update_grid(mistake: str | None):
    def my_update_grid(grid, p, delta_p, step_size, uniform):
        if mistake != "p not per grid":
            p = p.view(-1, 1, 1)
        was_on = grid > 0
        if mistake == "on inverted":
            now_on = torch.where(was_on, uniform > p, uniform >= p).float()
        elif mistake == "rule inverted":
            now_on = torch.where(was_on, uniform >= p, uniform < p).float()
        else:
            now_on = torch.where(was_on, uniform < p, uniform >= p).float()
        change = delta_p if mistake == "signed delta_p" else delta_p.abs()
        rate = step_size * change if mistake == "rate not per grid" else step_size * change.view(-1, 1, 1)
        if mistake == "turned on only":
            return torch.where(~was_on & (now_on > 0), now_on * (1 - rate), now_on)
        return torch.where(now_on > grid, now_on * (1 - rate), now_on)

    return my_update_grid


UPDATE_GRID = {
    # 8 grids first: a p (or rate) that is not per grid broadcasts along the last axis without an error.
    "p not per grid": (r"case 1 of 6 \(8 grids\): .*broadcast along the last axis", "p_not_per_grid"),
    "rate not per grid": (r"case 1 of 6 \(8 grids\): .*broadcast along the last axis", "p_not_per_grid"),
    "on inverted": (r"on-cells kept when uniform > p", "on_inverted"),
    "rule inverted": (r"the rule inverted", "rule_inverted"),
    # case 2's grids are 0 or 1 (fresh from init_grid): the first with rescaled cells is case 3
    "turned on only": (r"case 3 of 6 .*rescaling only the cells that were turned on", "turned_on_only"),
    "signed delta_p": (r"the factor 1 - step_size \* delta_p", "signed_delta_p"),
}


def update_grid_scope(function):
    return {"my_update_grid": function, "init_grid": init_grid, "update_grid": update_grid}


@pytest.mark.parametrize("mistake", UPDATE_GRID)
def test_02_every_listed_mistake_is_named(mistake, capsys):
    scope = update_grid_scope(learner_update_grid(mistake))
    assert_named("02_pixel_weighting.ipynb", scope, UPDATE_GRID[mistake], mistakes.UPDATE_GRID, capsys)


def test_02_a_p_that_cannot_broadcast_is_named_as_well(capsys):
    """With 256 grids, p of shape (B,) against (B, 8, 8) raises: the one line names the cause."""
    probe = torch.ones(1, 2, 2), torch.ones(1), torch.zeros(1), 0.02, torch.zeros(1, 2, 2)
    candidate = tutorial.exercise_or_solution(
        learner_update_grid("p not per grid"), "02_update_rule.py", *probe, known_errors=mistakes.UPDATE_GRID_ERRORS
    )
    grids = init_grid(256, 8, 0.4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(exercises.ExerciseFailed) as failed:
        candidate(grids, torch.rand(256), torch.rand(256), 0.3, torch.rand(256, 8, 8))
    message = str(failed.value)
    assert message.startswith("my_update_grid stopped on a broadcasting error: p and delta_p hold one value per grid")
    assert "(line " in message and "of your code: now_on = torch.where(was_on, uniform < p, uniform >= p)" in message


def test_02_the_right_rule_passes(capsys):
    out = run_check("02_pixel_weighting.ipynb", update_grid_scope(learner_update_grid(None)), capsys)
    assert out.count("Correct: my_update_grid") == 6


# ---- 04 · my_deletion_auc -----------------------------------------------------------------------------------------
def learner_deletion(mistake: str | None):
    def my_deletion_auc(model, image, saliency_map, target, pixels_per_step):
        height, width = saliency_map.shape
        n_pixels = height * width
        if mistake == "least salient first":
            order = torch.argsort(saliency_map.flatten(), stable=True)
        elif mistake == "unstable sort":
            order = torch.from_numpy(np.argsort(-saliency_map.flatten().numpy()))  # numpy's quicksort
        else:
            order = torch.argsort(-saliency_map.flatten(), stable=True)
        reference = 0.0 if mistake == "deleted to 0" else model.spec.reference()
        n_steps = math.ceil(n_pixels / pixels_per_step)
        curve = []
        for step in range(n_steps if mistake == "T points" else n_steps + 1):
            keep = torch.ones(n_pixels)
            keep[order[: step * pixels_per_step]] = 0
            keep = keep.view(1, 1, height, width)
            curve.append(class_probabilities(model, image * keep + reference * (1 - keep))[0, target].item())
        if mistake == "np.trapezoid":
            return float(np.trapezoid(curve))
        return (sum(curve) - curve[0] / 2 - curve[-1] / 2) / n_steps

    return my_deletion_auc


DELETION = {
    "T points": (r"a curve of T points", "t_points"),
    "least salient first": (r"deleting the least salient pixels first", "least_salient_first"),
    "deleted to 0": (r"deleting to 0 \(black\)", "zero_reference"),
    "np.trapezoid": (r"the area without dividing by the number of steps", "not_normalised"),
    "unstable sort": (r"an unstable sort", "unstable_sort"),
}


@pytest.fixture(scope="module")
def canvas():
    """Notebook 04's canvas 3 (its setup cell), and an OISE map of it, with its ties at 0 (fewer steps here)."""
    from saliency_lib import oise
    from saliency_lib.io import data

    items, labels = data.fashion_sample()
    canvases = datasets.make_canvases(items, labels, 8, seed=11)
    model = models.load("clutter-cnn")
    image, target = canvases.images[3:4], [int(canvases.labels[3])]
    saliency_map = oise(model, image, target, n_steps=200, seed=0).maps[0]
    assert (saliency_map == 0).float().mean() > 0.3  # many ties: an unstable sort orders them differently
    return dict(
        clutter_model=model,
        image=image,
        target=target,
        panel=SimpleNamespace(maps={"oise": saliency_map}),
        metrics=metrics,
        class_probabilities=class_probabilities,
    )


@pytest.mark.parametrize("mistake", DELETION)
def test_04_every_listed_mistake_is_named(mistake, canvas, capsys):
    scope = {**canvas, "my_deletion_auc": learner_deletion(mistake)}
    assert_named("04_evaluation.ipynb", scope, DELETION[mistake], mistakes.DELETION, capsys)


def test_04_the_right_auc_passes(canvas, capsys):
    out = run_check("04_evaluation.ipynb", {**canvas, "my_deletion_auc": learner_deletion(None)}, capsys)
    assert "Correct: my_deletion_auc" in out


# ---- 05 · my_context_weights --------------------------------------------------------------------------------------
def learner_context_weights(mistake: str | None):
    def my_context_weights(hole, k=7):
        if mistake != "no channel axis":
            hole = hole.unsqueeze(1)
        if mistake != "bool":
            hole = hole.float()
        options = dict(stride=1, padding=k // 2, count_include_pad=mistake != "count_include_pad=False")
        if mistake == "padding=k":
            options["padding"] = k
        if mistake == "default stride":
            del options["stride"]
        near = F.avg_pool2d(hole, k, **options)
        weights = near if mistake == "hole not zeroed" else (1 - hole) * near
        return weights if mistake == "no channel axis" else weights[:, 0]

    return my_context_weights


CONTEXT_WEIGHTS = {
    "count_include_pad=False": (
        r"holes of section 4: \d+ of \d+ values differ\. It matches count_include_pad=False",
        "count_include_pad",
    ),
    "hole not zeroed": (r"weights inside the hole as well", "hole_not_zeroed"),
    "default stride": (r"^my_context_weights stopped: avg_pool2d's result is not the size of the image", "error"),
    "bool": (
        r"^my_context_weights stopped: avg_pool2d takes a float tensor, not the bool hole .*\(line \d+ of your",
        "error",
    ),
    "padding=k": (r"^my_context_weights stopped: avg_pool2d refused the padding .*\(line \d+ of your", "error"),
}


@pytest.fixture(scope="module")
def holes():
    """Four holes like section 4's: the top 15% of the pixels of a smooth random map, per image."""
    maps = F.avg_pool2d(torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1)), 5, 1, 2)[:, 0]
    return reconstruct.salient_region(maps, 0.15)


@pytest.mark.parametrize("mistake", CONTEXT_WEIGHTS)
def test_05_every_listed_mistake_is_named(mistake, holes, capsys):
    scope = {"my_context_weights": learner_context_weights(mistake), "hole": holes, "reconstruct": reconstruct}
    assert_named("05_reconstruction.ipynb", scope, CONTEXT_WEIGHTS[mistake], mistakes.CONTEXT_WEIGHTS, capsys)


@pytest.mark.parametrize("right", [None, "no channel axis"])
def test_05_the_right_weights_pass_without_the_channel_axis_too(right, holes, capsys):
    scope = {"my_context_weights": learner_context_weights(right), "hole": holes, "reconstruct": reconstruct}
    assert run_check("05_reconstruction.ipynb", scope, capsys).count("Correct: my_context_weights") == 2


# ---- all four -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("tested", "known"),
    [
        (UPSAMPLE, mistakes.UPSAMPLE),
        (UPDATE_GRID, mistakes.UPDATE_GRID),
        (DELETION, mistakes.DELETION),
        (CONTEXT_WEIGHTS, mistakes.CONTEXT_WEIGHTS),
    ],
    ids=["01", "02", "04", "05"],
)
def test_every_known_mistake_of_the_module_is_fed_to_its_check(tested, known):
    assert {key for _, key in tested.values()} - {"error"} == set(known)


@pytest.mark.parametrize(
    ("notebook", "scope", "name"),
    [
        ("01_mask_initialization.ipynb", upsample_scope, "my_upsample"),
        ("02_pixel_weighting.ipynb", update_grid_scope, "my_update_grid"),
    ],
    ids=["01", "02"],
)
def test_an_untouched_stub_is_said_once_however_many_cases_the_cell_checks(notebook, scope, name, capsys):
    def stub(*args, **kwargs):
        return None

    stub.__name__ = name
    out = run_check(notebook, scope(stub), capsys)
    assert out.count("Not yours yet") == 1 and "Correct" not in out, out
    assert out.count("\n") == 1  # one line, for all the cases of the cell
