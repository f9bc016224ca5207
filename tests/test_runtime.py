"""The fast runtime: ONNX Runtime gives PyTorch's answers, its cache is checked, and every failure falls back.

:func:`fast_vs_pytorch` measures the gaps between the two runtimes; ``saliency_research/bench/kernel_spread.py``
measures them
again under every PyTorch kernel setting (ONNX Runtime's side does not change with them) and writes the largest
to ``benchmarks/results/kernel_spread.md``. :data:`RUNTIME_TOLERANCES` holds each limit and why it is that.
"""

from __future__ import annotations

import copy
import pickle
import sys
from pathlib import Path

import pytest
import torch

from saliency_lib import oise, rise
from saliency_lib.io import data, models, runtime
from saliency_lib.method import core

# Largest gap measured (kernel_spread.md, 8 kernel settings, AMD EPYC with AVX-512) x a margin, per quantity.
RUNTIME_TOLERANCES = {
    # float32 convolutions summed in another order: measured 1.2e-6 over the 3,000-image sample; x80 margin.
    "probabilities": 1e-4,
    # No image may change its top-1 class: measured 0 of 3,000.
    "top1_disagreements": 0,
    # OISE rescales changed cells by 1 +- 0.02 |dp| at every step, so a probability that moves in its 6th digit
    # moves the map along the whole walk: measured 2.7e-4 of the map's largest value (one nearly flat map of ten
    # at 200 steps; 7.8e-5 at 1,000; the maps' Spearman rank correlation stays 1.0). 2e-3 is a x7 margin and
    # still below the 5e-3 that one changed mask in 200 steps moves a cell by.
    "oise_map": 2e-3,
    # RISE weighs fixed masks by p, no walk: measured 5.8e-7; x17 margin.
    "rise_map": 1e-5,
}
PROBABILITY_TOLERANCE = RUNTIME_TOLERANCES["probabilities"]

pytestmark = pytest.mark.skipif(not runtime.onnx_available(), reason="onnxruntime/onnx not installed")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture(scope="module")
def fashion(cache):
    """(fast model, its PyTorch model), exported once for the module into a temporary cache."""
    fast = runtime.fast_model(models.load("fashion-cnn"), cache=cache)
    return fast, fast.torch_model


def _one_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    return lines[0]


def fast_vs_pytorch(cache: Path) -> dict[str, float]:
    """Largest gaps between ONNX Runtime and PyTorch on the shipped Fashion CNN (same machine, same seeds).

    ``probabilities``: max |difference| over the 3,000-image sample; ``top1_disagreements``: images whose top-1
    class differs; ``oise_map`` / ``rise_map``: max |difference| / the map's largest value (10 images, one per
    class; 200 OISE steps, 100 RISE masks).
    """
    fast = runtime.fast_model(models.load("fashion-cnn"), cache=cache)
    torch_model = fast.torch_model
    images, _ = data.fashion_sample()
    with torch.inference_mode():
        expected = torch_model(images).softmax(dim=1)
        got = fast(images).softmax(dim=1)
    one_each, _ = data.fashion_sample(n_per_class=1)

    def relative(a: torch.Tensor, b: torch.Tensor) -> float:
        scale = b.flatten(1).abs().max(dim=1).values.view(-1, 1, 1)
        return ((a - b).abs() / scale).max().item()

    return {
        "probabilities": (got - expected).abs().max().item(),
        "top1_disagreements": float((got.argmax(dim=1) != expected.argmax(dim=1)).sum()),
        "oise_map": relative(
            oise(fast, one_each, n_steps=200, seed=0).maps, oise(torch_model, one_each, n_steps=200, seed=0).maps
        ),
        "rise_map": relative(
            rise(fast, one_each, n_masks=100, seed=0).maps, rise(torch_model, one_each, n_masks=100, seed=0).maps
        ),
    }


def check_runtime(gaps: dict[str, float]) -> list[str]:
    """Every gap of :func:`fast_vs_pytorch` above its tolerance, as readable lines."""
    return [
        f"runtime/{key}: {gaps[key]:.3g} > {limit:g}" for key, limit in RUNTIME_TOLERANCES.items() if gaps[key] > limit
    ]


@pytest.mark.slow(reason="both runtimes on the whole Fashion-MNIST sample and on maps (about 10-20 s)")
def test_fast_model_agrees_with_pytorch_on_the_fashion_sample_and_maps(cache):
    assert not check_runtime(fast_vs_pytorch(cache))


def test_the_runtime_check_catches_a_real_gap():
    gaps = {"probabilities": 0.0, "top1_disagreements": 0.0, "oise_map": 0.0, "rise_map": 0.0}
    assert not check_runtime(gaps)
    for key, value in [("probabilities", 0.01), ("top1_disagreements", 1.0), ("oise_map", 0.01), ("rise_map", 0.01)]:
        problems = check_runtime({**gaps, key: value})
        assert len(problems) == 1 and problems[0].startswith(f"runtime/{key}: "), problems


def test_fast_model_carries_the_classifier_contract(fashion):
    fast, torch_model = fashion
    assert fast.runtime == "onnx"
    assert (fast.name, fast.spec, fast.class_names) == (torch_model.name, torch_model.spec, torch_model.class_names)
    assert fast.n_classes == 10 and not fast.training
    assert list(fast.parameters()) == []
    assert core.model_device(fast, torch.device("meta")) == torch.device("cpu")
    for batch in (1, 5):  # a dynamic batch axis
        assert fast(torch.rand(batch, 1, 28, 28)).shape == (batch, 10)
    assert fast.to("cpu") is fast
    with pytest.raises(ValueError, match="CPU"):
        fast.to("cuda")
    with pytest.raises(RuntimeError, match="no gradients"):
        fast(torch.rand(1, 1, 28, 28, requires_grad=True))
    x = torch.rand(3, 1, 28, 28)
    for clone in (pickle.loads(pickle.dumps(fast)), copy.deepcopy(fast)):
        assert torch.equal(clone(x), fast(x))


def test_the_torch_runtime_is_the_pytorch_model(cache):
    model = runtime.fast_model(models.load("fashion-cnn"), runtime="torch", cache=cache)
    assert isinstance(model, models.Classifier) and model.runtime == "torch"
    with pytest.raises(ValueError, match="runtime"):
        runtime.fast_model(model, runtime="tensorrt")


def test_missing_onnxruntime_falls_back_to_pytorch_with_one_line(cache, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    assert not runtime.onnx_available()
    model = runtime.fast_model(models.load("fashion-cnn"), runtime="onnx", cache=cache)
    line = _one_line(capsys)
    assert "PyTorch" in line and "onnxruntime" in line
    assert model.runtime == "torch" and isinstance(model, models.Classifier)
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_failed_export_falls_back_to_pytorch_with_one_line(tmp_path, monkeypatch, capsys):
    def broken(model):
        raise RuntimeError("Unsupported operator aten::something\nand a long second line")

    monkeypatch.setattr(runtime, "_export", broken)
    model = runtime.fast_model(models.load("fashion-cnn"), cache=tmp_path)
    line = _one_line(capsys)
    assert "export failed" in line and "aten::something" in line and "second line" not in line
    assert model.runtime == "torch"
    assert list(tmp_path.iterdir()) == []  # nothing half-written left in the cache


def test_a_device_other_than_the_cpu_gets_pytorch(cache, capsys):
    # "meta" stands in for CUDA here (no GPU on the test machine): any non-CPU device takes the same branch.
    model = runtime.fast_model(models.load("fashion-cnn"), runtime="onnx", device="meta", cache=cache)
    assert model.runtime == "torch" and "PyTorch" in _one_line(capsys)
    model = runtime.fast_model(models.load("fashion-cnn"), runtime="auto", device="meta", cache=cache)
    assert model.runtime == "torch" and capsys.readouterr().err == ""  # "auto" chooses PyTorch without a word


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gets_the_pytorch_model(cache, capsys):
    model = runtime.fast_model(models.load("fashion-cnn"), runtime="onnx", device="cuda", cache=cache)
    assert model.runtime == "torch" and core.model_device(model, torch.device("cpu")).type == "cuda"
    assert "cuda" in _one_line(capsys)


def test_a_corrupt_or_unverified_cache_file_is_exported_again(fashion, cache, capsys):
    fast, torch_model = fashion
    path, sidecar = fast.onnx_path, fast.onnx_path.with_name(fast.onnx_path.name + ".sha256")
    assert path.parent == cache and path.name.startswith("fashion-cnn-")
    assert sidecar.read_text().split() == [runtime.hashlib.sha256(path.read_bytes()).hexdigest(), path.name]
    good = path.read_bytes()
    x = torch.rand(4, 1, 28, 28)

    path.write_bytes(good[: len(good) // 2])  # truncated
    again = runtime.fast_model(torch_model, cache=cache)
    assert "does not match its sha256" in _one_line(capsys)
    assert again.runtime == "onnx" and path.read_bytes() == good and torch.equal(again(x), fast(x))

    sidecar.unlink()  # a file nobody vouches for
    again = runtime.fast_model(torch_model, cache=cache)
    assert "no sha256 sidecar" in _one_line(capsys)
    assert again.runtime == "onnx" and sidecar.exists()

    runtime.fast_model(torch_model, cache=cache)  # verified: used as it is, silently
    assert capsys.readouterr().err == ""


def test_other_weights_get_another_file(fashion, cache):
    fast, torch_model = fashion
    changed = copy.deepcopy(torch_model)
    with torch.no_grad():
        changed.net.head[-1].bias += 1.0
    other = runtime.fast_model(changed, cache=cache)
    assert other.onnx_path != fast.onnx_path and other.weights_sha256 != fast.weights_sha256
    x = torch.rand(2, 1, 28, 28)
    with torch.inference_mode():
        # Tolerance: logits, ONNX Runtime vs PyTorch (RUNTIME_TOLERANCES: probabilities measured within 1.2e-6).
        assert torch.allclose(other(x), changed(x), atol=1e-4)


@pytest.mark.slow(reason="EfficientNet-Lite0 in both runtimes on two photographs")
def test_efficientnet_agrees_with_pytorch_on_two_photographs(cache):
    fast = runtime.fast_model(models.load("efficientnet-lite0"), cache=cache)
    assert fast.runtime == "onnx"
    photos, _ = data.photographs()
    photos = photos[:2]
    with torch.inference_mode():
        expected = fast.torch_model(photos).softmax(dim=1)
        got = fast(photos).softmax(dim=1)
    assert torch.equal(got.argmax(dim=1), expected.argmax(dim=1))
    assert (got - expected).abs().max().item() <= PROBABILITY_TOLERANCE


def test_a_shipped_model_by_name_comes_from_models_load(tmp_path, monkeypatch):
    # runtime sits below models (no import cycle): names go through models.load(name, runtime=...).
    monkeypatch.setenv("SALIENCY_CACHE_DIR", str(tmp_path))
    with pytest.raises(TypeError, match=r"models.load\('fashion-cnn', runtime='onnx'\)"):
        runtime.fast_model("fashion-cnn", runtime="onnx")
    model = models.load("fashion-cnn", runtime="torch")
    assert isinstance(model, models.Classifier)
    fast = models.load("fashion-cnn", runtime="auto")
    assert fast.name == "fashion-cnn" and fast.runtime in ("onnx", "torch")
