"""The workshop plans keep their promises (``saliency_lib.course.schedule``, shown in ``docs/instructor.md``).

- The 90-minute plan leaves ``SLACK_MINUTES`` (10) unplanned; the 3-hour plan fills 180 minutes.
- Every run a step starts takes at most half of its slot, by the measured full runs in
  ``benchmarks/results/notebooks.json`` (``python benchmarks/notebooks.py``), and every notebook was measured there
  under Binder's memory (1.5 GB).
- The widget a step shows is made by a cell that the step's run reaches.
- The walk: the 90-minute plan's steps, in order, each on a fresh working copy of the notebooks (what ``make lab``
  gives a learner), in fast mode. A step that runs the cells through section N runs exactly those; a step that
  runs all cells gets the committed notebook (which nbval runs from the top in ``make test``) and runs through its
  last widget's section. Every run ends without an error and leaves the step's widgets live (their model is open
  in the kernel).
"""

from __future__ import annotations

import os
from dataclasses import replace

import nbformat
import pytest

from saliency_lib.course import schedule, times, tutorial

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
LIMIT_GB = 1.5


def test_the_90_minute_plan_leaves_ten_minutes_of_slack_and_the_3_hour_plan_fills_its_time():
    planned = sum(step.minutes for step in schedule.PLAN_90)
    assert schedule.SLACK_MINUTES >= 10
    assert planned + schedule.SLACK_MINUTES <= 90, f"the 90-minute plan fills {planned} minutes"
    assert sum(step.minutes for step in schedule.PLAN_180) == 180


@pytest.mark.parametrize("plan", ["PLAN_90", "PLAN_180"])
def test_every_run_takes_at_most_half_of_its_slot_as_measured(plan):
    results = times.machine_times()
    for step in getattr(schedule, plan):
        if step.run is None:
            continue
        entry = tutorial.notebook(step.notebook)
        assert results["notebooks"][entry.file].get("cpu_s") is not None, f"{entry.file}: measure it again"
        wall, cpu = schedule.run_seconds(step, results)
        assert 0 < wall <= step.minutes * 60 / 2, f"{plan}, {step.notebook}: {wall:.0f} s of a {step.minutes} min slot"
        assert cpu > 0


def test_every_notebook_was_measured_in_full_under_binders_memory():
    runs = times.machine_times()["notebooks"]
    for entry in tutorial.NOTEBOOKS:
        run = runs[entry.file]
        assert run["error"] is None, (entry.file, run["error"])
        assert run["peak_rss_gb"] <= LIMIT_GB, f"{entry.file}: peak {run['peak_rss_gb']} GB"
        assert run.get("cpu_s"), f"{entry.file}: no CPU time; run python benchmarks/notebooks.py"


def test_the_times_table_quotes_the_measured_runs():
    table = tutorial.index_table("../notebooks/", machine=True)
    runs = times.machine_times()["notebooks"]
    for entry in tutorial.NOTEBOOKS:
        run = runs[entry.file]
        row = next(line for line in table.splitlines() if entry.file in line)
        assert f"{times.duration(run['wall_s'])} ({times.duration(run['cpu_s'])})" in row
        assert f"{run['peak_rss_gb']:.2f} GB" in row


def test_a_plan_table_starts_each_step_when_the_last_one_ends_and_quotes_its_run():
    table = schedule.plan_table(schedule.PLAN_90)
    assert "{run}" not in table
    first = schedule.PLAN_90[0]
    wall, _ = schedule.run_seconds(first)
    assert f"{times.duration(wall)} on our machine" in table.splitlines()[2]
    assert table.splitlines()[-1].startswith(f"| {sum(s.minutes for s in schedule.PLAN_90) // 60}:")


@pytest.mark.parametrize("plan", ["PLAN_90", "PLAN_180"])
def test_the_widget_a_step_shows_is_made_by_a_cell_its_run_reaches(plan):
    for step in getattr(schedule, plan):
        if not step.live:
            continue
        assert step.run is not None, f"{step.notebook}: a widget is shown but nothing runs"
        path = tutorial.NOTEBOOK_DIR / tutorial.notebook(step.notebook).file
        cells = nbformat.read(path, as_version=4).cells
        sections = times.cell_sections(path)
        for text in step.live:
            found = [i for i, cell in enumerate(cells) if cell.cell_type == "code" and text in cell.source]
            assert len(found) == 1, f"{path.name}: {text!r} in {len(found)} cells"
            assert step.through is None or sections[found[0]] <= step.through, (path.name, text)


def _run_like_the_step(path, step) -> tuple[nbformat.NotebookNode, dict]:
    """Runs ``path`` as the step says, from its own folder, in fast mode; returns the notebook and the widget models
    the kernel has open at the end."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    sections = times.cell_sections(path)
    if step.through is not None:
        nb.cells = [cell for cell, section in zip(nb.cells, sections) if section <= step.through]
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    env = dict(os.environ, SALIENCY_FAST="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
    # Last, a cell that lists the widget models the kernel still has (a closed widget leaves Widget.widgets).
    nb.cells.append(nbformat.v4.new_code_cell("import ipywidgets\nprint(' '.join(sorted(ipywidgets.Widget.widgets)))"))
    with client.setup_kernel(env=env, cwd=str(path.parent)):
        for index, cell in enumerate(client.nb.cells):
            if cell.cell_type == "code":
                client.execute_cell(cell, index)
    listing = client.nb.cells.pop()
    return client.nb, set("".join(out.get("text", "") for out in listing.outputs).split())


@pytest.mark.slow
def test_walking_the_90_minute_plan_on_fresh_copies(tmp_path):
    for number, step in enumerate(schedule.PLAN_90):
        if step.run is None:
            continue
        copy = tmp_path / f"step{number}"
        tutorial.working_copy(copy, report=None)  # a fresh copy for every step, as make lab gives a learner
        path = copy / tutorial.notebook(step.notebook).file
        if step.through is None:
            # "Run All Cells" on a fresh copy is what nbval does in `make test` with the committed notebook (a fresh
            # kernel, every cell in order, fast mode): the copy must be that notebook. Here the cells run through
            # the section of the last widget the step uses, to check that widget is live.
            assert path.read_bytes() == (tutorial.NOTEBOOK_DIR / path.name).read_bytes()
            if not step.live:
                continue
            sections = times.cell_sections(path)
            cells = nbformat.read(path, as_version=4).cells
            last = max(sections[i] for i, cell in enumerate(cells) for text in step.live if text in cell.source)
            step = replace(step, run=f"through {last}")
        executed, open_models = _run_like_the_step(path, step)
        for text in step.live:
            cell = next(cell for cell in executed.cells if cell.cell_type == "code" and text in cell.source)
            views = [out["data"][WIDGET_VIEW]["model_id"] for out in cell.outputs if WIDGET_VIEW in out.get("data", {})]
            assert views, f"{path.name}: the cell with {text!r} shows no widget"
            assert set(views) <= open_models, f"{path.name}: the widget of {text!r} is closed"
