"""A learner's own weights load safely; Ctrl+C in a long command keeps what finished and says how to resume.

Every test here is fast: the long library calls are replaced by fakes that write a partial file, then raise
KeyboardInterrupt as Ctrl+C would.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from saliency_lib.io import assets
from saliency_research import cli, reconstruction_experiment, runner, suites

# --- Weights from outside data/ -------------------------------------------------------------------------------------


class _Payload:
    """Unpickling this would create a file: the safe load must refuse it without running it."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_learners_weights_load_and_warn_that_their_origin_was_not_checked(tmp_path):
    path = tmp_path / "mine.pt"
    torch.save({"weight": torch.ones(2, 3)}, path)
    with pytest.warns(
        UserWarning,
        match=r"mine\.pt is not in data/MANIFEST\.json: its origin was not checked; "
        r"pass sha256=\.\.\. to check it",
    ):
        state = assets.load_user_weights(path)
    assert torch.equal(state["weight"], torch.ones(2, 3))


def test_a_learners_weights_with_the_right_hash_load_without_a_warning(tmp_path, recwarn):
    path = tmp_path / "mine.pt"
    torch.save({"weight": torch.zeros(4)}, path)
    state = assets.load_user_weights(path, sha256=assets.sha256_file(path).upper())
    assert torch.equal(state["weight"], torch.zeros(4))
    assert not [w for w in recwarn if "origin was not checked" in str(w.message)]


def test_a_learners_weights_with_the_wrong_hash_are_refused_before_loading(tmp_path):
    path = tmp_path / "mine.pt"
    torch.save({"weight": torch.zeros(4)}, path)
    with pytest.raises(assets.AssetError, match=r"mine\.pt does not match the sha256 you gave"):
        assets.load_user_weights(path, sha256="0" * 64)
    with pytest.raises(ValueError, match="sha256 must be the 64-character hex digest"):
        assets.load_user_weights(path, sha256="abc")
    with pytest.raises(assets.AssetError, match=r"nowhere\.pt is missing"):
        assets.load_user_weights(tmp_path / "nowhere.pt")


@pytest.mark.filterwarnings("ignore:.*origin was not checked")
def test_a_learners_pickle_with_code_is_refused_and_the_code_does_not_run(tmp_path):
    marker = tmp_path / "code-ran"
    evil = tmp_path / "downloads" / "evil.pt"
    evil.parent.mkdir()
    with open(evil, "wb") as handle:
        pickle.dump({"weight": _Payload(str(marker))}, handle, protocol=2)
    assert not str(evil).startswith(str(assets.DATA_DIR))
    with pytest.raises(assets.AssetError, match=r"evil\.pt could not be read as weights.*would run code is refused"):
        assets.load_user_weights(evil)
    with pytest.raises(
        assets.AssetError, match=r"evil\.pt could not be read as weights"
    ):  # a right hash: still refused
        assets.load_user_weights(evil, sha256=assets.sha256_file(evil))
    assert not marker.exists()


def test_a_learners_file_that_is_not_a_state_dict_is_refused(tmp_path, recwarn):
    path = tmp_path / "tensor.pt"
    torch.save(torch.ones(3), path)
    with pytest.raises(assets.AssetError, match=r"tensor\.pt holds a Tensor, expected a state dict"):
        assets.load_user_weights(path)


# --- Ctrl+C in `python -m saliency_research evaluate`
# ----------------------------------------------------------------------

QUICK = [plan.name for plan in suites.SUITES["quick"]]


def _interrupt_evaluation_after(finished: list[str]):
    """A fake run_suite that writes the records of ``finished`` (as run_suite does after each dataset), then stops."""

    def fake(suite, out_dir, *, datasets=None, methods=None, seed=0, progress=True, device="cpu", reference=None):
        if finished:
            records = [{"dataset": name, "method": method} for name in finished for method in methods or ["oise"]]
            path = Path(out_dir) / f"{suites.EXPERIMENT}_{suite}.json"
            path.write_text(json.dumps({"suite": suite, "partial": True, "records": records}))
        raise KeyboardInterrupt

    return fake


def _resume_args(stderr: str) -> list[str]:
    command = stderr.split("resume with: ")[1].strip()
    assert command.startswith("python -m saliency_research ")
    return command.split()[3:]


def test_ctrl_c_in_evaluate_keeps_the_finished_datasets_and_says_how_to_resume(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "run_suite", _interrupt_evaluation_after(QUICK[:2]))
    code = cli.main(["evaluate", "--suite", "quick", "--out", str(tmp_path), "--seed", "3", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 130
    kept = tmp_path / "evaluation_quick.json"
    assert kept.exists() and {r["dataset"] for r in json.loads(kept.read_text())["records"]} == set(QUICK[:2])
    assert f"interrupted: kept the finished datasets {QUICK[:2]} in {kept}" in err
    args = cli.build_parser().parse_args(_resume_args(err))
    assert (args.suite, args.out, args.datasets, args.seed, args.no_progress) == ("quick", tmp_path, QUICK[2:], 3, True)
    assert err.count("\n") == 1, "one line"


def test_ctrl_c_before_any_dataset_finished_keeps_the_old_file_and_resumes_with_the_same_run(
    tmp_path, monkeypatch, capsys
):
    old = tmp_path / "evaluation_quick.json"
    old.write_text(json.dumps({"records": [{"dataset": name, "method": "rise"} for name in QUICK]}))
    before = old.read_bytes()
    monkeypatch.setattr(runner, "run_suite", _interrupt_evaluation_after([]))
    code = cli.main(
        [
            "evaluate",
            "--suite",
            "quick",
            "--out",
            str(tmp_path),
            "--datasets",
            "clutter",
            "planted",
            "--methods",
            "rise",
        ]
    )
    err = capsys.readouterr().err
    assert code == 130 and old.read_bytes() == before
    assert "no dataset had finished" in err
    args = cli.build_parser().parse_args(_resume_args(err))
    assert (args.datasets, args.methods) == (["clutter", "planted"], ["rise"])


def test_ctrl_c_in_a_restricted_evaluate_run_resumes_only_the_rest(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "run_suite", _interrupt_evaluation_after(["fashion"]))
    code = cli.main(["evaluate", "--out", str(tmp_path), "--datasets", "fashion", "sanity", "--methods", "oise"])
    err = capsys.readouterr().err
    assert code == 130 and "kept the finished datasets ['fashion']" in err
    args = cli.build_parser().parse_args(_resume_args(err))
    assert (args.datasets, args.methods) == (["sanity"], ["oise"])


# --- Ctrl+C in `python -m saliency_research reconstruct`
# -------------------------------------------------------------------


def _interrupt_reconstruction(write_cache: bool):
    def fake(suite, out=None, maps_cache=None, maps_only=False, progress=True, reference=None):
        if write_cache and maps_cache is not None:
            torch.save({"key": "{}", "maps": {"oise": torch.zeros(1, 2, 2)}}, maps_cache)
        raise KeyboardInterrupt

    return fake


def test_ctrl_c_in_reconstruct_keeps_the_maps_cache_and_says_how_to_resume(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "maps.pt"
    monkeypatch.setattr(reconstruction_experiment, "run_experiment", _interrupt_reconstruction(True))
    code = cli.main(["reconstruct", "--out", str(tmp_path), "--maps-cache", str(cache), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 130 and cache.exists()
    assert f"interrupted: the saliency maps are kept in {cache}" in err
    args = cli.build_parser().parse_args(_resume_args(err))
    assert (args.suite, args.out, args.maps_cache) == ("quick", tmp_path, cache)


def test_ctrl_c_in_reconstruct_without_a_cache_says_nothing_was_kept(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(reconstruction_experiment, "run_experiment", _interrupt_reconstruction(False))
    code = cli.main(["reconstruct", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 130 and "nothing was kept (results are written only at the end" in err
    args = cli.build_parser().parse_args(_resume_args(err))
    assert args.maps_cache == tmp_path / "reconstruction_quick_maps.pt"


# --- Fast repeated clicks and slider drags on a panel -----------------------------------------------------------------


@pytest.mark.slow(reason="50 slider moves, each redrawing the panel (about 5-10 s)")
def test_mask_panel_survives_a_fast_slider_drag_and_shows_only_the_latest_result(planted_model, planted_images):
    from saliency_lib.course import widgets

    panel = widgets.mask_panel(planted_model, planted_images, grid_size=8, seed=0)
    start = dict(panel.counts)
    changes = 0
    for i in range(50):  # a drag: the sliders jump through values faster than anyone can look
        slider = (panel.shift_x, panel.shift_y, panel.seed, panel.p_init, panel.grid_size)[i % 5]
        value = (i * 7) % (slider.max + 1) if slider is not panel.p_init else round((i % 20) * 0.05, 2)
        if slider is panel.grid_size:
            value = 2 + i % 7
        changes += slider.value != value
        slider.value = value
    for i in range(20):
        panel.image.value = i % 3
    changes += 20
    # One recomputation per change at most (a slider that lands on its old value recomputes nothing) and one
    # model call per changed masked image (the clean ones are cached per image).
    for stage in ("grid", "mask", "masked", "renders"):
        assert panel.counts[stage] - start[stage] <= changes, stage
    assert panel.counts["model_calls"] - start["model_calls"] <= panel.counts["masked"] - start["masked"] + 3
    # Nothing was rendered while nobody looked; reading the image renders the latest state once.
    assert panel.view.renders == 0
    fresh = widgets.mask_panel(
        planted_model, planted_images, grid_size=panel.grid_size.value, p_init=panel.p_init.value, seed=panel.seed.value
    )
    fresh.shift_y.value, fresh.shift_x.value, fresh.image.value = (
        panel.shift_y.value,
        panel.shift_x.value,
        panel.image.value,
    )
    assert torch.equal(panel.grid, fresh.grid) and torch.equal(panel.mask, fresh.mask)
    assert panel.probability == fresh.probability and panel.readout.value == fresh.readout.value
    assert panel.view.png == fresh.view.png and panel.view.renders == 1


@pytest.mark.slow(reason="20 clicks and drags, each a model call and a redraw (about 5-10 s)")
def test_update_panel_survives_fast_clicks_and_drags(planted_model, planted_images):
    from saliency_lib.course import widgets

    panel = widgets.update_panel(planted_model, planted_images[0], seed=0)
    resets, calls = panel.counts["resets"], panel.counts["model_calls"]
    for i in range(20):  # clicks between drags of the step-size and seed sliders
        panel.step_size.value = 0.01 * (1 + i % 5)
        panel.step_button.click()
        if i % 5 == 4:
            panel.seed.value = i
    # A seed change restarts the chain: the last restart (seed 19) came after the last click.
    assert panel.counts["resets"] == resets + 4
    assert panel.step == 0 and panel.history == []
    for _ in range(10):
        panel.step_button.click()
    assert panel.step == 10 and len(panel.history) == 10 and panel.counts["resets"] == resets + 4
    assert panel.counts["model_calls"] - calls == 30  # one model call per step, none per drag or restart
    fresh = widgets.update_panel(planted_model, planted_images[0], seed=19, step_size=panel.step_size.value)
    for _ in range(10):
        fresh.step_button.click()
    assert torch.equal(panel.grid, fresh.grid) and panel.history == fresh.history
    assert panel.view.png == fresh.view.png
