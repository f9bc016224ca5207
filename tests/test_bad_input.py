"""Bad input: one row per (public entry point, mistake a learner makes) -> exception or warning + first line.

Every row also checks that nothing passed in was changed (images, target, the model's weights and mode, the
image file). ``docs/troubleshooting.md`` holds the same rows as a table; ``test_the_troubleshooting_table_is_current``
keeps it in step (regenerate it with ``python tests/test_bad_input.py > docs/troubleshooting.md``).
"""

from __future__ import annotations

import hashlib
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import saliency_lib
from saliency_lib import cli
from saliency_lib.evaluation import baselines, metrics
from saliency_lib.generative.reconstruct import inpaint
from saliency_lib.io.models import Classifier, InputSpec

sys.path.insert(0, str(Path(__file__).parent))  # conftest, also when run as a script to print the table
from conftest import PlantedModel  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZE = 16
REGION = (slice(4, 12), slice(4, 12))


# ---- the learner's things ---------------------------------------------------------------------------------------


def planted(channels: int = 3) -> Classifier:
    """A model with an input convention (``spec``: 3 channels, values in [0, 1]) and class names, like ours."""
    spec = InputSpec(channels=channels, size=(SIZE, SIZE), mean=(0.0,) * channels, std=(1.0,) * channels)
    return Classifier("planted", PlantedModel(REGION), spec, ("bright", "dark"), nn.Identity()).eval()


def bare() -> nn.Module:
    """A model without a convention (no ``spec``): the library cannot know its value range."""
    return PlantedModel(REGION).eval()


def images(batch: int = 2, channels: int = 3, size: int = SIZE) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    x = 0.3 * torch.rand(batch, channels, size, size, generator=generator)
    x[..., 4:12, 4:12] += 0.6
    return x.clamp(0, 1)


def eight_bit() -> torch.Tensor:
    x = (images() * 255).round()
    x[0, 0, 0, 0], x[0, 0, 0, 1] = 0.0, 255.0  # exact range for a stable message
    return x


def with_nan() -> torch.Tensor:
    x = images()
    x[0, 0, 0, 0] = float("nan")
    return x


def pil_image():
    from PIL import Image

    return Image.fromarray((images(1)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8))


class Dropping(nn.Module):
    """A planted model with a dropout layer (as torchvision's), left in training mode."""

    def __init__(self):
        super().__init__()
        self.planted = PlantedModel(REGION)
        self.dropout = nn.Dropout(0.2)

    def forward(self, x):
        return self.dropout(self.planted(x))


def probabilities_model() -> nn.Module:
    return nn.Sequential(PlantedModel(REGION), nn.Softmax(dim=1)).eval()


def wrong_shape(x):
    return torch.zeros(len(x))


def nan_model(x):
    return torch.full((len(x), 2), float("nan"))


def other_device(x):
    raise RuntimeError("Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!")


class TinyGenerator(nn.Module):
    """``(N, 4)`` codes -> ``(N, 3, side, side)`` images in [0, 1]."""

    def __init__(self, side: int = SIZE):
        super().__init__()
        self.latent_dim, self.side = 4, side
        self.linear = nn.Linear(4, 3 * side * side)

    def forward(self, z):
        return torch.sigmoid(self.linear(z)).view(-1, 3, self.side, self.side)


class TinyDiscriminator(nn.Module):
    def forward(self, x):
        return x.mean(dim=(1, 2, 3))


# ---- the entry points -------------------------------------------------------------------------------------------


def _maps(x) -> torch.Tensor:
    return torch.rand(2, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


ENTRY_POINTS: dict[str, Callable] = {
    "oise": lambda model, x, target, **o: saliency_lib.oise(model, x, target, n_steps=4, grid_size=4, seed=0, **o).maps,
    "rise": lambda model, x, target, **o: saliency_lib.rise(model, x, target, n_masks=4, grid_size=4, seed=0, **o).maps,
    "baselines.attribute": lambda model, x, target, method="occlusion", **o: (
        baselines.attribute(
            method, model, x, target, **({"window": 4, "stride": 4} if method == "occlusion" else {}), **o
        ).maps
    ),
    "metrics.deletion": lambda model, x, target, **o: metrics.deletion(model, x, _maps(x), target, **o).curve,
    "metrics.insertion": lambda model, x, target, **o: metrics.insertion(model, x, _maps(x), target, **o).curve,
}
MODEL_ENTRIES = list(ENTRY_POINTS)


def call_inpaint(x, generator=None, discriminator=None):
    region = torch.zeros(1, SIZE, SIZE, dtype=torch.bool)
    region[:, 4:12, 4:12] = True
    torch.manual_seed(0)
    generator = generator if generator is not None else TinyGenerator().eval()
    discriminator = discriminator if discriminator is not None else TinyDiscriminator().eval()
    return inpaint(generator, discriminator, x, region, n_codes=2, n_iterations=1, seed=0).reconstructions


@dataclass
class Row:
    """One mistake at one entry point: ``outcome`` is an exception or warning name, "exit 2" or "accepted"."""

    entry: str
    mistake: str
    outcome: str
    first_line: str = ""
    model: Callable[[], object] = planted
    images: Callable[[], object] = images
    target: object = None
    options: dict = field(default_factory=dict)
    same_as: Callable[[], tuple] | None = None  # for accepted input: (model, images) giving the same result
    cli: list | None = None
    prefix: bool = False  # the message starts with first_line (its end is the owner's to reword)


CHANNEL_LAST = (
    "images looks channel-last (H, W, C), shape (16, 16, 3); the library wants channels first: "
    "use images.permute(2, 0, 1)"
)
CHANNEL_LAST_BATCH = (
    "images looks channel-last (B, H, W, C), shape (2, 16, 16, 3); the library wants channels "
    "first: use images.permute(0, 3, 1, 2)"
)
UINT8 = (
    "images must be a float tensor with values in [0, 1], got dtype torch.uint8 (convert with "
    "images.float() / 255 for 8-bit images)"
)
RANGE = (
    "images must have values in [0.0, 1.0] (the model normalises them itself), got [0, 255]; 8-bit pixels "
    "(0-255)? use images / 255"
)
RANGE_WARNING = (
    "images has values up to 255, all >= 0: 8-bit pixels (0-255)? The library's models expect "
    "[0, 1]: use images / 255. (A model of yours that wants this range: ignore this.)"
)
NUMPY = (
    "images must be a torch.Tensor of shape (B, C, H, W) in [0, 1], got a numpy array of shape (16, 16, 3) "
    "and dtype uint8; convert it with torch.from_numpy(x).permute(2, 0, 1).float() / 255"
)
PIL = (
    "images must be a torch.Tensor of shape (B, C, H, W) in [0, 1], got a PIL image; convert it with "
    "torchvision.transforms.functional.to_tensor(picture) (gives (C, H, W) in [0, 1])"
)
NAN = "images contains NaN or infinite values (1 of 1536); replace them, e.g. torch.nan_to_num(images)"
EMPTY = "images is an empty batch, shape (0, 3, 16, 16); pass at least one image"
TRAINING = (
    "model is in training mode and its layers dropout (Dropout) act randomly (dropout) or mix the images of "
    "a batch (batch norm): the same seed gives different maps. Call model.eval() first (torchvision builds "
    "models in training mode); the library does not change your model."
)
PROBABILITIES = (
    "model seems to return probabilities (every row is in [0, 1] and sums to 1) but output='logits': "
    "a second softmax flattens them and the maps lose contrast; pass output='probabilities' (oise, "
    "rise, the metrics) or make the model return logits."
)
NOT_CALLABLE = "model must be an nn.Module or a function from images (B, C, H, W) to logits (B, n_classes), got str"
DEVICES = (
    "model and images are on different devices (images on cpu): Expected all tensors to be on the same "
    "device, but found at least two devices, cuda:0 and cpu!; move both to one device, e.g. "
    "images.to(device) with device = next(model.parameters()).device"
)


def _rows() -> list[Row]:
    rows = []
    for entry in MODEL_ENTRIES:
        rows += [
            Row(entry, "8-bit image as uint8", "TypeError", UINT8, images=lambda: eight_bit().to(torch.uint8)),
            Row(
                entry,
                "image in 0-255 as float, model with a convention (`spec`)",
                "ValueError",
                RANGE,
                images=eight_bit,
            ),
            Row(
                entry,
                "image in 0-255 as float, model without a convention",
                "UserWarning",
                RANGE_WARNING,
                model=bare,
                images=eight_bit,
            ),
            Row(
                entry,
                "channel-last image `(H, W, C)`",
                "ValueError",
                CHANNEL_LAST,
                images=lambda: images(1)[0].permute(1, 2, 0),
            ),
            Row(
                entry,
                "channel-last batch `(B, H, W, C)`",
                "ValueError",
                CHANNEL_LAST_BATCH,
                images=lambda: images().permute(0, 2, 3, 1),
            ),
            Row(
                entry,
                "numpy array (8-bit, channel-last)",
                "TypeError",
                NUMPY,
                images=lambda: (images(1)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8),
            ),
            Row(entry, "PIL image", "TypeError", PIL, images=pil_image),
            Row(
                entry,
                "float64 image",
                "accepted",
                "converted to the model's dtype (float32), a copy",
                images=lambda: images().double(),
                same_as=lambda: (planted(), images()),
            ),
            Row(
                entry,
                "float16 image",
                "accepted",
                "converted to the model's dtype (float32), a copy",
                images=lambda: images().half(),
                same_as=lambda: (planted(), images().half().float()),
            ),
            Row(entry, "NaN or infinite pixel", "ValueError", NAN, images=with_nan),
            Row(entry, "empty batch", "ValueError", EMPTY, images=lambda: images(0)),
            Row(entry, "target out of range", "ValueError", "target must be a class index in [0, 1], got 5", target=5),
            Row(entry, "negative target", "ValueError", "target must be a class index in [0, 1], got -1", target=-1),
            Row(
                entry,
                "float target",
                "TypeError",
                "target must be None, an int or one int per image, got float",
                target=1.0,
            ),
            Row(
                entry,
                "target tensor of the wrong length",
                "ValueError",
                "target has 3 entries but there are 2 images",
                target=torch.tensor([0, 1, 0]),
            ),
            Row(
                entry,
                "class name as target",
                "TypeError",
                "target must be a class index (an int), got the "
                "class name 'bright'; use model.class_names.index('bright')",
                target="bright",
            ),
            Row(
                entry,
                "model is a plain function",
                "accepted",
                "called as it is (as Captum does)",
                model=lambda: lambda x: PlantedModel(REGION)(x),
                same_as=lambda: (planted(), images()),
            ),
            Row(entry, "model in training mode (dropout)", "UserWarning", TRAINING, model=lambda: Dropping().train()),
            Row(
                entry,
                "model returns probabilities, output='logits'",
                "UserWarning",
                PROBABILITIES,
                model=probabilities_model,
            ),
            Row(
                entry,
                "model returns the wrong shape",
                "ValueError",
                "model must return a tensor of shape (B, n_classes) = (2, n); it returned (2,)",
                model=lambda: wrong_shape,
            ),
            Row(
                entry,
                "model returns NaN",
                "ValueError",
                "model returned NaN or infinite values (for 2 of 2 images of shape (3, 16, 16))",
                model=lambda: nan_model,
            ),
            Row(entry, "model and images on different devices", "ValueError", DEVICES, model=lambda: other_device),
            Row(entry, "model is not callable", "TypeError", NOT_CALLABLE, model=lambda: "resnet50"),
        ]
    for entry in ("oise", "rise"):
        rows.append(
            Row(
                entry,
                "image smaller than the grid",
                "ValueError",
                "grid_size must be >= 1 and <= 3, got 4",
                images=lambda: images(1, size=3),
            )
        )
    rows.append(
        Row(
            "baselines.attribute",
            "Grad-CAM of a plain function",
            "ValueError",
            "layer: the model has no gradcam_layer; pass the convolutional layer to use",
            model=lambda: lambda x: PlantedModel(REGION)(x),
            options={"method": "gradcam"},
        )
    )
    inpaint_rows = [
        ("8-bit image as uint8", "TypeError", UINT8, lambda: eight_bit()[:1].to(torch.uint8)),
        ("image in 0-255 as float", "ValueError", "images must have values in [0, 1]", lambda: eight_bit()[:1]),
        ("channel-last image `(H, W, C)`", "ValueError", CHANNEL_LAST, lambda: images(1)[0].permute(1, 2, 0)),
        (
            "numpy array (8-bit, channel-last)",
            "TypeError",
            NUMPY,
            lambda: (images(1)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8),
        ),
        ("PIL image", "TypeError", PIL, pil_image),
        ("NaN or infinite pixel", "ValueError", NAN.replace("1536", "768"), lambda: with_nan()[:1]),
        ("empty batch", "ValueError", EMPTY, lambda: images(0)),
        ("float64 image", "accepted", "converted to float32, a copy", lambda: images(1).double()),
    ]
    for mistake, outcome, first_line, make in inpaint_rows:
        rows.append(
            Row(
                "reconstruct.inpaint",
                mistake,
                outcome,
                first_line,
                images=make,
                same_as=(lambda: (None, images(1))) if outcome == "accepted" else None,
                prefix=first_line.endswith("[0, 1]"),
            )
        )
    rows.append(
        Row(
            "reconstruct.inpaint",
            "generator output size differs from the image",
            "ValueError",
            "generator makes images of shape (3, 8, 8) but the images are (3, 16, 16); use a generator "
            "trained at this size",
            model=lambda: TinyGenerator(8).eval(),
            images=lambda: images(1),
        )
    )
    rows.append(
        Row(
            "reconstruct.inpaint",
            "generator in training mode",
            "ValueError",
            "generator is in training mode; call .eval() (batch norm would couple the codes)",
            model=lambda: TinyGenerator().train(),
            images=lambda: images(1),
        )
    )
    cli_rows = [
        ("image file missing", "image not found: {missing}", ["{missing}"]),
        (
            "file is not an image",
            "cannot read {text} as an image: it is a text file, not a PNG/JPEG/GIF/BMP/WEBP/TIFF image; "
            "save it as PNG or JPEG (any image viewer's 'Save as' or 'Export') and try again",
            ["{text}"],
        ),
        ("target out of range", "target must be a class index in [0, 9], got 12", ["{photo}", "--target", "12"]),
        ("negative target", "target must be a class index in [0, 9], got -1", ["{photo}", "--target", "-1"]),
        ("float target", "argument --target: invalid int value: '1.5'", ["{photo}", "--target", "1.5"]),
        ("class name as target", "argument --target: invalid int value: 'Coat'", ["{photo}", "--target", "Coat"]),
        ("image smaller than the grid", "", ["{tiny}"]),
    ]
    for mistake, first_line, args in cli_rows:
        outcome = "accepted" if not first_line else "exit 2"
        if outcome == "accepted":
            first_line = "resized to the model's input size first"
        rows.append(Row("python -m saliency_lib explain", mistake, outcome, first_line, cli=args))
    return rows


ROWS = _rows()


# ---- running a row ----------------------------------------------------------------------------------------------


def _snapshot(value):
    if isinstance(value, torch.Tensor):
        return ("tensor", value.clone(), value.dtype)
    if isinstance(value, np.ndarray):
        return ("array", value.copy())
    if isinstance(value, nn.Module):
        return ("module", {k: v.clone() for k, v in value.state_dict().items()}, [m.training for m in value.modules()])
    if type(value).__module__.split(".")[0] == "PIL":
        return ("pil", value.tobytes())
    return ("other", value)


def _unchanged(before, value) -> bool:
    kind = before[0]
    if kind == "tensor":
        return (
            value.dtype == before[2]
            and value.shape == before[1].shape
            and bool(torch.isclose(value, before[1], rtol=0, atol=0, equal_nan=True).all())
        )
    if kind == "array":
        return np.array_equal(value, before[1])
    if kind == "module":
        state = value.state_dict()
        return (
            all(torch.equal(state[k], v) for k, v in before[1].items())
            and [m.training for m in value.modules()] == before[2]
        )
    if kind == "pil":
        return value.tobytes() == before[1]
    return True  # ints, strings, functions: immutable here


def _call(row: Row, model, x):
    if row.entry == "reconstruct.inpaint":
        return call_inpaint(x, generator=model if isinstance(model, TinyGenerator) else None)
    return ENTRY_POINTS[row.entry](model, x, row.target, **dict(row.options))


def _first_line(text: str) -> str:
    # Tolerate a leading "the " so a message reworded to start with the argument's name still matches.
    line = str(text).splitlines()[0] if str(text) else ""
    return line[4:] if line.startswith("the ") else line


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("cli")
    photo = folder / "shirt.png"
    Image.fromarray((np.random.default_rng(0).random((40, 30)) * 255).astype(np.uint8)).save(photo)
    tiny = folder / "tiny.png"
    Image.fromarray(np.full((3, 3), 200, dtype=np.uint8)).save(tiny)
    text = folder / "notes.png"
    text.write_text("not an image")
    return {"photo": photo, "tiny": tiny, "text": text, "missing": folder / "nosuch.png", "out": folder / "map.png"}


def _run_cli(row: Row, files, capsys):
    args = (
        ["explain"]
        + [a.format(**files) for a in row.cli]
        + ["--model", "fashion-cnn", "--steps", "3", "--no-progress", "--out", str(files["out"])]
    )
    hashes = {k: hashlib.sha256(p.read_bytes()).hexdigest() for k, p in files.items() if k != "out" and p.exists()}
    try:
        code = cli.main(args)
    except SystemExit as exit_:  # argparse refuses the option itself
        code = exit_.code
    err = capsys.readouterr().err
    assert hashes == {
        k: hashlib.sha256(p.read_bytes()).hexdigest() for k, p in files.items() if k != "out" and p.exists()
    }
    if row.outcome == "accepted":
        assert code == 0, err
        return
    assert code == 2
    error_line = [line for line in err.splitlines() if "error:" in line][-1]
    assert error_line.split("error: ", 1)[1] == row.first_line.format(**files)


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.entry}: {r.mistake}" for r in ROWS])
def test_bad_input(row: Row, files, capsys):
    if row.cli is not None:
        return _run_cli(row, files, capsys)
    model, x = row.model(), row.images()
    kept = [(value, _snapshot(value)) for value in (model, x, row.target)]
    errors = {"TypeError": TypeError, "ValueError": ValueError}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if row.outcome in errors:
            with pytest.raises(errors[row.outcome]) as error:
                _call(row, model, x)
            line = _first_line(error.value)
            assert line.startswith(row.first_line) if row.prefix else line == row.first_line, line
        else:
            result = _call(row, model, x)
            assert torch.isfinite(result).all()
            if row.same_as is not None:
                good_model, good_images = row.same_as()
                assert result.dtype == torch.float32
                assert torch.equal(result, _call(row, good_model, good_images))
    mine = [
        w for w in caught if issubclass(w.category, UserWarning) and str(w.message).startswith(("model ", "images "))
    ]
    ours = [_first_line(w.message) for w in mine]
    if row.outcome == "UserWarning":
        assert ours == [row.first_line]
        # the warning names the caller's line (here, this file), not a line inside the library
        assert Path(mine[0].filename).resolve() == Path(__file__).resolve(), mine[0].filename
    elif row.outcome == "accepted":
        assert ours == []
    for value, before in kept:
        assert _unchanged(before, value), f"{type(value).__name__} was changed"


def test_a_model_in_training_mode_is_warned_about_once():
    model, x = Dropping().train(), images()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        saliency_lib.oise(model, x, 0, n_steps=3, grid_size=4, seed=0)
        saliency_lib.oise(model, x, 0, n_steps=3, grid_size=4, seed=0)
    assert sum("training mode" in str(w.message) for w in caught) == 1
    assert model.training  # left as it was


def test_a_model_without_stochastic_layers_is_not_warned_about_training_mode():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        saliency_lib.oise(PlantedModel(REGION).train(), images(), 0, n_steps=3, grid_size=4, seed=0)


# ---- the table --------------------------------------------------------------------------------------------------


def markdown_table(rows: list[Row] = ROWS) -> str:
    """Rows with the same mistake, outcome and message are merged into one line listing their entry points."""
    merged: dict[tuple, list[str]] = {}
    prefixed = {(row.mistake, row.entry) for row in rows if row.prefix}
    for row in rows:
        merged.setdefault((row.mistake, row.outcome, row.first_line), []).append(row.entry)
    lines = ["| mistake | entry points | what happens | first line of the message |", "|---|---|---|---|"]
    for (mistake, outcome, first_line), entries in merged.items():
        others = [e for e in entries if e not in MODEL_ENTRIES]
        names = (
            ["the five model entry points"]
            if set(MODEL_ENTRIES) <= set(entries)
            else [f"`{e}`" for e in entries if e in MODEL_ENTRIES]
        ) + [f"`{e}`" for e in others]
        entries_text = ", ".join(names)
        message = first_line.format(missing="nosuch.png", text="notes.png").replace("|", "\\|")
        message = (
            message if outcome == "accepted" else f"`{message}`" + (" ..." if (mistake, entries[0]) in prefixed else "")
        )
        lines.append(f"| {mistake} | {entries_text} | {outcome} | {message} |")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("document", ["docs/troubleshooting.md"])
def test_the_troubleshooting_table_is_current(document):
    text = (ROOT / document).read_text()
    assert markdown_table() in text, f"regenerate the table in {document}: python tests/test_bad_input.py"


if __name__ == "__main__":
    print(markdown_table(), end="")
