"""Notebook 03's exercise check: exact, it passes the solution, and it names every mistake a learner makes.

Each wrong loop below is written the way a learner writes it (from the solution, with one mistake), not with
``loop_exercise.oise_loop``'s switches, so the test checks that the check recognises the learner's code.
"""

from __future__ import annotations

import json
import re
import runpy

import pytest
import torch

from saliency_lib.course import loop_exercise, tutorial
from saliency_lib.io import data, models
from saliency_lib.method.core import class_probabilities
from saliency_lib.method.masks import (
    Upsampler,
    apply_mask,
    flip_cells,
    init_grid,
    postprocess,
    random_shifts,
    update_grid,
    upsample,
)

NOTEBOOK = tutorial.NOTEBOOK_DIR / "03_optimization_loop.ipynb"
ATOL = 1e-5  # the check cell's tolerance (asserted below)


def check_cell() -> str:
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    return next("".join(c["source"]) for c in cells if "tutorial.check_exercise(" in "".join(c["source"]))


@pytest.fixture(scope="module")
def task():
    """The check cell's task: notebook 03's model and image (its setup cell), its steps, seed and reference."""
    source = check_cell()
    steps, seed = (int(n) for n in re.search(r"n_steps=(\d+), seed=(\d+), reference=black", source).groups())
    assert "atol=1e-5," in source and f'"my_oise, {steps} steps, seed {seed}"' in source
    model = models.load("fashion-cnn")
    images, labels = data.fashion_sample(n_per_class=1)
    image = images[labels == data.FASHION_CLASSES.index("Ankle boot")][:1]
    target = int(class_probabilities(model, image).argmax())
    assert target == data.FASHION_CLASSES.index("Ankle boot")
    return dict(model=model, image=image, target=target, n_steps=steps, seed=seed, reference=0.0)


@pytest.fixture(scope="module")
def known(task):
    return loop_exercise.wrong_loops(**task)


def check(my_oise, task, known):
    """What the notebook's check cell does with the learner's ``my_oise``."""
    args = task["model"], task["image"], task["target"]
    candidate = tutorial.exercise_or_solution(my_oise, "03_loop.py", *args, 2, 0)
    mine = loop_exercise.run_learner(candidate, **task)
    tutorial.check_exercise(
        f"my_oise, {task['n_steps']} steps, seed {task['seed']}",
        mine,
        loop_exercise.oise_loop(**task),
        atol=ATOL,
        known_mistakes=known,
        hint="the hint",
    )


def learner_loop(mistake: str | None):
    """The solution's ``my_oise`` as a learner writes it, with one mistake (``None``: none)."""

    def my_oise(model, image, target, n_steps, seed, reference=0.0, grid_size=8, p_init=0.3, step_size=0.02):
        if mistake == "stub":
            return None
        if mistake == "global random":
            torch.manual_seed(seed)
        generator = (
            None if mistake == "global random" else torch.Generator().manual_seed(0 if mistake == "seed 0" else seed)
        )

        def new():  # the generator of one call
            return torch.Generator().manual_seed(seed) if mistake == "generator every call" else generator

        size = tuple(image.shape[-2:])
        upsampler = Upsampler(grid_size, size)
        zero = torch.zeros(1, 2, dtype=torch.long)
        grid = init_grid(1, grid_size, p_init, generator=new())
        shift = zero if mistake == "zero shift" else random_shifts(1, upsampler.cell, generator=new())
        mask = upsampler(grid, shift)
        p_previous = torch.zeros(1)
        total = torch.zeros(1, *size)
        if mistake == "initial mask too":
            total += mask
        for _ in range(n_steps):
            if mistake == "generator every step":
                generator = torch.Generator().manual_seed(seed)
            masked = apply_mask(image, mask, reference)
            if mistake == "logits":
                with torch.no_grad():
                    p = model(masked)[:, target]
            else:
                p = class_probabilities(model, masked)[:, target]
            if mistake == "evaluated mask":
                total += mask
            if mistake == "rise weights, evaluated mask":
                total += p * mask
            if mistake == "no rescaling":
                uniform = torch.rand(grid.shape, generator=generator)
                grid = flip_cells(grid > 0, p, uniform).float()
            else:
                grid = update_grid(grid, p, p - p_previous, step_size=step_size, generator=new())
            if mistake == "fixed shift":
                mask = upsample(grid, size, shifts=shift)
            elif mistake == "zero shift":
                mask = upsampler(grid, zero)
            elif mistake != "no upsample":
                mask = upsample(grid, size, generator=new())
            if mistake == "rise weights":
                total += p * mask
            elif mistake not in ("evaluated mask", "rise weights, evaluated mask"):
                total += mask
            if mistake != "p_previous never updated":
                p_previous = p
        return total[0] if mistake == "no postprocess" else postprocess(total)[0]

    return my_oise


# mistake -> what the message must say (each names its mistake, and no two share a message).
MISTAKES = {
    "rise weights": r"weights each added mask by p \(RISE's rule\)",
    "rise weights, evaluated mask": r"adds each evaluated mask weighted by its p \(RISE's rule\)",
    "evaluated mask": r"adds the evaluated mask \(the one the model just saw\)",
    "initial mask too": r"adds the initial mask to the sum as well",
    "no rescaling": r"does not rescale the changed cells",
    "p_previous never updated": r"never updates p_previous",
    "no upsample": r"never upsamples the updated grid",
    "fixed shift": r"reuses the first random shift",
    "zero shift": r"upsamples with the shift \(0, 0\)",
    "generator every step": r"makes a new generator at every step",
    "generator every call": r"gives every piece a new generator",
    "no postprocess": r"the raw sum of the masks",
    "seed 0": r"the loop for seed 0, not for the seed asked for",
    "logits": r"it is a logit, not a probability.*\(line \d+ of your code: grid = update_grid\(",
    "global random": r"drew random numbers from torch's global generator",
}


def test_the_solution_and_the_right_learner_loop_pass(task, known, capsys):
    solution = runpy.run_path(str(tutorial.SOLUTIONS / "03_loop.py"))["my_oise"]
    check(solution, task, known)
    check(learner_loop(None), task, known)
    assert capsys.readouterr().out == f"Correct: my_oise, {task['n_steps']} steps, seed {task['seed']}\n" * 2


@pytest.mark.parametrize("mistake", MISTAKES)
def test_every_mistake_fails_with_its_own_message(mistake, task, known):
    state = torch.get_rng_state()
    with pytest.raises(tutorial.ExerciseFailed, match=MISTAKES[mistake]) as failed:
        check(learner_loop(mistake), task, known)
    message = str(failed.value)
    assert message.startswith("my_oise")
    assert "Hint" not in message  # a named mistake needs no generic hint
    assert all(not re.search(pattern, message) for other, pattern in MISTAKES.items() if other != mistake), (
        f"{mistake}: the message also names another mistake"
    )
    assert torch.equal(state, torch.get_rng_state())  # the check puts back torch's global random state


def test_an_untouched_stub_fails_and_in_the_notebook_is_not_called_correct(task, known, capsys):
    stub = learner_loop("stub")
    with pytest.raises(tutorial.ExerciseFailed, match=r"^my_oise, 60 steps, seed 4: the function returned None"):
        tutorial.check_exercise("my_oise, 60 steps, seed 4", loop_exercise.run_learner(stub, **task), None)
    # In the notebook, exercise_or_solution checks our solution instead and says so, once; never "Correct".
    check(stub, task, known)
    out = capsys.readouterr().out
    assert "Correct" not in out and "Not yours yet: my_oise is still the stub" in out
    assert out.count("Not yours yet") == 1 and out.count("\n") == 1  # once per cause, one line


def test_every_wrong_loop_is_far_from_the_right_one_and_from_each_other(task, known):
    """The check can tell them apart on its task: each differs from the right map, and from every other wrong map,
    by over 100 times the tolerance (float rounding of another summing order is about 1e-6)."""
    right = loop_exercise.oise_loop(**task)
    maps = list(known.values())
    assert len(maps) == len(loop_exercise.MISTAKES)
    for message, wrong in known.items():
        assert (wrong - right).abs().max() > 100 * ATOL, message
    for i, a in enumerate(maps):
        for b in maps[i + 1 :]:
            assert (a - b).abs().max() > 100 * ATOL


def test_another_order_of_summing_passes(task, known, capsys):
    def my_oise(model, image, target, n_steps, seed, reference=0.0):
        generator = torch.Generator().manual_seed(seed)
        grid = init_grid(1, generator=generator)
        mask = upsample(grid, (28, 28), generator=generator)
        p_previous, masks = 0.0, []
        for _ in range(n_steps):
            p = class_probabilities(model, apply_mask(image, mask, reference))[0, target]
            grid = update_grid(grid, p, p - p_previous, generator=generator)
            mask = upsample(grid, (28, 28), generator=generator)
            masks.append(mask)
            p_previous = p
        return postprocess(torch.cat(masks).double().sum(0, keepdim=True))[0]

    check(my_oise, task, known)
    assert capsys.readouterr().out.startswith("Correct")


def test_oise_loop_checks_its_arguments(task):
    with pytest.raises(ValueError, match="mistake must be None or one of"):
        loop_exercise.oise_loop(**task, mistake="typo")
    with pytest.raises(ValueError, match=r"image must have shape \(1, C, H, W\)"):
        loop_exercise.oise_loop(**{**task, "image": task["image"][0]})
    with pytest.raises(ValueError, match="seed must be >= 0"):
        loop_exercise.oise_loop(**{**task, "seed": -1})
    assert "seed 0" not in " ".join(loop_exercise.wrong_loops(**{**task, "n_steps": 2, "seed": 0}))
