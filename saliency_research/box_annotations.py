"""Object boxes of a user's data set, read from the two formats of the paper's data: one home for them.

==========================================  ====================================================================
format                                      what is read
==========================================  ====================================================================
Pascal VOC XML (ImageNet's validation       ``<annotation><filename>`` (the image's name, with or without its
boxes: one ``.xml`` per image, a folder     suffix; else the XML file's own name), ``<size><width><height>``
of them or one file)                        (the pixels the boxes are in), every ``<object><name>`` (a
                                            WNID such as ``n01440764``, or any label) with its ``<bndbox>``
                                            ``<xmin><ymin><xmax><ymax>``: pixels, 1-based and inclusive (VOC's
                                            convention; 0 is accepted as the first pixel too)
Open Images box CSV                         the header row and the columns ``ImageID``, ``LabelName``,
(``oidv6-*-annotations-bbox.csv``)          ``XMin``, ``XMax``, ``YMin``, ``YMax`` (fractions of the width and
                                            height, in [0, 1]); other columns (``Source``, ``Confidence``,
                                            ``IsOccluded``, ...) are ignored
==========================================  ====================================================================

Every box becomes a :class:`Box` in *fractions* of its image (``x0 <= x1`` in [0, 1], end-exclusive edges), so
resizing the image to the model's input (:func:`scale_box`) scales it the same way. Nothing is dropped
silently: every malformed file or row is one line of :class:`AnnotationError` naming the file (and row) and
what was expected, all of them at once (:data:`MAX_PROBLEM_LINES` shown, then a count).

Labels to a model's classes (:func:`class_index`): a class-map file (:func:`read_class_map`: ImageNet's
``LOC_synset_mapping.txt``, line i = the WNID of class i; or ``label,index`` lines for any labels, e.g. Open
Images' ``/m/...`` ids), else a label equal to one of the model's class names, else, when the annotations name
exactly 1,000 distinct WNIDs (the whole ImageNet validation set), their sorted order, which is the class order
of torchvision's ImageNet models (ILSVRC-2012's). torchvision ships the class *names* but not the WNIDs: a
partial ImageNet folder needs ``LOC_synset_mapping.txt``.
"""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Box",
    "Annotation",
    "AnnotationError",
    "MAX_PROBLEM_LINES",
    "OPEN_IMAGES_COLUMNS",
    "read_voc",
    "read_open_images",
    "read_annotations",
    "scale_box",
    "read_class_map",
    "class_index",
    "WNID",
]

MAX_PROBLEM_LINES = 20  # an error lists this many problems, then how many more there are
MAX_XML_BYTES = 1_000_000  # an ImageNet annotation is ~1 KB: a larger file is not one (and not parsed)
OPEN_IMAGES_COLUMNS = ("ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax")
WNID = re.compile(r"^n\d{8}$")  # an ImageNet (WordNet) synset id, e.g. n01440764


class AnnotationError(ValueError):
    """Malformed box annotations: one line per problem (file, row, what was expected), in ``problems``."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        shown = self.problems[:MAX_PROBLEM_LINES]
        more = len(self.problems) - len(shown)
        super().__init__("\n".join(shown + ([f"... and {more} more problem(s)"] if more else [])))


@dataclass(frozen=True)
class Box:
    """One object box in fractions of its image: ``0 <= x0 < x1 <= 1``, ``0 <= y0 < y1 <= 1`` (edges)."""

    label: str
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def area(self) -> float:
        return (self.x1 - self.x0) * (self.y1 - self.y0)


@dataclass
class Annotation:
    """The boxes of one image.

    Attributes:
        key: the image's name without suffix (how images are matched: ``ILSVRC2012_val_00000001``, an Open
            Images ``ImageID``).
        source: the file (and row) it came from, for messages.
        boxes: its :class:`Box` es (in file order).
        size: ``(width, height)`` the annotation was made on (VOC's ``<size>``); None for Open Images (fractions).
    """

    key: str
    source: str
    boxes: list[Box] = field(default_factory=list)
    size: tuple[int, int] | None = None


def _number(node: ET.Element | None, tag: str, where: str, problems: list[str]) -> float | None:
    """The number in ``<tag>`` under ``node``, or None with a problem line saying what was expected."""
    child = None if node is None else node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        problems.append(f"{where}: <{tag}> is missing; expected a number of pixels")
        return None
    try:
        return float(child.text.strip())
    except ValueError:
        problems.append(f"{where}: <{tag}> is {child.text.strip()!r}; expected a number of pixels")
        return None


def _voc_file(path: Path, problems: list[str]) -> Annotation | None:
    """One VOC file as an :class:`Annotation` (its boxes in fractions), or None with problem lines."""
    if path.stat().st_size > MAX_XML_BYTES:
        problems.append(f"{path}: {path.stat().st_size:,} bytes, not a box annotation (expected under 1 MB)")
        return None
    try:
        root = ET.parse(path).getroot()  # Python's expat refuses entity-expansion bombs (expat >= 2.4.1)
    except ET.ParseError as error:
        problems.append(f"{path}: not well-formed XML ({error}); expected a Pascal VOC <annotation> file")
        return None
    if root.tag != "annotation":
        problems.append(f"{path}: the root element is <{root.tag}>; expected a Pascal VOC <annotation>")
        return None
    name = (root.findtext("filename") or "").strip()
    key = Path(name).stem if name else path.stem
    size = None
    if root.find("size") is not None:
        width = _number(root.find("size"), "width", f"{path}: <size>", problems)
        height = _number(root.find("size"), "height", f"{path}: <size>", problems)
        if width is None or height is None:
            return None
        if width < 1 or height < 1:
            problems.append(f"{path}: <size> is {width:g} x {height:g}; expected a positive width and height")
            return None
        size = (int(width), int(height))
    annotation = Annotation(key, str(path), size=size)
    for k, obj in enumerate(root.findall("object"), start=1):
        where = f"{path}: object {k}"
        label = (obj.findtext("name") or "").strip()
        if not label:
            problems.append(f"{where}: <name> is missing; expected the object's class (a WNID such as n01440764)")
            continue
        box = obj.find("bndbox")
        if box is None:
            problems.append(f"{where} ({label}): <bndbox> is missing; expected <xmin><ymin><xmax><ymax>")
            continue
        xmin, ymin, xmax, ymax = (_number(box, tag, where, problems) for tag in ("xmin", "ymin", "xmax", "ymax"))
        if None in (xmin, ymin, xmax, ymax):
            continue
        if size is None:
            problems.append(f"{where}: <size> is missing, so the box cannot be placed; expected <size><width>")
            continue
        width, height = size
        # VOC's pixels are 1-based and inclusive: pixel xmin's left edge is xmin - 1 (0 read as the first pixel).
        if not (0 <= xmin <= xmax <= width and 0 <= ymin <= ymax <= height):
            problems.append(
                f"{where} ({label}): box xmin {xmin:g}, ymin {ymin:g}, xmax {xmax:g}, ymax {ymax:g} is outside the "
                f"{width} x {height} image or inverted; expected 0 <= xmin <= xmax <= width and "
                "0 <= ymin <= ymax <= height"
            )
            continue
        x0, y0 = max(xmin - 1, 0.0), max(ymin - 1, 0.0)
        annotation.boxes.append(Box(label, x0 / width, y0 / height, xmax / width, ymax / height))
    return annotation


def read_voc(path: str | Path) -> dict[str, Annotation]:
    """Pascal VOC annotations (ImageNet's validation boxes): a folder of ``.xml`` files, or one file.

    Returns:
        ``{image key: Annotation}`` (key: the image's name without suffix).

    Raises:
        FileNotFoundError: no such file or folder. AnnotationError: every malformed file or object, one line each
        (a folder without any ``.xml`` file is one of them).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"--boxes: {path} does not exist; expected a folder of VOC .xml files or a .csv")
    files = sorted(path.glob("*.xml")) if path.is_dir() else [path]
    if not files:
        raise AnnotationError([f"{path}: no .xml file in this folder; expected one Pascal VOC file per image"])
    problems: list[str] = []
    found: dict[str, Annotation] = {}
    for file in files:
        annotation = _voc_file(file, problems)
        if annotation is None:
            continue
        if annotation.key in found:
            first = found[annotation.key].source
            problems.append(f"{file}: a second annotation of image {annotation.key!r} (the first: {first})")
            continue
        found[annotation.key] = annotation
    if problems:
        raise AnnotationError(problems)
    return found


def read_open_images(path: str | Path) -> dict[str, Annotation]:
    """Open Images boxes from its CSV (``ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,...``).

    Returns:
        ``{ImageID: Annotation}`` with every row's box (rows of one image may be anywhere in the file).

    Raises:
        FileNotFoundError: no such file. AnnotationError: a missing column, or a row whose coordinates are not
        numbers in [0, 1] with ``XMin < XMax`` and ``YMin < YMax``: one line per row (its number and line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--boxes: {path} does not exist; expected an Open Images box CSV")
    problems: list[str] = []
    found: dict[str, Annotation] = {}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in OPEN_IMAGES_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise AnnotationError(
                [
                    f"{path}: the header lacks column(s) {missing}; expected Open Images' header "
                    f"ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,..."
                ]
            )
        for row_number, row in enumerate(reader, start=1):
            where = f"{path}, row {row_number} (line {reader.line_num})"
            image, label = (row.get("ImageID") or "").strip(), (row.get("LabelName") or "").strip()
            if not image or not label:
                problems.append(f"{where}: ImageID or LabelName is empty; expected both on every row")
                continue
            values = {}
            for column in ("XMin", "XMax", "YMin", "YMax"):
                text = (row.get(column) or "").strip()
                try:
                    values[column] = float(text)
                except ValueError:
                    problems.append(f"{where}: {column} is {text!r}; expected a fraction of the image in [0, 1]")
                    break
            if len(values) < 4:
                continue
            if not all(0.0 <= v <= 1.0 for v in values.values()):
                bad = ", ".join(f"{c} {v:g}" for c, v in values.items() if not 0.0 <= v <= 1.0)
                problems.append(
                    f"{where}: {bad} outside [0, 1]; Open Images coordinates are fractions of the width and height"
                )
                continue
            if not (values["XMin"] < values["XMax"] and values["YMin"] < values["YMax"]):
                problems.append(
                    f"{where}: XMin {values['XMin']:g} / XMax {values['XMax']:g}, YMin {values['YMin']:g} / YMax "
                    f"{values['YMax']:g}; expected XMin < XMax and YMin < YMax"
                )
                continue
            annotation = found.setdefault(image, Annotation(image, f"{path}, row {row_number}"))
            annotation.boxes.append(Box(label, values["XMin"], values["YMin"], values["XMax"], values["YMax"]))
    if problems:
        raise AnnotationError(problems)
    return found


def read_annotations(path: str | Path) -> tuple[dict[str, Annotation], str]:
    """Boxes from ``path``: a ``.csv`` file (Open Images), else a ``.xml`` file or a folder of them (VOC).

    Returns:
        ``({image key: Annotation}, format name)``; format ``"open-images-csv"`` or ``"pascal-voc-xml"``.
    """
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".csv":
        return read_open_images(path), "open-images-csv"
    return read_voc(path), "pascal-voc-xml"


def scale_box(box: Box, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``box`` in pixels of an image resized to ``size`` ``(height, width)``: ``(x0, y0, x1, y1)``, end-exclusive.

    Each edge goes to the nearest pixel edge (``floor(f * side + 0.5)``); a box thinner than a pixel keeps one.
    E.g. the fractions (0.25, 0.1, 0.75, 0.6) at 224 x 224 give (56, 22, 168, 134).
    """
    height, width = size

    def edge(fraction: float, side: int) -> int:
        return min(max(int(fraction * side + 0.5), 0), side)

    x0, y0, x1, y1 = edge(box.x0, width), edge(box.y0, height), edge(box.x1, width), edge(box.y1, height)
    x0, y0 = min(x0, width - 1), min(y0, height - 1)
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)


def read_class_map(path: str | Path, n_classes: int) -> dict[str, int]:
    """A label -> class-index map from a text file, in one of two forms.

    * ``LOC_synset_mapping.txt`` (ImageNet; any file without commas before an index): line i (non-empty lines,
      from 0) starts with the label of class i, e.g. ``n01440764 tench, Tinca tinca``; it must have
      ``n_classes`` lines.
    * ``label,index`` on every line (any labels, e.g. ``/m/0bt9lr,207`` for Open Images).

    Raises:
        FileNotFoundError: no such file. ValueError: an index outside ``0 .. n_classes - 1``, or a line-order file
        whose length is not ``n_classes`` (the line names the file and what was expected).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"--classes: {path} does not exist; expected LOC_synset_mapping.txt or label,index lines"
        )
    lines = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    pairs = [line.rsplit(",", 1) for line in lines]
    if lines and all(len(p) == 2 and p[1].strip().lstrip("-").isdigit() for p in pairs):
        mapping = {label.strip(): int(index) for label, index in pairs}
        bad = [f"{label}: {index}" for label, index in mapping.items() if not 0 <= index < n_classes]
        if bad:
            raise ValueError(f"--classes: {path}: class indices {bad[:5]} outside 0..{n_classes - 1}")
        return mapping
    if len(lines) != n_classes:
        raise ValueError(
            f"--classes: {path} has {len(lines)} lines; a line-order class map (LOC_synset_mapping.txt) needs "
            f"one per class of the model ({n_classes}), or write label,index lines"
        )
    return {line.split()[0]: index for index, line in enumerate(lines)}


def class_index(
    labels: set[str], class_names: tuple[str, ...], class_map: dict[str, int] | None
) -> tuple[dict[str, int], str]:
    """Which labels name which class of the model, and how that was decided (one line for the records).

    Order: ``class_map`` (from :func:`read_class_map`); else labels equal to a class name; else, when
    ``labels`` are exactly 1,000 WNIDs and the model has 1,000 classes, their sorted order (ILSVRC-2012's class
    order, torchvision's). Labels that map nowhere are absent from the result.
    """
    if class_map is not None:
        return {label: class_map[label] for label in labels if label in class_map}, "the --classes file"
    by_name = {name: index for index, name in enumerate(class_names)}
    named = {label: by_name[label] for label in labels if label in by_name}
    if named:
        return named, "labels equal to the model's class names"
    if len(labels) == 1000 == len(class_names) and all(WNID.match(label) for label in labels):
        return {wnid: index for index, wnid in enumerate(sorted(labels))}, (
            "the 1,000 WNIDs of the annotations in sorted order (ILSVRC-2012's class order, torchvision's)"
        )
    if any(WNID.match(label) for label in labels):
        return {}, (
            "none: torchvision ships ImageNet's class names, not its WNIDs, so WNID -> class needs --classes "
            "LOC_synset_mapping.txt (or all 1,000 classes in the annotations)"
        )
    return {}, "none: no label is a class name of the model; --classes FILE with label,index lines maps them"
