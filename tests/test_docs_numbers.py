"""Every result the README, the docs and the notebooks' markdown quote by hand is the results files' own.

The numbers in cog's generated blocks are written from the results files (``saliency_research/bench/sync_docs.py``,
checked by
``tests/test_sync_docs.py``), so this test skips them. The rest of the text still quotes about 320 numbers typed by
hand (most in ``docs/results.md``, the card and notebooks 04 and 06, next to their commands): a section (the text under
one heading) that quotes a number with three decimals (an AUC, a rate, a difference) or a two-decimal number must
name the results file it comes from (``evaluation_paper.md``, ``budget_curve.{json,md}``, ...) or the notebook that
prints it (``03_optimization_loop.ipynb``), and each number must appear in one of the files it names (the ``.md`` as
written, the ``.json`` to that many decimals, a notebook in its outputs). So a re-run that changes a result fails
here (one-decimal percentages and seconds too: ``80.8%``, ``8.3 s``) until the text is updated. Numbers that are
settings, not results (the lr 0.02 of the update rule, ImageNet's mean), are listed in ``NOT_RESULTS`` with what
they are.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"

# Numbers in the prose that are settings or constants, not measurements (file -> number -> what it is).
NOT_RESULTS = {
    "README.md": {"3.10": "Python version"},
    "install.md": {"2.14": "torch pin", "0.29": "torchvision pin"},
    "method.md": {
        "0.02": "the paper's learning rate",
        "0.96": "the authors' explainer.py subtracts 0.96 x mean",
        "0.005": "the paper's realism weight",
        "0.01": "the latent search's learning rate",
        "0.43": "the paper's published IoU (one image)",
        "0.71": "the paper's published IoU (one image)",
        "0.45": "the paper's published IoU (one image)",
    },
    "instructor.md": {"0.98": "a worked example's cell value"},
    "saliency_card.md": {"0.02": "the paper's learning rate"},
    "library.md": {"0.02": "the paper's learning rate"},
    "02_pixel_weighting.ipynb": {
        "0.02": "the paper's learning rate",
        "0.99": "a worked example's probability",
        "0.95": "a worked example's probability",
        "0.05": "a worked example's probability",
    },
    "03_optimization_loop.ipynb": {"0.96": "the authors' explainer.py defines a helper that subtracts 0.96 x mean"},
    "04_evaluation.ipynb": {"0.96": "the authors' explainer.py defines a helper that subtracts 0.96 x mean"},
    "05_reconstruction.ipynb": {"0.005": "the paper's realism weight", "0.01": "the latent search's learning rate"},
    "06_your_own_model.ipynb": {
        "0.485": "ImageNet mean (torchvision)",
        "0.456": "ImageNet mean (torchvision)",
        "0.406": "ImageNet mean (torchvision)",
        "0.229": "ImageNet std (torchvision)",
        "0.224": "ImageNet std (torchvision)",
        "0.225": "ImageNet std (torchvision)",
    },
}
# The paper's own numbers, labelled as the paper's wherever they are quoted by hand (agreement on its one lynx image;
# the generated Part B table quotes all five).
PAPER = {"88.9%", "64.7%"}
# Sections that are quizzes or worked examples: their numbers are the question's, not results.
NOT_RESULT_SECTIONS = ("Quiz",)

NUMBER = re.compile(r"(?<![\d.\w])\d+\.(?:\d{2,3}(?![\d])|\d%|\d(?= s\b))")
CITATION = re.compile(r"([A-Za-z0-9_]+)(?:\.\{[a-z,]+\}|\.(?:md|json|png|ipynb))")


GENERATED = re.compile(r"<!-- \[\[\[cog .*?\[\[\[end\]\]\] -->", re.DOTALL)


def documents() -> dict[str, str]:
    """name -> markdown text: the README, docs/*.md and the notebooks' markdown cells, without cog's generated
    blocks."""
    texts = {"README.md": (REPO / "README.md").read_text()}
    texts |= {p.name: p.read_text() for p in sorted((REPO / "docs").glob("*.md"))}
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        texts[path.name] = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return {name: GENERATED.sub("(generated block)", text) for name, text in texts.items()}


@cache
def source_numbers(stem: str, decimals: int, percent: bool = False) -> frozenset[str]:
    """The numbers a results file (``.md`` and ``.json``) or a notebook's outputs hold, written to ``decimals``
    (``percent``: the one-decimal percentages, ``80.8%``)."""
    text = ""
    for path in (RESULTS / f"{stem}.md", RESULTS / f"{stem}.json", REPO / "data" / f"{stem}.json"):
        if path.exists():
            text += path.read_text()
    notebook = REPO / "notebooks" / f"{stem}.ipynb"
    if notebook.exists():
        for cell in json.loads(notebook.read_text())["cells"]:
            for output in cell.get("outputs", []):
                text += "".join(output.get("text", "")) + "".join(output.get("data", {}).get("text/plain", ""))
    if percent:  # 80.8%: as written in a .md, or a share in a .json
        found = set(re.findall(r"\d+\.\d%", text))
        found |= {f"{100 * float(x):.1f}%" for x in re.findall(r"(?<![\d.])0\.\d{3,}", text)}
        return frozenset(found)
    found = set(re.findall(rf"\d+\.\d{{{decimals}}}(?!\d)", text))
    found |= {f"{float(x):.{decimals}f}" for x in re.findall(rf"\d+\.\d{{{decimals + 1},}}", text)}
    return frozenset(found)


def known_sources() -> set[str]:
    stems = {p.name.split(".")[0] for p in RESULTS.iterdir() if p.is_file()}
    return stems | {p.stem for p in (REPO / "notebooks").glob("*.ipynb")} | {"MANIFEST"}  # data/MANIFEST.json


def sections(text: str) -> list[str]:
    return re.split(r"(?m)^(?=#{1,4} )", text)


def unsourced(name: str, text: str) -> list[str]:
    """``"<heading>: <number>"`` for each number of ``text`` that no file its section names holds."""
    sources, allowed, problems = known_sources(), NOT_RESULTS.get(name, {}), []
    for section in sections(text):
        heading = section.strip().splitlines()[0] if section.strip() else ""
        if any(word in heading for word in NOT_RESULT_SECTIONS):
            continue
        numbers = [n for n in NUMBER.findall(section) if n not in allowed and n not in PAPER]
        if not numbers:
            continue
        cited = {stem for stem in CITATION.findall(section) if stem in sources}
        for number in numbers:
            percent = number.endswith("%")
            decimals = 1 if percent else len(number.split(".")[1])
            if not any(number in source_numbers(stem, decimals, percent) for stem in cited):
                problems.append(f"{heading[:60]!r}: {number} (cites {sorted(cited) or 'no results file'})")
    return problems


@pytest.mark.parametrize("name", sorted(documents()))
def test_every_quoted_result_is_in_the_file_its_section_names(name):
    problems = unsourced(name, documents()[name])
    assert not problems, f"{name}: numbers without a source\n" + "\n".join(problems)


def test_a_stale_number_is_caught():
    section = "## A\n\nOISE points in 0.948 of the canvases (`evaluation_paper.md`), RISE in 0.976.\n"
    assert unsourced("x.md", section) == []
    assert unsourced("x.md", section.replace("0.948", "0.949")) == ["'## A': 0.949 (cites ['evaluation_paper'])"]
    assert unsourced("x.md", "## B\n\nOISE 0.948.\n") == ["'## B': 0.948 (cites no results file)"]


def test_the_readme_is_a_front_door():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 160
    for page in ("results.md", "scale-out.md", "troubleshooting.md", "library.md", "install.md", "method.md"):
        assert f"](docs/{page})" in readme


@pytest.mark.parametrize("name", ["README.md", *sorted(p.name for p in (REPO / "docs").glob("*.md"))])
def test_relative_links_resolve(name):
    path = REPO / name if name == "README.md" else REPO / "docs" / name
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
        if target.startswith(("http://", "https://", "#", "mailto:")):
            continue
        if not (path.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert not broken, f"{name}: broken links {broken}"
