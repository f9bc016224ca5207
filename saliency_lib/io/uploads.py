"""Image files a learner brings: checked before decoding, then turned into a model's input.

The one home of image-file decoding in the library: notebook 06's upload box, the ``explain`` command and any
cell that opens a photo call these functions. What is checked, in order, and why::

    size in bytes    <= max_bytes (20 MB)     before reading a path, before parsing bytes: no huge uploads
    magic bytes      PNG JPEG GIF BMP WEBP TIFF   SVG, PDF, HEIC, ZIP, text named .png ... refused by name
    header only      Image.open (no pixels yet): the format Pillow sees must be in the allow-list too
    pixel count      width * height <= max_pixels (50 M), and Pillow's own bomb limit: a 100 KB PNG that
                     declares 100,000 x 100,000 pixels would need 30 GB once decoded; refused unread
    decode           a truncated or damaged file is refused with what to do

Then every image is normalised the same way: EXIF orientation applied (phone photos), transparency composited
on a background (white by default), palette / CMYK / 1-bit / 16-bit / float images converted to 8-bit RGB or
grey (16-bit grey scaled by 65535, not clipped), and, for a model, the shorter side resized to the model's input
size and the centre cropped (as :func:`saliency_lib.io.data.photographs` does)::

    info = check_image(upload.value[0]["content"])           # ImageInfo(format="PNG", width=.., ...), no decode
    image = image_tensor(upload.value[0]["content"], model)    # float32 (1, C, H, W) in [0, 1]

Every refusal is one ``ValueError`` line that names what is wrong and what to do.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..method.checks import check_int

if TYPE_CHECKING:  # Pillow is imported when an image is opened, not with the package
    from PIL import Image

__all__ = [
    "ALLOWED_FORMATS",
    "MAX_BYTES",
    "MAX_MESSAGE_BYTES",
    "MAX_PIXELS",
    "ImageInfo",
    "upload_contents",
    "check_image",
    "open_image",
    "image_tensor",
    "png_bytes",
]

#: Pixel formats accepted (Pillow's format names).
ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
#: Default size limit of one file in bytes: 20 MB, decimal megabytes as the refusal, notebook 06 and the docs
#: state it (a 50-megapixel JPEG is ~15 MB).
MAX_BYTES = 20_000_000
#: Largest message the Jupyter server and Voila accept from the browser: their tornado
#: ``websocket_max_message_size``, set by the files in ``jupyter-config/`` that the package installs into the
#: environment's ``etc/jupyter`` (``tests/test_every_way_in.py`` checks they say this number). An upload reaches
#: the kernel as one websocket message; with tornado's default (10 MiB) a 12 MB file is dropped without a word
#: ("Restoring connection"). Five times :data:`MAX_BYTES` (100 MB) leaves room for base64 and JSON wrapping (x 4/3
#: and more), so a file well over :data:`MAX_BYTES` still arrives and gets :func:`check_image`'s one-line refusal
#: instead of silence.
MAX_MESSAGE_BYTES = 5 * MAX_BYTES
#: Default limit on width * height (50 megapixels: 150 MB decoded as RGB, within Binder's 2 GB).
MAX_PIXELS = 50_000_000
#: Images with more pixels are first shrunk in Pillow by a whole factor (memory); smaller ones are not.
REDUCE_ABOVE_PIXELS = 4_000_000

# Leading bytes of the accepted formats (the file's own claim, checked before Pillow parses anything).
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
_ADVICE = "save it as PNG or JPEG (any image viewer's 'Save as' or 'Export') and try again"


@dataclass(frozen=True)
class ImageInfo:
    """What the header of an accepted image file says (nothing decoded yet).

    Attributes:
        format: Pillow's format name, one of :data:`ALLOWED_FORMATS`.
        width, height: pixels, as stored (before EXIF rotation).
        mode: Pillow's mode as stored ("RGB", "RGBA", "L", "P", "I;16", "CMYK", ...).
        n_bytes: size of the file.
        n_frames: frames (animated GIF/WEBP, multi-page TIFF); only the first is used.
    """

    format: str
    width: int
    height: int
    mode: str
    n_bytes: int
    n_frames: int = 1


def upload_contents(value) -> list[tuple[str, bytes]]:
    """``(name, bytes)`` of each file in an ``ipywidgets.FileUpload``'s ``value``.

    Args:
        value: ``upload.value``: a tuple of dicts with ``"name"`` and ``"content"`` (a memoryview; ipywidgets 8),
            or a dict ``{name: {"content": ...}}`` (ipywidgets 7).

    Returns:
        One ``(name, bytes)`` per file, in upload order (empty when nothing was uploaded).
    """
    if isinstance(value, dict):
        items = [dict(entry, name=entry.get("name", name)) for name, entry in value.items()]
    elif isinstance(value, (tuple, list)):
        items = list(value)
    else:
        raise ValueError(
            f"value: expected an ipywidgets.FileUpload's value (a tuple of dicts), got "
            f"{type(value).__name__}; pass `upload.value`"
        )
    files = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or "content" not in item:
            raise ValueError(
                f"value[{index}]: expected a dict with 'name' and 'content' (as FileUpload gives), "
                f"got {type(item).__name__}; pass `upload.value`"
            )
        files.append((str(item.get("name", f"upload {index}")), bytes(item["content"])))
    return files


def _read(source, max_bytes: int) -> tuple[bytes, str]:
    """The bytes of ``source`` (path or bytes-like) and a label for messages; the size is checked first."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        n_bytes = memoryview(source).nbytes
        label = "the upload"
        if n_bytes > max_bytes:
            raise ValueError(_too_big(label, n_bytes, max_bytes))
        return bytes(source), label
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"image not found: {path}")
        n_bytes = path.stat().st_size
        if n_bytes > max_bytes:  # before reading a byte of it
            raise ValueError(_too_big(str(path), n_bytes, max_bytes))
        return path.read_bytes(), str(path)
    raise ValueError(
        f"source: expected a path or the bytes of an image file (e.g. upload.value[0]['content']), "
        f"got {type(source).__name__}"
    )


def _too_big(label: str, n_bytes: int, max_bytes: int) -> str:
    return (
        f"{label} is {n_bytes / 1e6:.1f} MB, over the {max_bytes / 1e6:g} MB limit; make the picture "
        f"smaller (e.g. 1024 pixels wide, saved as JPEG) and try again"
    )


def _sniff(head: bytes) -> str | None:
    """The format the leading bytes claim, or a description of a known non-image (starting with '!')."""
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"%pdf"):
        return "!a PDF document"
    if text.startswith((b"<svg", b"<?xml")) and b"<svg" in text:
        return "!an SVG drawing (vector graphics, not pixels)"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"mif1", b"msf1", b"heim", b"heis"):
            return "!a HEIC photo (the iPhone's default format)"
        if brand in (b"avif", b"avis"):
            return "!an AVIF image"
        return "!a video or MP4-family file"
    if head.startswith(b"PK\x03\x04"):
        return "!a ZIP archive (or an Office document)"
    if text.startswith((b"<!doctype html", b"<html")):
        return "!a web page (HTML), perhaps saved instead of the picture"
    if head and all(byte in b"\t\n\r" or 32 <= byte < 127 for byte in head[:64]):
        return "!a text file"
    return None


def _open_header(data: bytes, label: str, max_pixels: int) -> Image.Image:
    """Pillow's lazily opened image (header parsed, no pixels decoded) after every check but decoding."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ValueError(f"{label} is empty (0 bytes); choose the file again")
    claimed = _sniff(data[:64])
    if claimed is None or claimed.startswith("!"):
        what = "a file of unknown type" if claimed is None else claimed[1:]
        raise ValueError(
            f"cannot read {label} as an image: it is {what}, not a {'/'.join(ALLOWED_FORMATS)} image; {_ADVICE}"
        )
    with warnings.catch_warnings():
        # Pillow warns above MAX_IMAGE_PIXELS and raises above twice that: both mean "refuse".
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            opened = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ValueError(
                f"{label} declares too many pixels to decode safely ({_first_line(error)}); "
                f"this looks like a decompression bomb: use a normal photo or a smaller "
                f"image"
            ) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            raise ValueError(
                f"cannot read {label} as an image: it starts like a {claimed} file but Pillow "
                f"cannot read it ({_first_line(error)}), so it is damaged or not really a {claimed}; "
                f"{_ADVICE}"
            ) from None
    if opened.format not in ALLOWED_FORMATS:  # pragma: no cover - formats= already restricts Pillow
        raise ValueError(f"{label} is a {opened.format} image; accepted: {', '.join(ALLOWED_FORMATS)}; {_ADVICE}")
    width, height = opened.size
    if width < 1 or height < 1:
        raise ValueError(f"{label} has no pixels ({width} x {height}); choose another image")
    if width * height > max_pixels:
        raise ValueError(
            f"{label} declares {width} x {height} = {width * height:,} pixels, over the "
            f"{max_pixels:,} limit (a decompression bomb, or a huge scan); make the picture smaller "
            f"and try again"
        )
    return opened


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def check_image(source, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS) -> ImageInfo:
    """Check an image file without decoding its pixels: size, real format, declared pixel count.

    Args:
        source: a path, or the bytes of a file (``bytes``, ``bytearray`` or the ``memoryview`` that
            ``FileUpload`` gives in ``upload.value[0]["content"]``).
        max_bytes: largest file accepted, in bytes (default :data:`MAX_BYTES`, 20 MB).
        max_pixels: largest ``width * height`` accepted (default :data:`MAX_PIXELS`, 50 M). Pillow's own
            ``Image.MAX_IMAGE_PIXELS`` also applies.

    Returns:
        :class:`ImageInfo` of the file.

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: too large, not one of :data:`ALLOWED_FORMATS` (SVG, PDF, HEIC, text ... named as such),
            a header Pillow cannot parse, or too many pixels; one line with what to do.
    """
    check_int("max_bytes", max_bytes)
    check_int("max_pixels", max_pixels)
    data, label = _read(source, max_bytes)
    with _open_header(data, label, max_pixels) as opened:
        return ImageInfo(
            format=opened.format,
            width=opened.size[0],
            height=opened.size[1],
            mode=opened.mode,
            n_bytes=len(data),
            n_frames=int(getattr(opened, "n_frames", 1)),
        )


def open_image(
    source,
    *,
    channels: int = 3,
    background: tuple[int, int, int] = (255, 255, 255),
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
) -> Image.Image:
    """A checked image file decoded as an upright 8-bit ``PIL.Image`` in mode "RGB" (or "L" for one channel).

    Args:
        source: a path or the bytes of a file, as for :func:`check_image`.
        channels: 3 (RGB) or 1 (grey).
        background: RGB colour (0-255 each) that transparent pixels are composited on (default white).
        max_bytes, max_pixels: limits, as for :func:`check_image`.

    Conversions: EXIF orientation applied; RGBA, LA, PA and palette transparency composited on
    ``background``; palette, CMYK, YCbCr, 1-bit converted; 16-bit grey (``I;16``) scaled by 65535 and 32-bit
    integer grey (``I``) by 65535 too (what 16-bit PNGs and TIFFs give); float grey (``F``) clipped to [0, 1].
    The first frame of an animation or multi-page TIFF.

    Raises:
        FileNotFoundError, ValueError: as :func:`check_image`, plus a damaged or truncated file.
    """
    from PIL import Image, ImageOps

    check_int("channels", channels)
    if channels not in (1, 3):
        raise ValueError(f"channels: expected 1 (grey) or 3 (RGB), got {channels}")
    if len(background) != 3 or not all(isinstance(v, int) and 0 <= v <= 255 for v in background):
        raise ValueError(f"background: expected an RGB triple of ints in 0-255, got {background!r}")
    check_int("max_bytes", max_bytes)
    check_int("max_pixels", max_pixels)
    data, label = _read(source, max_bytes)
    # One decoded copy at a time (a 48-megapixel photo is 192 MB in Pillow, 4 bytes a pixel): rotated in place, and
    # neither copied nor converted when it already is 8-bit RGB (or grey). The file is bytes in memory, so there is
    # nothing to close; Image.close() would free the pixels we return.
    picture = _open_header(data, label, max_pixels)
    kind = picture.format
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            picture.load()
            ImageOps.exif_transpose(picture, in_place=True)
            picture = _to_8bit(picture, background)
    except (
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as error:
        raise ValueError(
            f"cannot read {label} as an image: it is a damaged or incomplete {kind} file "
            f"({_first_line(error)}); open it in an image viewer and save it again, or upload "
            f"it again"
        ) from None
    mode = "L" if channels == 1 else "RGB"
    return picture if picture.mode == mode else picture.convert(mode)


def _to_8bit(picture: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """``picture`` in mode "RGB" or "L" (8 bits), transparency composited on ``background``."""
    from PIL import Image

    mode = picture.mode
    if mode in ("RGB", "L"):
        return picture
    if mode in ("I", "F") or mode.startswith("I;16"):
        array = np.asarray(picture, dtype=np.float64)
        scale = 1.0 if mode == "F" else 65535.0  # 16-bit grey: scale, do not clip at 255 as convert("L") would
        array = np.clip(array / scale, 0.0, 1.0)
        return Image.fromarray(np.round(array * 255.0).astype(np.uint8), mode="L")
    if mode == "P":
        picture = picture.convert("RGBA" if "transparency" in picture.info else "RGB")
    elif mode == "PA":
        picture = picture.convert("RGBA")
    elif mode == "1":
        return picture.convert("L")
    elif mode == "LA" or (mode == "L" and "transparency" in picture.info):
        picture = picture.convert("RGBA")
    elif mode == "RGB" and "transparency" in picture.info:
        picture = picture.convert("RGBA")
    if picture.mode == "RGBA" or picture.mode == "RGBa":
        canvas = Image.new("RGB", picture.size, background)
        canvas.paste(picture.convert("RGBA"), mask=picture.convert("RGBA").getchannel("A"))
        return canvas
    return picture.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX


def _spec_of(model_or_spec) -> tuple[int, tuple[int, int] | None]:
    """``(channels, (H, W) or None)`` from a classifier with ``.spec``, an input spec, or None (RGB, as is)."""
    if model_or_spec is None:
        return 3, None
    spec: Any = getattr(model_or_spec, "spec", model_or_spec)
    channels, size = getattr(spec, "channels", None), getattr(spec, "size", None)
    if channels not in (1, 3) or size is None or len(tuple(size)) != 2:
        raise ValueError(
            f"model: expected a classifier with .spec, or a spec with .channels (1 or 3) and "
            f".size (H, W), e.g. saliency_lib.io.models.InputSpec; got {type(model_or_spec).__name__}"
        )
    height, width = (check_int("size[0]", int(size[0])), check_int("size[1]", int(size[1])))
    return int(channels), (height, width)


def image_tensor(
    source,
    model=None,
    *,
    batch: bool = True,
    background: tuple[int, int, int] = (255, 255, 255),
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
) -> torch.Tensor:
    """A checked image file as a model's input: float32 ``(1, C, H, W)`` (or ``(C, H, W)``) in [0, 1].

    Args:
        source: a path or the bytes of a file (e.g. ``upload.value[0]["content"]``), as for :func:`check_image`.
        model: a classifier with ``.spec`` (:class:`saliency_lib.io.models.Classifier`), a spec with ``.channels``
            and ``.size`` (:class:`saliency_lib.io.models.InputSpec`), or None: RGB at the file's own size.
            With a spec, the shorter side is resized to fit ``size`` and the centre cropped to ``size`` (as
            :func:`saliency_lib.io.data.photographs`); one-channel models get a grey image. Fashion-MNIST items
            are light on black: a photo of a shirt on white looks nothing like them.
        batch: True: ``(1, C, H, W)``; False: ``(C, H, W)``.
        background, max_bytes, max_pixels: as for :func:`open_image`.

    Raises:
        FileNotFoundError, ValueError: as :func:`open_image`; a ``model`` without a usable spec.
    """
    import torchvision.transforms.functional as TF

    channels, size = _spec_of(model)
    picture = open_image(source, channels=channels, background=background, max_bytes=max_bytes, max_pixels=max_pixels)
    if size is not None:
        # Shrink photos over 4 megapixels by a whole factor in Pillow first (to at least twice the target), so
        # the float copy below stays small (a 50 MP photo would take 600 MB); smaller ones are resized as is.
        factor = min(picture.size) // (2 * min(size))
        if picture.size[0] * picture.size[1] > REDUCE_ABOVE_PIXELS and factor >= 2:
            picture = picture.reduce(factor)
    image = TF.pil_to_tensor(picture).float().div(255.0)  # (C, H, W)
    if size is not None:
        height, width = size
        if height == width:  # the shorter side to the size, exactly as data.photographs does
            image = TF.resize(image, height, antialias=True)
        else:  # scale so the image covers (H, W), then crop
            scale = max(height / image.shape[1], width / image.shape[2])
            cover = [max(height, round(image.shape[1] * scale)), max(width, round(image.shape[2] * scale))]
            image = TF.resize(image, cover, antialias=True)
        image = TF.center_crop(image, [height, width]).clamp(0, 1)
    return image.unsqueeze(0) if batch else image


def png_bytes(image: torch.Tensor) -> bytes:
    """A ``(C, H, W)`` image in [0, 1] as PNG bytes (a shipped photograph then takes the same path as an upload)."""
    from PIL import Image

    array = (image.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    array = array[0].numpy() if array.shape[0] == 1 else array.permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()
