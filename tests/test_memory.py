"""The library's default batch sizes bound memory by themselves (Binder gives a kernel 2 GB).

Three tests:

- Memory: every method and metric runs with its defaults on one 224 px photograph through EfficientNet-Lite0, in
  a fresh subprocess, at a small budget (8-17 model calls each, to keep the test short). The measure is the
  process's peak resident memory (``VmHWM``, reset before each call through ``/proc/self/clear_refs``; where it
  cannot be reset, the peak so far: a stricter test) minus the resident memory just before the call. Stated
  ceiling: :data:`CEILING_GB` per call over the memory after the imports, the model and the photo are loaded
  (measured: 0.13-0.19 GB each, 0.2 GB for the whole run, with ``saliency_lib.method.core.CALL_BUDGET``; the old
  defaults put up to 100 photos into one call: 1.6 GB for RISE and LIME and 3.6 GB for a deletion curve at one
  pixel row per step, on this one photo). About 80 s on 2 busy cores, 20-30 s on a quiet machine.
- Notebook 06's panel: every method (OISE, RISE, Grad-CAM, gradients, Integrated Gradients, Occlusion, LIME) at
  the notebook's budget (300 calls) on a photograph through EfficientNet-Lite0, in a fresh subprocess: the
  process's own memory at its peak, imports included, stays under :data:`PANEL_LIMIT_GB` (Binder kills a kernel at
  2 GB). Own memory is the peak resident memory (``VmHWM``) less the pages mapped from files (``RssFile``, mostly
  PyTorch's shared libraries, which the system drops and reads back under pressure rather than kill for): the
  measure of ``saliency_research/bench/notebooks.py``, whose table holds notebook 06's peaks. The resident peak
  alone went over 1.5 GB on CI's machine (1.51 GB) while its own memory is far below. About 30 s.
- Batch sizes: with more work (64 masks, steps, samples, path points, positions; 3 photos) through a tiny
  model, no model call may hold more photos than ``default_batch_size`` allows (8 forward, 2 with gradients):
  the check that catches a default that goes back to "everything at once", at no cost.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

# Largest accepted increase of the peak resident memory during one call, over the memory before it.
CEILING_GB = 0.5
# The tutorial's ceiling for a notebook's kernel (saliency_research/bench/notebooks.py): Binder gives 2 GB.
PANEL_LIMIT_GB = 1.5

PANEL_SCRIPT = textwrap.dedent("""
    import json
    from pathlib import Path

    from saliency_lib.course.widgets.your_model_panel import METHOD_LABELS, your_model_panel
    from saliency_lib.io import models

    def status(field):
        return next(int(l.split()[1]) * 1024 for l in Path("/proc/self/status").read_text().splitlines()
                    if l.startswith(field + ":"))

    model = models.load("efficientnet-lite0")
    panel = your_model_panel(
        model_choices={"EfficientNet-Lite0": model}, budget=300, methods=tuple(METHOD_LABELS), out_dir="."
    )
    file_before = status("RssFile")
    panel.run(block=True)
    # own memory: the peak less the smallest file-backed share seen (before and after the run)
    file_backed = min(file_before, status("RssFile"))
    peak = status("VmHWM")
    print(json.dumps({"peak": peak, "own": peak - file_backed, "outcome": panel.outcome, "seconds": panel.seconds}))
""")

CALLS = {
    # name: the call; the comment says how many photos the old defaults put into one model call.
    "oise": "S.oise(model, photo, n_steps=16, n_chains=16, seed=0)",  # 16 (all rows of a step)
    "rise": "S.rise(model, photo, n_masks=16, seed=0)",  # 16 (100 masks x B)
    "deletion": "metrics.deletion(model, photo, maps, pixels_per_step=224 * 16)",  # 15 (256 per call)
    "insertion": "metrics.insertion(model, photo, maps, pixels_per_step=224 * 16)",  # 15
    "occlusion": "baselines.occlusion(model, photo, window=112, stride=56)",  # 9 (64 per call)
    "integrated_gradients": "baselines.integrated_gradients(model, photo, n_path_points=8)",  # 8 with gradients
    "lime": "baselines.lime(model, photo, n_samples=16, n_segments=20)",  # 16 (100 per call)
    "gradcam": "baselines.gradcam(model, photo)",
    "saliency": "baselines.saliency(model, photo)",
    "class_probabilities": "class_probabilities(model, photo.expand(16, -1, -1, -1))",  # 16 (all at once)
}

SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path

    import torch

    import saliency_lib as S
    from saliency_lib.evaluation import baselines, metrics
    from saliency_lib.io import data, models
    from saliency_lib.method.core import class_probabilities

    def status(field):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(field)

    def reset():
        try:
            Path("/proc/self/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    model = models.load("efficientnet-lite0")
    photo = data.photographs()[0][:1]
    maps = torch.rand(1, 224, 224, generator=torch.Generator().manual_seed(0))
    class_probabilities(model, photo)  # the first call's one-off allocations belong to the baseline
    calls = json.loads(sys.argv[1])
    out = {"after_imports": status("VmRSS"), "calls": {}}
    for name, call in calls.items():
        before = status("VmRSS")
        exact = reset()
        result = eval(call)
        out["calls"][name] = {"increase": status("VmHWM") - before, "peak": status("VmHWM"), "exact": exact}
        del result
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def measured():
    pytest.importorskip("efficientnet_lite_pytorch")
    if sys.platform != "linux":
        pytest.skip("reads /proc/self/status (Linux)")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(CALLS)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.slow(reason="every black-box loop on a photograph in a fresh process, memory read (about 15 s)")
def test_default_batch_sizes_bound_memory_on_a_photo(measured, name):
    increase = measured["calls"][name]["increase"] / 2**30
    assert increase <= CEILING_GB, (
        f"{name} raised the peak memory by {increase:.2f} GB over "
        f"{measured['after_imports'] / 2**30:.2f} GB (ceiling {CEILING_GB} GB): "
        f"a default batch size no longer bounds memory"
    )


@pytest.mark.slow(reason="shares the fresh process above")
def test_whole_run_stays_under_the_ceiling_over_the_imports(measured):
    # Memory freed by one call and kept by the allocator counts for the next call's "before": bound the total too.
    peak = max(call["peak"] for call in measured["calls"].values())
    increase = (peak - measured["after_imports"]) / 2**30
    assert increase <= CEILING_GB, f"the ten calls raised the peak memory by {increase:.2f} GB (ceiling {CEILING_GB})"


@pytest.mark.slow(reason="notebook 06's panel with every method in a fresh process (about 40-75 s)")
def test_notebook_06_panel_runs_every_method_under_binders_memory(tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch")
    if sys.platform != "linux":
        pytest.skip("reads /proc/self/status (Linux)")
    done = subprocess.run(
        [sys.executable, "-c", PANEL_SCRIPT], capture_output=True, text=True, timeout=900, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(run["outcome"].values()) == {"done"}, run["outcome"]
    own = run["own"] / 2**30
    assert own <= PANEL_LIMIT_GB, f"{own:.2f} GB own memory with every method (peak {run['peak'] / 2**30:.2f}): {run}"


def test_default_batch_size_follows_the_input_size():
    import torch

    from saliency_lib.method.core import CALL_BUDGET, default_batch_size

    assert default_batch_size(torch.zeros(2, 3, 224, 224)) == CALL_BUDGET // (3 * 224 * 224) == 8
    assert default_batch_size((1, 28, 28)) == 1536  # Fashion-MNIST: the golden runs stay one call
    assert default_batch_size((1, 28, 28), at_most=256) == 256
    assert default_batch_size((3, 224, 224), gradients=True) == 2
    assert default_batch_size((3, 2048, 2048)) == 1  # never 0
    assert default_batch_size((3, 224, 224), budget=3 * 224 * 224 * 3) == 3


def test_no_model_call_exceeds_the_default_batch_size():
    import torch
    from torch import nn

    import saliency_lib as S
    from saliency_lib.evaluation import baselines, metrics
    from saliency_lib.method.core import class_probabilities, default_batch_size

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 8, stride=8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10)
    ).eval()
    sizes: list[int] = []
    net.register_forward_hook(lambda module, inputs, output: sizes.append(len(inputs[0])))
    photos = torch.rand(3, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    maps = torch.rand(3, 224, 224)
    forward, backward = default_batch_size(photos), default_batch_size(photos, gradients=True)
    calls = {
        "oise": (lambda: S.oise(net, photos, n_steps=64, n_chains=8, seed=0), forward),
        "rise": (lambda: S.rise(net, photos, n_masks=64, seed=0), forward),
        "deletion": (lambda: metrics.deletion(net, photos, maps, pixels_per_step=224 * 4), forward),
        "insertion": (lambda: metrics.insertion(net, photos, maps, pixels_per_step=224 * 4), forward),
        "occlusion": (lambda: baselines.occlusion(net, photos, window=32, stride=32), forward),
        "integrated_gradients": (lambda: baselines.integrated_gradients(net, photos, n_path_points=64), backward),
        "lime": (lambda: baselines.lime(net, photos, n_samples=64, n_segments=10), forward),
        "gradcam": (lambda: baselines.gradcam(net, photos.repeat(2, 1, 1, 1), layer=net[0]), backward),
        "saliency": (lambda: baselines.saliency(net, photos.repeat(2, 1, 1, 1)), backward),
        "class_probabilities": (lambda: class_probabilities(net, photos.repeat(20, 1, 1, 1)), forward),
    }
    too_big = {}
    for name, (call, limit) in calls.items():
        sizes.clear()
        call()
        if limit == backward:  # the gradient passes follow one forward call that finds the targets
            sizes[:] = sizes[1:] if sizes[0] <= forward else sizes
        if max(sizes) > limit:
            too_big[name] = (max(sizes), limit)
    assert not too_big, f"model calls above the default batch size (largest, allowed): {too_big}"
