"""Upload checks (saliency_lib.io.uploads): good files of every kind decode right, bad ones are refused by name.

Every file is made here with Pillow (or by hand for the bad ones): nothing is shipped for this test.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from saliency_lib.io import uploads
from saliency_lib.io.models import InputSpec

RGB_SPEC = InputSpec(channels=3, size=(224, 224), mean=(0.5,) * 3, std=(0.5,) * 3)
GREY_SPEC = InputSpec(channels=1, size=(28, 28), mean=(0.5,), std=(0.5,))


def encode(picture: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=format, **options)
    return buffer.getvalue()


def gradient(width: int = 64, height: int = 48) -> Image.Image:
    """An RGB picture with different content everywhere (so a wrong rotation or crop shows)."""
    y, x = np.mgrid[0:height, 0:width]
    array = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 256], axis=-1)
    return Image.fromarray(array.astype(np.uint8), mode="RGB")


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), mode="RGB")


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def bomb_png(width: int, height: int) -> bytes:
    """A ~100-byte PNG whose header declares ``width x height`` RGB pixels (a decompression bomb's header)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 1024, 9)  # a sliver of the rows it claims
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", pixels) + png_chunk(b"IEND", b"")


# ---- good files -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("format", uploads.ALLOWED_FORMATS)
def test_every_allowed_format_decodes(format):
    picture = gradient()
    data = encode(picture, format, **({"lossless": True} if format == "WEBP" else {}))
    info = uploads.check_image(data)
    assert (info.format, info.width, info.height, info.n_bytes) == (format, 64, 48, len(data))
    image = uploads.image_tensor(data)
    assert image.shape == (1, 3, 48, 64) and image.dtype == torch.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    if format in ("PNG", "BMP", "TIFF", "WEBP"):  # lossless: the very pixels
        expected = torch.from_numpy(np.array(picture)).permute(2, 0, 1).float() / 255
        assert torch.equal(image[0], expected)


def test_memoryview_path_and_file_upload_value_give_the_same_tensor(tmp_path):
    data = encode(gradient(), "PNG")
    path = tmp_path / "picture.png"
    path.write_bytes(data)
    value = ({"name": "picture.png", "type": "image/png", "size": len(data), "content": memoryview(data)},)
    [(name, content)] = uploads.upload_contents(value)
    assert name == "picture.png" and content == data
    assert uploads.upload_contents(()) == []
    assert uploads.upload_contents({"old.png": {"content": memoryview(data)}}) == [("old.png", data)]
    from_bytes = uploads.image_tensor(value[0]["content"], RGB_SPEC)
    assert torch.equal(from_bytes, uploads.image_tensor(path, RGB_SPEC))
    assert torch.equal(from_bytes, uploads.image_tensor(str(path), RGB_SPEC))
    assert uploads.image_tensor(data, RGB_SPEC, batch=False).shape == (3, 224, 224)


def test_model_spec_resizes_shorter_side_and_crops_the_centre_as_the_photographs_do():
    import torchvision.transforms.functional as TF

    picture = gradient(300, 240)
    image = uploads.image_tensor(encode(picture, "PNG"), RGB_SPEC)
    reference = TF.pil_to_tensor(picture).float().div(255.0)
    reference = TF.center_crop(TF.resize(reference, 224, antialias=True), [224, 224]).clamp(0, 1)
    assert image.shape == (1, 3, 224, 224) and torch.equal(image[0], reference)

    class Model:  # anything with .spec works, e.g. a learner's own wrapped model
        spec = InputSpec(channels=3, size=(100, 160), mean=(0.5,) * 3, std=(0.5,) * 3)

    assert uploads.image_tensor(encode(picture, "PNG"), Model()).shape == (1, 3, 100, 160)
    grey = TF.pil_to_tensor(picture.convert("L")).float().div(255.0)  # under 4 MP: no Pillow pre-shrink
    grey = TF.center_crop(TF.resize(grey, 28, antialias=True), [28, 28]).clamp(0, 1)
    assert torch.equal(uploads.image_tensor(encode(picture, "PNG"), GREY_SPEC)[0], grey)


def test_a_huge_photo_is_shrunk_before_the_float_copy():
    image = uploads.image_tensor(encode(noise(3000, 2000), "JPEG", quality=70), RGB_SPEC)
    assert image.shape == (1, 3, 224, 224) and 0 <= image.min() and image.max() <= 1


def test_rgba_is_composited_on_the_background():
    array = np.zeros((10, 20, 4), dtype=np.uint8)
    array[:, :10] = (255, 0, 0, 255)  # opaque red on the left
    array[:, 10:] = (0, 0, 255, 0)  # fully transparent (blue underneath) on the right
    data = encode(Image.fromarray(array, mode="RGBA"), "PNG")
    assert uploads.check_image(data).mode == "RGBA"
    image = uploads.image_tensor(data)[0]
    assert torch.equal(image[:, :, :10], torch.tensor([1.0, 0, 0]).view(3, 1, 1).expand(3, 10, 10))
    assert torch.equal(image[:, :, 10:], torch.ones(3, 10, 10))  # white, not the hidden blue
    black = uploads.image_tensor(data, background=(0, 0, 0))[0]
    assert torch.equal(black[:, :, 10:], torch.zeros(3, 10, 10))


def test_grey_and_palette_images_become_rgb_or_grey():
    grey = Image.fromarray(np.tile(np.arange(0, 250, 10, dtype=np.uint8), (5, 1)), mode="L")
    image = uploads.image_tensor(encode(grey, "PNG"))[0]
    assert image.shape == (3, 5, 25) and torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])
    assert torch.allclose(image[0, 0, :3], torch.tensor([0, 10, 20]) / 255)
    assert uploads.image_tensor(encode(grey, "PNG"), GREY_SPEC).shape == (1, 1, 28, 28)

    palette = gradient().convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    assert uploads.check_image(encode(palette, "PNG")).mode == "P"
    expected = torch.from_numpy(np.array(palette.convert("RGB"))).permute(2, 0, 1).float() / 255
    assert torch.equal(uploads.image_tensor(encode(palette, "PNG"))[0], expected)

    transparent = Image.new("P", (4, 4), 0)
    transparent.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    transparent.putpixel((0, 0), 1)
    data = encode(transparent, "PNG", transparency=0)  # index 0 (black) is transparent
    image = uploads.image_tensor(data)[0]
    assert image[:, 0, 0].tolist() == [1.0, 0.0, 0.0] and image[:, 3, 3].tolist() == [1.0, 1.0, 1.0]

    bilevel = Image.new("1", (8, 8), 1)
    assert uploads.image_tensor(encode(bilevel, "BMP")).min() == 1.0


def test_16_bit_grey_is_scaled_not_clipped():
    array = np.array([[0, 16384, 32768, 65535]], dtype=np.uint16)
    data = encode(Image.fromarray(array), "PNG")
    assert uploads.check_image(data).mode.startswith("I")
    image = uploads.image_tensor(data)[0, 0]
    expected = torch.tensor([0, 64, 128, 255]) / 255  # round(v / 65535 * 255)
    assert torch.allclose(image[0], expected), image[0]

    floats = Image.fromarray(np.array([[0.0, 0.5, 1.0, 2.0]], dtype=np.float32), mode="F")
    image = uploads.image_tensor(encode(floats, "TIFF"))[0, 0, 0]
    assert torch.allclose(image, torch.tensor([0, 128, 255, 255]) / 255)


def test_cmyk_jpeg_becomes_rgb():
    data = encode(gradient().convert("CMYK"), "JPEG", quality=95)
    assert uploads.check_image(data).mode == "CMYK"
    assert uploads.image_tensor(data).shape == (1, 3, 48, 64)


@pytest.mark.parametrize("orientation, rotate", [(3, 180), (6, -90), (8, 90)])
def test_exif_orientation_is_applied(orientation, rotate):
    stored = Image.new("RGB", (40, 20), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 20, 20))  # red left half, blue right half
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    data = encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    info = uploads.check_image(data)
    assert (info.width, info.height) == (40, 20)  # as stored
    upright = np.asarray(stored.rotate(rotate, expand=True), dtype=np.float32) / 255
    image = uploads.image_tensor(data)[0].permute(1, 2, 0).numpy()
    assert image.shape == upright.shape  # (20, 40, 3) or (40, 20, 3)
    assert np.abs(image - upright).mean() < 0.05  # JPEG noise only


# ---- bad files ----------------------------------------------------------------------------------------------


def refused(data, match: str, **limits) -> str:
    with pytest.raises(ValueError, match=match) as caught:
        uploads.image_tensor(data, RGB_SPEC, **limits)
    message = str(caught.value)
    assert "\n" not in message, "one line"
    return message


def test_too_large_bytes_and_files_are_refused_before_decoding(tmp_path):
    data = encode(noise(100, 100), "PNG")
    message = refused(data, "over the 0.001 MB limit", max_bytes=1000)
    assert "make the picture smaller" in message
    huge = b"\x89PNG\r\n\x1a\n" + bytes(uploads.MAX_BYTES)  # default limit, a real byte string
    refused(huge, "is 20.0 MB, over the 20 MB limit")  # the limit as notebook 06 and the docs state it
    path = tmp_path / "big.png"
    path.write_bytes(huge)
    with pytest.raises(ValueError, match=r"big\.png is 20\.0 MB"):
        uploads.check_image(path)


@pytest.mark.parametrize(
    "content, named",
    [
        (b"hello, this is not a picture\n", "a text file"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>', "SVG"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="5" height="5"/></svg>', "SVG"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIC"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "ZIP"),
        (b"<!DOCTYPE html><html><body>", "HTML"),
        (b"\x00\x01\x02\x03\x04\x05\xfe\xfd", "unknown type"),
        (b"", "empty"),
    ],
)
def test_files_that_are_not_pixel_images_are_refused_by_name(tmp_path, content, named):
    message = refused(content, named)
    assert "PNG or JPEG" in message or "choose the file again" in message
    path = tmp_path / "renamed.png"  # the name does not matter: the bytes do
    path.write_bytes(content)
    with pytest.raises(ValueError, match=named):
        uploads.check_image(path)


def test_a_file_that_only_starts_like_an_image_is_refused():
    refused(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, "starts like a PNG file but Pillow cannot read it")
    refused(b"BM" + b"\x00" * 60, "starts like a BMP file")


@pytest.mark.parametrize("format", ["PNG", "JPEG"])
def test_truncated_files_are_refused(format):
    data = encode(noise(200, 200), format, **({"quality": 90} if format == "JPEG" else {}))
    message = refused(data[: len(data) * 2 // 3], "damaged or incomplete " + format)
    assert "save it again" in message


def test_decompression_bombs_are_refused_unread():
    data = bomb_png(100_000, 100_000)  # 10 billion pixels declared, about 100 bytes sent
    assert len(data) < 200
    message = refused(data, "decompression bomb")
    assert "100000 x 100000" in message or "pixels" in message
    # Pillow's own limit is enforced even when ours is raised above it.
    refused(bomb_png(100_000, 100_000), "decompression bomb", max_pixels=10**12)
    # Our limit, lowered for the test: a normal header over it.
    refused(encode(noise(100, 100), "PNG"), "100 x 100 = 10,000 pixels, over the 5,000 limit", max_pixels=5000)
    assert uploads.check_image(bomb_png(2000, 1000)).width == 2000  # only the header is read


def test_bad_arguments_name_themselves(tmp_path):
    with pytest.raises(FileNotFoundError, match="image not found"):
        uploads.image_tensor(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="source: expected a path or the bytes"):
        uploads.image_tensor(12345)
    data = encode(gradient(), "PNG")
    with pytest.raises(ValueError, match="model: expected a classifier with .spec"):
        uploads.image_tensor(data, object())
    with pytest.raises(ValueError, match="max_bytes"):
        uploads.check_image(data, max_bytes=0)
    with pytest.raises(ValueError, match="background"):
        uploads.open_image(data, background=(300, 0, 0))
    with pytest.raises(ValueError, match="value: expected an ipywidgets.FileUpload"):
        uploads.upload_contents("picture.png")
