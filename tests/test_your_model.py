"""Notebook 06's panel driven without a browser: choose a model, upload bytes (good and bad), run, stop, save."""

from __future__ import annotations

import datetime
import io
import struct
import threading
import time
import zlib

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from saliency_lib import oise, rise
from saliency_lib.course.widgets import YourModelPanel, your_model_panel
from saliency_lib.course.widgets.view import StoppableModel
from saliency_lib.course.widgets.your_model_panel import METHOD_LABELS, draw_maps, map_scale
from saliency_lib.evaluation import baselines
from saliency_lib.io import models

SIZE = 32


class SmallNet(nn.Module):
    """Two convolutions and a linear layer on 3 x 32 x 32; ``delay`` seconds per call (for Stop)."""

    def __init__(self, delay: float = 0.0):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU()
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4))
        self.delay = delay

    def forward(self, x):
        if self.delay:
            time.sleep(self.delay)
        return self.head(self.features(x))


def small_classifier(delay: float = 0.0, name: str = "small") -> models.Classifier:
    torch.manual_seed(0)
    net = SmallNet(delay)
    spec = models.InputSpec(channels=3, size=(SIZE, SIZE), mean=(0.5, 0.4, 0.3), std=(0.25, 0.25, 0.25))
    model = models.Classifier(name, net, spec, ("ant", "bee", "cat", "dog"), gradcam_layer=net.features[-1])
    return model.eval().requires_grad_(False)


def photos() -> dict:
    generator = torch.Generator().manual_seed(1)
    return {"noise": torch.rand(3, 48, 48, generator=generator), "stripes": torch.linspace(0, 1, 48).repeat(3, 48, 1)}


def png(array: np.ndarray, mode: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    picture = Image.fromarray(array)  # uint16 gives "I;16", (H, W, 4) uint8 "RGBA"
    assert picture.mode == mode
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def bomb_png() -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(1024))) + chunk(b"IEND", b"")
    )


def upload_value(name: str, content: bytes) -> tuple:
    """What ``FileUpload.value`` holds after a browser upload (ipywidgets 8)."""
    return (
        {
            "name": name,
            "type": "image/png",
            "size": len(content),
            "last_modified": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
            "content": memoryview(content),
        },
    )


OFFLINE = "resnet50 downloads its ImageNet weights from download.pytorch.org once, and this machine is offline."


@pytest.fixture
def loader():
    """A fake models.load: "small" loads, "resnet50" is unavailable as offline; counts the loads."""
    calls = []

    def load(name):
        calls.append(name)
        if name == "resnet50":
            raise models.ModelUnavailableError(OFFLINE)
        return small_classifier()

    load.calls = calls
    return load


def make_panel(loader, tmp_path, **options) -> YourModelPanel:
    options = {
        "model_choices": {"small": "small", "ResNet50 (downloads once)": "resnet50"},
        "loader": loader,
        "runtime": "torch",
        "budget": 30,
        "out_dir": tmp_path,
        **options,
    }
    return your_model_panel(photos(), **options)


# ---- choosing a model -------------------------------------------------------------------------------------------


def test_the_models_mean_is_shown_with_three_decimals(loader, tmp_path):
    # EfficientNet-Lite0's mean is 127/255 per channel: the panel (and the `make present` page) shows 0.498.
    model = small_classifier()
    model.spec = models.InputSpec(channels=3, size=(SIZE, SIZE), mean=(127 / 255,) * 3, std=(0.5,) * 3)
    panel = make_panel(loader, tmp_path, extra_models={"mean 127/255": model})
    panel.model_choice.value = "mean 127/255"
    assert "normalised with mean (0.498, 0.498, 0.498)" in panel.model_info.value, panel.model_info.value
    assert "0.4980392" not in panel.model_info.value


def test_choose_model_and_an_unavailable_one_says_why(loader, tmp_path):
    panel = make_panel(loader, tmp_path)
    assert panel.model is not None and not panel.run_button.disabled
    assert panel.image.shape == (1, 3, SIZE, SIZE)  # resized to the model's spec through saliency_lib.io.uploads
    assert "input 3 x 32 x 32" in panel.model_info.value and "4 classes" in panel.model_info.value
    panel.model_choice.value = "ResNet50 (downloads once)"
    assert panel.model is None and panel.run_button.disabled
    assert "unavailable" in panel.model_info.value and "offline" in panel.model_info.value
    assert "unavailable" in panel.status.value
    panel.run(block=True)  # nothing to run: says so, does not fail
    assert panel.maps == {} and panel.error is None and "nothing to run" in panel.status.value
    panel.model_choice.value = "ResNet50 (downloads once)"
    panel.model_choice.value = "small"
    assert panel.model is not None and not panel.run_button.disabled
    panel.model_choice.value = "ResNet50 (downloads once)"
    assert loader.calls == ["small", "resnet50"]  # each name loaded (or refused) once


def test_the_real_loader_refuses_offline_with_a_message(monkeypatch, tmp_path):
    # models.load("resnet50") without the weights in the cache and without internet: the panel shows the message.
    monkeypatch.setattr(models, "_online", lambda *args, **kwargs: False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    panel = your_model_panel(
        photos(), model_choices={"small": small_classifier(), "ResNet50": "resnet50"}, runtime="torch"
    )
    panel.model_choice.value = "ResNet50"
    assert (
        panel.model is None and "offline" in panel.model_info.value and "efficientnet-lite0" in panel.model_info.value
    )


def test_your_own_model_added_in_a_cell_and_a_plain_function(loader, tmp_path):
    panel = make_panel(loader, tmp_path, methods=("oise", "gradcam"))
    mine = small_classifier(name="mine")
    panel.add_model("my model", mine)
    assert panel.model_choice.value == "my model" and panel.model is mine
    net = small_classifier().net

    def plain(images):  # no .spec: RGB at default_size, masked pixels 0, no Grad-CAM layer
        return net(images)

    panel.default_size = SIZE
    panel.add_model("a function", plain)
    assert panel.model is plain and "no .spec" in panel.model_info.value
    panel.run(block=True)
    assert panel.outcome["oise"] == "done" and panel.maps["oise"].shape == (SIZE, SIZE)
    assert panel.outcome["gradcam"].startswith("error:") and "gradcam_layer" in panel.outcome["gradcam"]
    with pytest.raises(TypeError, match="callable"):
        panel.add_model("nothing", 42)


# ---- uploads ------------------------------------------------------------------------------------------------------


def test_upload_good_bytes_are_decoded_by_uploads(loader, tmp_path):
    panel = make_panel(loader, tmp_path)
    rgba = np.zeros((40, 60, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[:, 30:, 3] = 255  # left half transparent: composited on white
    panel.upload.value = upload_value("mine.png", png(rgba, "RGBA"))
    assert panel.image_choice.value == "uploaded: mine.png" and panel.message == ""
    assert panel.image.shape == (1, 3, SIZE, SIZE)
    assert torch.allclose(panel.image[0, :, :, 0], torch.ones(3, SIZE), atol=0.02)  # white where transparent
    assert panel.image[0, 1, :, -1].max() < 0.05  # red where opaque
    grey16 = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16
    assert panel.upload_bytes(png(grey16, "I;16"), "grey16.png")
    assert panel.image.shape == (1, 3, SIZE, SIZE) and 0.4 < float(panel.image.mean()) < 0.6  # scaled, not clipped
    panel.image_choice.value = "stripes"  # back to a shipped photograph
    assert panel.source[0] == "stripes" and panel.image.shape == (1, 3, SIZE, SIZE)


@pytest.mark.parametrize(
    "name, content, says",
    [
        ("scan.pdf", b"%PDF-1.7\n1 0 obj", "PDF document"),
        ("notes.png", b"just some text, not a picture\n", "text file"),
        ("bomb.png", bomb_png(), "decompression bomb"),
        ("cut.png", None, "Pillow cannot read it"),
        ("empty.png", b"", "empty"),
    ],
)
def test_upload_bad_bytes_are_refused_with_the_uploads_message(loader, tmp_path, name, content, says):
    if content is None:  # a real PNG cut short in its header
        content = png(np.zeros((20, 20, 3), dtype=np.uint8), "RGB")[:30]
    panel = make_panel(loader, tmp_path)
    before = panel.image.clone()
    panel.upload.value = upload_value(name, content)
    assert says in panel.message and name in panel.message and says in panel.status.value
    assert torch.equal(panel.image, before)  # the previous image is kept
    assert not any(str(o).startswith("uploaded: ") for o in panel.image_choice.options)


def test_an_oversized_upload_is_refused_before_decoding(loader, tmp_path):
    panel = make_panel(loader, tmp_path)
    big = png(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8), "RGB")
    assert not panel.upload_bytes(big + bytes(30 * 1024 * 1024), "huge.png")
    assert "over the" in panel.message and "MB limit" in panel.message


# ---- running -----------------------------------------------------------------------------------------------------

ALL = tuple(METHOD_LABELS)


def test_run_every_method_matches_the_library(loader, tmp_path):
    panel = make_panel(loader, tmp_path, methods=ALL, budget=40, seed=3)
    panel.run(block=True)
    assert panel.error is None, panel.status.value
    assert panel.outcome == {m: "done" for m in ALL}
    assert all(panel.maps[m].shape == (SIZE, SIZE) and torch.isfinite(panel.maps[m]).all() for m in ALL)
    assert all(panel.seconds[m] >= 0 for m in ALL)
    model, image, target = panel.model, panel.image, panel.target
    assert target == int(model(image).argmax())
    assert panel.calls["oise"] == 40 and panel.calls["rise"] == 40
    assert torch.equal(panel.maps["oise"], oise(model, image, target, n_steps=40, seed=3).maps[0])
    # Tolerance: the panel's RISE vs rise() with the same seed: float32 sums in another batch shape.
    assert torch.allclose(panel.maps["rise"], rise(model, image, target, n_masks=40, seed=3).maps[0], atol=1e-6)
    assert torch.allclose(panel.maps["gradcam"], baselines.attribute("gradcam", model, image, target).maps[0])
    assert "run 1: done" in panel.status.value and "small" in panel.status.value
    assert "OISE" in panel.table.value and "seconds" in panel.table.value
    assert not panel.save_button.disabled and panel.run_button.disabled is False
    assert panel.view.png.startswith(b"\x89PNG")
    assert panel.progress.bar_style == "success"


def test_clear_forgets_the_maps_and_the_table_and_keeps_the_image(loader, tmp_path):
    panel = make_panel(loader, tmp_path, methods=("oise", "rise"), budget=10, seed=0)
    panel.run(block=True)
    assert set(panel.maps) == {"oise", "rise"} and "<table>" in panel.table.value
    image = panel.image
    panel.clear()
    assert panel.maps == {} and panel.outcome == {} and panel.table.value == ""
    assert torch.equal(panel.image, image) and "Press Run." in panel.status.value and panel.save_button.disabled


def test_fast_runtime_gives_the_same_oise_map(loader, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("SALIENCY_CACHE_DIR", str(tmp_path / "cache"))
    panel = make_panel(loader, tmp_path, methods=("oise",), runtime="auto", budget=25)
    panel.run(block=True)
    assert panel.outcome == {"oise": "done"}
    expected = oise(panel.model, panel.image, panel.target, n_steps=25, seed=0).maps[0]
    # Tolerance: runtime='auto' (maybe ONNX Runtime) vs oise() on the same loaded model: float32 sums.
    assert torch.allclose(panel.maps["oise"], expected, atol=1e-5)


def _run_and_stop(panel, when_calls: int) -> None:
    panel.run()
    deadline = time.monotonic() + 60
    while panel.progress.value < when_calls and panel.running and time.monotonic() < deadline:
        time.sleep(0.01)
    panel.stop()
    assert panel.wait(60)


def test_stop_during_oise_keeps_the_partial_map_and_skips_the_rest(tmp_path):
    slow = small_classifier(delay=0.01)
    panel = your_model_panel(
        photos(),
        model_choices={"slow": slow},
        runtime="torch",
        budget=2000,
        methods=("oise", "rise", "gradcam"),
        out_dir=tmp_path,
    )
    _run_and_stop(panel, 5)
    assert panel.outcome == {"oise": "stopped", "rise": "skipped", "gradcam": "skipped"}
    assert 0 < panel.calls["oise"] < 2000 and panel.maps["oise"].shape == (SIZE, SIZE)
    assert "stopped" in panel.status.value and panel.progress.bar_style == "warning"
    assert not panel.run_button.disabled and panel.stop_button.disabled
    assert not panel.save_button.disabled  # the partial map can be saved
    _, npz_path = panel.save()
    with np.load(npz_path) as saved:  # the file says the map is partial
        assert bool(saved["stopped"]) and list(saved["outcomes"]) == ["stopped"]
    assert "Saved in" in panel.saved_links.value
    panel.budget.value = 10
    panel.run(block=True)  # a new run: the old files describe other maps
    assert panel.saved is None and panel.saved_links.value == ""


def test_stop_during_rise_and_during_a_baseline(tmp_path):
    slow = small_classifier(delay=0.01)
    panel = your_model_panel(
        photos(), model_choices={"slow": slow}, runtime="torch", budget=5000, methods=("rise", "oise"), out_dir=tmp_path
    )
    _run_and_stop(panel, 50)  # two batches of 25 masks
    assert panel.outcome["rise"] == "stopped" and panel.outcome["oise"] == "skipped"
    assert panel.calls["rise"] < 5000 and torch.isfinite(panel.maps["rise"]).all()
    # A baseline has no partial result: stopped, no map.
    event = threading.Event()
    wrapped = StoppableModel(slow, event)
    event.set()
    with pytest.raises(KeyboardInterrupt):
        wrapped(torch.rand(1, 3, SIZE, SIZE))
    panel.methods.value = ("lime",)
    panel.budget.value = 5000
    _run_and_stop(panel, 30)
    assert panel.outcome == {"lime": "stopped"} and "lime" not in panel.maps


# ---- saving ------------------------------------------------------------------------------------------------------


def test_save_writes_the_png_and_the_maps_with_links(loader, tmp_path):
    panel = make_panel(loader, tmp_path, methods=("oise", "rise", "saliency"), budget=20)
    with pytest.raises(RuntimeError, match="press Run"):
        panel.save()
    panel.run(block=True)
    panel.save_button.click()  # into out_dir
    png_path, npz_path = panel.saved
    assert png_path.parent == tmp_path and png_path.read_bytes().startswith(b"\x89PNG")
    with np.load(npz_path) as saved:
        assert list(saved["methods"]) == ["oise", "rise", "saliency"]
        for method in ("oise", "rise", "saliency"):
            assert np.array_equal(saved[f"map_{method}"], panel.maps[method].numpy())
        assert saved["image"].shape == (3, SIZE, SIZE) and int(saved["target"]) == panel.target
        assert list(saved["model_calls"]) == [panel.calls[m] for m in ("oise", "rise", "saliency")]
        assert str(saved["model"]) == "small" and int(saved["budget"]) == 20
        assert not bool(saved["stopped"]) and list(saved["outcomes"]) == ["done"] * 3
    links = panel.saved_links.value
    assert png_path.name in links and npz_path.name in links and "data:image/png;base64," in links
    other = panel.save(tmp_path / "elsewhere", embed_limit=10)
    assert other[0].parent == tmp_path / "elsewhere" and "data:" not in panel.saved_links.value


# ---- the figure ---------------------------------------------------------------------------------------------------


def test_every_map_gets_its_own_scale_and_colour_bar():
    rise_like = 0.3 + 0.28 * torch.rand(16, 16)  # RISE's values sit near the mean probability
    scale = map_scale("rise", rise_like)
    assert scale["vmin"] == pytest.approx(float(rise_like.min())) and scale["vmax"] == pytest.approx(
        float(rise_like.max())
    )
    signed = torch.linspace(-0.2, 0.5, 256).view(16, 16)
    scale = map_scale("integrated_gradients", signed)
    assert scale["vmin"] == pytest.approx(-0.5) and scale["vmax"] == pytest.approx(0.5) and scale["cmap"] == "RdBu_r"
    assert map_scale("oise", torch.zeros(4, 4))["vmax"] > map_scale("oise", torch.zeros(4, 4))["vmin"]  # flat map
    figure = Figure(figsize=(10, 3))
    maps = {"oise": torch.rand(16, 16), "rise": rise_like, "lime": signed}
    axes = draw_maps(figure, torch.rand(3, 16, 16), maps, title="t", notes={"oise": "5 calls"})
    assert len(axes) == 4 and len(figure.axes) == 4 + 3  # one colour bar per map
    limits = [ax.images[-1].get_clim() for ax in axes[1:]]
    assert limits[1] == pytest.approx((float(rise_like.min()), float(rise_like.max())))
    assert axes[1].get_title() == "OISE\n5 calls"
