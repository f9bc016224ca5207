"""The boxes suite: the paper's experiment on a user's images with VOC XML or Open Images CSV boxes.

Small folders made here (PNG and JPEG images of different sizes), a tiny random CNN (the "your model" path) or the
planted-evidence model, tiny budgets: every method and metric end to end, the boxes scaled by hand-checked numbers,
one clear line per malformed file or row, images without a box counted and named.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from saliency_lib.evaluation.baselines import METHODS
from saliency_lib.io.models import Classifier, InputSpec
from saliency_research import box_annotations as BA
from saliency_research import boxes_data, boxes_suite
from saliency_research.cli import main


def tiny_model(size: int = 32) -> Classifier:
    """A random 3-class CNN at ``size`` px (seeded): what a user's own classifier looks like to the suite."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    net = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    spec = InputSpec(channels=3, size=(size, size), mean=(0.5,) * 3, std=(0.25,) * 3)
    return Classifier("tiny", net, spec, ("cat", "dog", "n01440764"), gradcam_layer=conv).eval().requires_grad_(False)


def write_image(path, width: int, height: int, seed: int = 0) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def voc(filename: str, width: int, height: int, objects: list[tuple]) -> str:
    parts = [f"<annotation><filename>{filename}</filename><size><width>{width}</width><height>{height}</height>"]
    parts.append("<depth>3</depth></size>")
    for name, xmin, ymin, xmax, ymax in objects:
        parts.append(
            f"<object><name>{name}</name><bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax>"
            f"<ymax>{ymax}</ymax></bndbox></object>"
        )
    return "".join(parts) + "</annotation>"


@pytest.fixture
def voc_folder(tmp_path):
    """Three images of different sizes and formats, two with VOC files; one image without any box."""
    images, boxes = tmp_path / "images", tmp_path / "boxes"
    images.mkdir(), boxes.mkdir()
    write_image(images / "a.png", 448, 224, seed=1)
    write_image(images / "b.jpg", 300, 500, seed=2)
    write_image(images / "nobox.png", 64, 64, seed=3)
    (boxes / "a.xml").write_text(voc("a", 448, 224, [("cat", 101, 51, 300, 150)]))
    # Two objects: the larger dog box and a small cat box; ImageNet's filename has no suffix.
    (boxes / "b.xml").write_text(voc("b.jpg", 300, 500, [("cat", 1, 1, 30, 50), ("dog", 31, 101, 300, 500)]))
    return images, boxes


CSV_HEADER = "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated\n"


@pytest.fixture
def csv_folder(tmp_path):
    images = tmp_path / "oi"
    images.mkdir()
    write_image(images / "0001eeaf4aed83f9.jpg", 640, 480, seed=4)
    write_image(images / "000595fe6fee6369.png", 200, 100, seed=5)
    write_image(images / "lonely.png", 50, 80, seed=6)
    table = tmp_path / "boxes.csv"
    table.write_text(
        CSV_HEADER
        + "0001eeaf4aed83f9,xclick,/m/0bt9lr,1,0.25,0.75,0.1,0.6,0,0\n"
        + "000595fe6fee6369,xclick,/m/01yrx,1,0.0,0.5,0.0,1.0,0,0\n"
        + "notinfolder,xclick,/m/01yrx,1,0.1,0.2,0.1,0.2,0,0\n"
    )
    return images, table


# ---- reading and scaling -------------------------------------------------------------------------------------


def test_voc_boxes_are_scaled_with_the_image_by_hand_checked_numbers(voc_folder):
    images, boxes = voc_folder
    data = boxes_data.load_box_data(images, boxes, tiny_model(224))
    assert data["names"] == ["a", "b"] and data["images"].shape == (2, 3, 224, 224)
    # a: 448 x 224 stretched to 224 x 224 (x halved, y kept). VOC pixels 101..300 (1-based, inclusive) are the
    # edges 100..300, so x 50..150; rows 51..150 -> edges 50..150.
    assert data["boxes"][0].tolist() == [50, 50, 150, 150]
    # b: 300 x 500 -> 224 x 224; no class map, so the largest box (the dog): edges 30..300 x 100..500
    # -> x 30 * 224/300 = 22.4 -> 22, 224; y 100 * 224/500 = 44.8 -> 45, 224.
    assert data["boxes"][1].tolist() == [22, 45, 224, 224]


def test_open_images_fractions_are_scaled_by_hand_checked_numbers(csv_folder):
    images, table = csv_folder
    data = boxes_data.load_box_data(images, table, tiny_model(224))
    first = data["names"].index("0001eeaf4aed83f9")
    # (XMin, YMin, XMax, YMax) = (0.25, 0.1, 0.75, 0.6) at 224: 56, 22.4 -> 22, 168, 134.4 -> 134.
    assert data["boxes"][first].tolist() == [56, 22, 168, 134]
    assert data["boxes"][data["names"].index("000595fe6fee6369")].tolist() == [0, 0, 112, 224]
    assert data["info"]["annotations_without_image"] == {"count": 1, "names": ["notinfolder"]}


def test_an_image_without_a_box_is_counted_and_named_not_dropped_silently(voc_folder, csv_folder):
    for images, boxes, lonely in (voc_folder + ("nobox",), csv_folder + ("lonely",)):
        info = boxes_data.load_box_data(images, boxes, tiny_model())["info"]
        assert info["without_box"] == {"count": 1, "names": [lonely]}


def test_malformed_xml_is_one_line_naming_the_file_and_what_was_expected(voc_folder):
    images, boxes = voc_folder
    (boxes / "broken.xml").write_text("<annotation><filename>x</filename><size>")
    (boxes / "outside.xml").write_text(voc("c", 100, 100, [("cat", 10, 10, 120, 50)]))
    (boxes / "letters.xml").write_text(voc("d", 100, 100, [("cat", "ten", 10, 20, 50)]))
    (boxes / "wrongroot.xml").write_text("<svg></svg>")
    with pytest.raises(BA.AnnotationError) as caught:
        BA.read_voc(boxes)
    problems = caught.value.problems
    assert len(problems) == 4, problems
    broken, letters, outside, root = sorted(problems)
    assert "broken.xml" in broken and "not well-formed XML" in broken and "Pascal VOC" in broken
    assert "letters.xml: object 1" in letters and "<xmin> is 'ten'" in letters and "expected a number" in letters
    assert "outside.xml: object 1 (cat)" in outside and "xmax 120" in outside and "expected 0 <= xmin" in outside
    assert "wrongroot.xml" in root and "<svg>" in root and "expected a Pascal VOC <annotation>" in root
    assert all("\n" not in p for p in problems)


def test_malformed_and_out_of_range_csv_rows_are_one_line_each_naming_the_row(tmp_path):
    table = tmp_path / "bad.csv"
    table.write_text(
        CSV_HEADER
        + "good,xclick,/m/1,1,0.1,0.2,0.1,0.2,0,0\n"
        + "big,xclick,/m/1,1,0.1,1.2,0.1,0.2,0,0\n"
        + "word,xclick,/m/1,1,left,0.2,0.1,0.2,0,0\n"
        + "flipped,xclick,/m/1,1,0.5,0.2,0.1,0.2,0,0\n"
    )
    with pytest.raises(BA.AnnotationError) as caught:
        BA.read_open_images(table)
    big, word, flipped = caught.value.problems
    assert "row 2 (line 3)" in big and "XMax 1.2 outside [0, 1]" in big and "fractions" in big
    assert "row 3 (line 4)" in word and "XMin is 'left'" in word and "expected a fraction" in word
    assert "row 4 (line 5)" in flipped and "expected XMin < XMax" in flipped
    header = tmp_path / "header.csv"
    header.write_text("ImageID,XMin,XMax\nx,0.1,0.2\n")
    with pytest.raises(BA.AnnotationError, match=r"lacks column\(s\) \['LabelName', 'YMin', 'YMax'\]"):
        BA.read_open_images(header)


def test_cli_prints_each_problem_on_one_line_and_fails(voc_folder, tmp_path, capsys):
    images, boxes = voc_folder
    (boxes / "broken.xml").write_text("<annotation>")
    code = main(["evaluate", "--suite", "boxes", "--images", str(images), "--boxes", str(boxes), "--model",
                 "planted-evidence", "--out", str(tmp_path / "out"), "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "1 problem(s) in the boxes" in err and "broken.xml: not well-formed XML" in err


# ---- targets and the class map -------------------------------------------------------------------------------


def test_annotated_target_uses_the_class_map_and_counts_the_fallbacks(voc_folder, tmp_path):
    images, boxes = voc_folder
    model = tiny_model()
    # Labels equal to class names map by name: a -> cat (0), b -> its largest mapped box, the dog (1).
    data = boxes_data.load_box_data(images, boxes, model, target="annotated")
    assert data["targets"].tolist() == [0, 1]
    assert data["info"]["counts"] == {"target_annotated": 2, "box_of_target_class": 2}
    # A class map that maps only "cat": b's target is then its cat box's class, and that box is chosen.
    classes = tmp_path / "map.txt"
    classes.write_text("cat,2\n")
    data = boxes_data.load_box_data(images, boxes, model, target="annotated", classes=classes)
    assert data["targets"].tolist() == [2, 2]
    assert data["boxes"][1].tolist() == [0, 0, 3, 3]  # cat pixels 1..30 x 1..50 of 300 x 500, at 32 px: 3.2
    # No label maps (a line-order map of other labels): every target falls back to the top-1, counted.
    classes.write_text("x\ny\nz\n")
    data = boxes_data.load_box_data(images, boxes, model, target="annotated", classes=classes)
    assert data["info"]["counts"]["target_top1_fallback"] == 2


def test_class_index_reads_imagenet_wnids_in_sorted_order_only_when_all_are_there():
    wnids = {f"n{k:08d}" for k in range(1000)}
    names = tuple(f"class {k}" for k in range(1000))
    mapping, how = BA.class_index(wnids, names, None)
    assert mapping["n00000000"] == 0 and mapping["n00000999"] == 999 and "sorted" in how
    mapping, how = BA.class_index(set(list(wnids)[:10]), names, None)
    assert mapping == {} and "LOC_synset_mapping.txt" in how
    mapping, how = BA.class_index({"/m/0bt9lr"}, names, None)
    assert mapping == {} and "label,index" in how


def test_a_line_order_class_map_needs_one_line_per_class(tmp_path):
    path = tmp_path / "LOC_synset_mapping.txt"
    path.write_text("n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n")
    assert BA.read_class_map(path, 2) == {"n01440764": 0, "n01443537": 1}
    with pytest.raises(ValueError, match="has 2 lines.*needs one per class of the model \\(3\\)"):
        BA.read_class_map(path, 3)


# ---- the suite end to end ------------------------------------------------------------------------------------


def test_every_method_and_metric_on_a_voc_folder_with_records_cis_and_resume(voc_folder, tmp_path):
    images, boxes = voc_folder
    out = tmp_path / "out"
    options = dict(out_dir=out, budget=8, runtime="torch", block_size=1, progress=False)
    result = boxes_suite.run_boxes(images, boxes, tiny_model(), **options)
    payload = json.loads((out / "evaluation_boxes.json").read_text())
    assert {r["method"] for r in payload["records"]} == set(METHODS)
    for record in payload["records"]:
        assert record["n"] == 2 and record["dataset"] == "boxes"
        assert set(record["metrics"]) == {"deletion", "insertion", "pointing", "iou", "energy"}
        for summary in record["metrics"].values():
            assert summary["ci95"][0] <= summary["mean"] <= summary["ci95"][1]
        assert record["info"]["without_box"]["names"] == ["nobox"]
        assert set(record["per_image"]) == {"a", "b"}
    rows = {r["method"]: r for r in payload["records"]}
    assert rows["oise"]["model_calls"] == rows["rise"]["model_calls"] == 8
    assert "vs_rise" in rows["oise"]
    table = (out / "evaluation_boxes.md").read_text()
    assert "decides nothing" in table and "--suite boxes" in table and "nobox" in table
    # The same call again reuses every finished block: the same numbers.
    again = boxes_suite.run_boxes(images, boxes, tiny_model(), **options)
    assert [r["metrics"] for r in again["records"]] == [r["metrics"] for r in result["records"]]


def test_cli_runs_an_open_images_csv_with_a_named_model(csv_folder, tmp_path, capsys):
    images, table = csv_folder
    out = tmp_path / "out"
    code = main(["evaluate", "--suite", "boxes", "--images", str(images), "--boxes", str(table), "--model",
                 "planted-evidence", "--methods", "oise", "rise", "random", "--budget", "8", "--runtime", "torch",
                 "--out", str(out), "--no-progress"])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "without box: 1 (not evaluated): ['lonely']" in printed
    payload = json.loads((out / "evaluation_boxes.json").read_text())
    assert {r["method"] for r in payload["records"]} == {"oise", "rise", "random"}
    assert payload["records"][0]["n"] == 2 and "--boxes" in payload["command"]


def test_the_shipped_photographs_come_with_our_boxes():
    from saliency_lib.evaluation.datasets import MORE_PHOTO_BOXES, PHOTO_BOXES

    images, names, annotations = boxes_data.shipped_photographs()
    assert images.shape == (len(PHOTO_BOXES) + len(MORE_PHOTO_BOXES), 3, 224, 224)
    assert names == list(PHOTO_BOXES) + list(MORE_PHOTO_BOXES)
    for name, entry in {**PHOTO_BOXES, **MORE_PHOTO_BOXES}.items():
        (box,) = annotations[name].boxes
        assert list(BA.scale_box(box, (224, 224))) == entry["box"] and box.label == entry["top1"]


def test_a_weights_file_is_safely_loaded_its_architecture_told_and_its_sha256_given(tmp_path):
    from saliency_lib.io.assets import sha256_file
    from saliency_lib.io.models import load

    path = tmp_path / "lite0.pt"
    torch.save(load("efficientnet-lite0").net.state_dict(), path)
    model, weights = boxes_data.resolve_model(path, sha256=sha256_file(path))
    assert model.name == "efficientnet-lite0" and weights["sha256"] == sha256_file(path)
    other = tmp_path / "other.pt"
    torch.save({"w": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="holds weights of none of .*pass --arch"):
        boxes_data.resolve_model(other, sha256=sha256_file(other))
