"""The workshop plans as data: what the instructor says, shows and runs, minute by minute.

``docs/instructor.md`` shows :data:`PLAN_90` and :data:`PLAN_180` as tables written by :func:`plan_table`
(``make docs``). Every "run" in them is a :class:`Step` field, not prose, so that the times
quoted come from the measured runs (:mod:`saliency_lib.course.times`) and ``tests/test_schedule.py`` can hold the
plans to what they promise: the 90-minute plan leaves :data:`SLACK_MINUTES` unplanned, every run fits in half of its
slot, and walking the steps in order on fresh copies of the notebooks (``make lab``'s working copy) runs without an
error and leaves each widget the step shows live.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import times, tutorial

__all__ = ["Step", "PLAN_90", "PLAN_180", "SLACK_MINUTES", "plan_table", "run_seconds"]

#: Minutes of the 90-minute workshop left unplanned (questions, a laptop that needs help, a slow kernel).
SLACK_MINUTES = 10


@dataclass(frozen=True)
class Step:
    """One row of a workshop plan.

    Attributes:
        minutes: the slot.
        notebook: ``"03"`` (``None``: no notebook, e.g. the wrap-up or a break).
        sections: the sections the step covers, as shown (``"2-6"``).
        say: what the instructor says.
        show: what the instructor shows and does; ``{run}`` is replaced by the measured time of :attr:`run`.
        run: what runs in a fresh copy at the start of the step: ``"all"`` (*Run > Run All Cells*), ``"through N"``
            (cells from the top through section N: *Run All Above* from section N+1's first cell), or ``None``
            (nothing runs: committed outputs only).
        live: text of the code cells whose widget the step uses; each must have run (its widget is live).
    """

    minutes: int
    notebook: str | None
    sections: str
    say: str
    show: str
    run: str | None = None
    live: tuple[str, ...] = ()

    @property
    def through(self) -> int | None:
        """The last section that runs (``None``: all of them)."""
        return int(self.run.split()[1]) if self.run and self.run.startswith("through") else None


def run_seconds(step: Step, results: dict | None = None) -> tuple[float, float]:
    """The measured ``(wall, cpu)`` seconds of ``step``'s run (``(0, 0)`` when nothing runs)."""
    if step.run is None or step.notebook is None:
        return 0.0, 0.0
    return times.seconds_through(tutorial.notebook(step.notebook).file, step.through, results)


PLAN_90: tuple[Step, ...] = (
    Step(
        10,
        "00",
        "1-6",
        "The question: *where does a black-box classifier look?* OISE only calls the model: a coarse random mask, "
        "kept while the answer survives. Everything runs offline.",
        "*Run > Run All Cells* ({run}). Point at the install check's `READY` and the slider under it; the map of "
        "the tutorial.",
        run="all",
    ),
    Step(
        18,
        "01",
        "2-7",
        "A mask is an 8×8 grid, upsampled bilinearly with a random shift (RISE's trick): smooth masks, no grid "
        "artefacts. What the model sees depends on the reference value.",
        "*Run All Cells* first ({run}). The grid, upsampling with two shifts, section 7's panel: move the shift "
        "and `p_init`, watch `p(class)`. The exercise as a demo: `%load solutions/01_upsample.py`.",
        run="all",
        live=("widgets.mask_panel(",),
    ),
    Step(
        18,
        "02",
        "2-6",
        "One step: keep an on-cell with probability `p`, turn an off-cell on with `1 - p`, rescale changed cells by "
        "`lr · abs(Δp)`. The chain lingers where the class survives: that is the weighting.",
        "*Run All Cells* first ({run}). Section 5's panel: press Step 10 times, read kept / dropped / turned on. "
        "Section 6's fit. Five minutes: learners try the exercise (it is short).",
        run="all",
        live=("widgets.update_panel(",),
    ),
    Step(
        20,
        "03",
        "2-6",
        "The loop: thousands of steps, the running sum is the map. It settles; one chain is noisy, 8 chains agree; "
        "at an equal budget RISE is as good or better here.",
        "*Run All Cells* first ({run}) and talk through section 2 while it runs. Then section 3's panel: press Run "
        "again, scrub the frames; section 5's seeds; section 6, OISE next to RISE (each map on its own colour "
        "range: compare *where*, not *how high*). Section 7 (a photograph) is homework.",
        run="all",
        live=("widgets.loop_panel(model",),
    ),
    Step(
        10,
        "04",
        "2, 4, 7, 9",
        "How to score a map: deletion / insertion, the pointing game, and how each can mislead. With each "
        "dataset's own reference OISE localizes like RISE; at the paper's budget RISE is more faithful.",
        "Click into the first cell of section 5 and *Run > Run All Above* ({run}): section 4's deletion widget. "
        "Sections 7 and 9 from the committed outputs (the whole notebook takes longer), with "
        "[evaluation_full.md](../benchmarks/results/evaluation_full.md).",
        run="through 4",
        live=("widgets.evaluation_panel(",),
    ),
    Step(
        4,
        None,
        "wrap-up",
        "Key points; 05 (acceptable variations) and 06 (your own model) are homework; the solutions; `git pull` "
        "works because learners worked in `work/`.",
        "The index, [notebooks/README.md](../notebooks/README.md).",
    ),
)

PLAN_180: tuple[Step, ...] = (
    Step(
        15,
        "00",
        "all",
        "As in the 90-minute version, then the exercise (per-class accuracy, batched). Use the first minutes to "
        "fix laptops that were not `READY`.",
        "Everyone runs 00 ({run}); the exercise.",
        run="all",
    ),
    Step(
        25,
        "01",
        "all",
        "Masks, upsampling with a shift, the reference value.",
        "*Run All Cells* ({run}); the panel; the exercise (`my_upsample`).",
        run="all",
        live=("widgets.mask_panel(",),
    ),
    Step(
        30,
        "02",
        "all",
        "The update rule; why the chain lingers.",
        "*Run All Cells* ({run}); the panel; section 6; the exercise (`my_update_grid`).",
        run="all",
        live=("widgets.update_panel(",),
    ),
    Step(
        10,
        None,
        "break",
        "",
        "Before the break, everyone opens 04 and runs it from the top (*Run > Run All Cells*): it finishes "
        "during the break (one notebook at a time: two kernels at once would not fit Binder's 2 GB).",
    ),
    Step(
        35,
        "03",
        "3-8",
        "The loop, its convergence, seeds and chains, OISE next to RISE, a photograph.",
        "*Run All Cells* first ({run}); sections 3-7; the exercise (`my_oise`) as pair work (it is the longest).",
        run="all",
        live=("widgets.loop_panel(model",),
    ),
    Step(
        35,
        "04",
        "all",
        "Metrics, what each rewards and how it can be gamed; the baselines; our benchmark against the paper's claim.",
        "Already run before the break ({run}); the deletion widget; sections 7-9; the exercise (`my_deletion_auc`).",
        run="all",
        live=("widgets.evaluation_panel(",),
    ),
    Step(
        15,
        "05",
        "2-4, 7-8",
        "The second half of the paper: regenerate the salient region with a GAN, count how often the class "
        "survives. A random region of the same size is kept even more often: what does that say?",
        "*Run All Cells* ({run}); the variation grid; the agreement figure with its controls.",
        run="all",
        live=("reconstruct_panel(",),
    ),
    Step(
        10,
        "06",
        "demo",
        "Any model, any image: what the library needs to know about a model (a function, its input convention, "
        "its class names).",
        "`make present` (the page is ready in fast mode in about half a minute): upload a photo from the room, "
        "every method side by side, save PNG + `.npz`.",
    ),
    Step(5, None, "end", "Key points; homework: 05's exercise, 06 with your own model.", ""),
)


def plan_table(plan: tuple[Step, ...], results: dict | None = None) -> str:
    """The markdown table of ``plan``: start, minutes, notebook and sections, say, show (with the measured run
    times), and a last line with the planned total."""
    results = times.machine_times() if results is None else results
    rows = ["| start | minutes | notebook, sections | say | show, run |", "|---|---:|---|---|---|"]
    start = 0
    for step in plan:
        wall, _ = run_seconds(step, results)
        run = f"{times.duration(wall)} on our machine" if step.run else ""
        where = f"{step.notebook} · {step.sections}" if step.notebook else step.sections
        rows.append(
            f"| {start // 60}:{start % 60:02d} | {step.minutes} | {where} | {step.say} | {step.show.format(run=run)} |"
        )
        start += step.minutes
    rows.append(f"| {start // 60}:{start % 60:02d} | | end | | |")
    return "\n".join(rows)
