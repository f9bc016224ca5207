"""The install: environment.yml matches pyproject.toml, and the two README commands exist and are wired up."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib
import yaml

REPO = Path(__file__).resolve().parent.parent
# conda-forge names that differ from PyPI's
CONDA_TO_PYPI = {"pytorch": "torch"}


def _split(requirement: str) -> tuple[str, str]:
    """('name', 'pin') with the pin normalised to pip syntax (conda's `=x` is pip's `==x`)."""
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement)
    name, pin = match.group(1).lower().replace("_", "-"), match.group(2).strip()
    pin = pin.split("=cpu")[0]  # build string of the conda CPU variant
    if re.match(r"^=[^=]", pin):
        pin = "=" + pin
    return CONDA_TO_PYPI.get(name, name), pin


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return dict(_split(requirement) for requirement in project["dependencies"])


def _environment() -> dict[str, str]:
    spec = yaml.safe_load((REPO / "environment.yml").read_text())
    packages: dict[str, str] = {}
    for entry in spec["dependencies"]:
        items = entry["pip"] if isinstance(entry, dict) else [entry]
        for item in items:
            name, pin = _split(item)
            if name not in ("python", "pip"):
                packages[name] = pin
    return packages


def test_environment_yml_parses_and_uses_conda_forge_cpu_pytorch():
    spec = yaml.safe_load((REPO / "environment.yml").read_text())
    assert spec["channels"] == ["conda-forge"]
    assert any(isinstance(item, str) and item.startswith("pytorch=") and "cpu" in item for item in spec["dependencies"])


def test_environment_yml_names_the_same_packages_and_pins_as_pyproject():
    assert _environment() == _pyproject()


def test_torch_pins_are_exact():
    pins = _pyproject()
    assert pins["torch"] == "==2.14.1" and pins["torchvision"] == "==0.29.1"


def test_every_dependency_says_what_uses_it():
    lines = (REPO / "pyproject.toml").read_text().splitlines()
    start = lines.index("dependencies = [")
    block = lines[start + 1 : lines.index("]", start)]
    for number, line in enumerate(block):
        if line.strip().startswith('"'):
            assert block[number - 1].strip().startswith("#") or block[number - 2].strip().startswith("#"), line


def test_make_and_ci_run_the_readme_commands():
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^lab:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "00_start_here.ipynb" in makefile and "--nbval-lax" in makefile
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci  # the README's commands and Binder link: tests/test_docs_numbers.py (the front door)


def test_make_speed_runs_the_benchmarks_speed_module():
    """`make speed` runs a module of the research bench that exists (not a path that moved)."""
    import importlib.util

    from conftest import make_dry_run

    module = re.search(r"-m (saliency_research\.bench\.\w+)", make_dry_run("speed"))
    assert module and module.group(1) == "saliency_research.bench.speed"
    assert importlib.util.find_spec(module.group(1)) is not None


def test_make_lab_serves_without_a_display_and_opens_notebook_00():
    import os

    from conftest import make_dry_run

    env = {key: value for key, value in os.environ.items() if key != "DISPLAY"}
    # -o: treat the install stamp as up to date.
    plan = make_dry_run("-o", ".venv/.installed", "lab", env=env)
    assert "--no-browser" in plan
    # Learners work on a git-ignored copy (work/), so autosave never rewrites the committed notebooks.
    assert "-m saliency_lib.course.tutorial working-copy work" in plan
    assert "--LabApp.default_url=/lab/tree/work/00_start_here.ipynb" in plan
    assert plan.index("working-copy") < plan.index("jupyter lab")
    assert "/work/" in (REPO / ".gitignore").read_text().splitlines()
    if os.geteuid() == 0:
        assert "--allow-root" in plan  # Jupyter refuses to start as root otherwise (containers, Binder-like VMs)


def test_the_first_install_shows_progress_and_can_take_the_cpu_build_of_torch():
    import subprocess

    from conftest import make_dry_run

    def plan(*extra):
        return make_dry_run("-W", "pyproject.toml", ".venv/.installed", *extra)

    default = plan()
    assert "--quiet" not in default and "--progress-bar on" in default and "echo" in default
    assert "download.pytorch.org/whl/cpu" not in default
    cpu = plan("CPU=1")
    assert "--index-url https://download.pytorch.org/whl/cpu" in cpu
    pins = subprocess.run(
        ["bash", "-c", "grep -oE '\"torch(vision)?==[^\"]+\"' pyproject.toml | tr -d '\"'"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert pins == ["torch==2.14.1", "torchvision==0.29.1"]


def test_the_licence_is_an_spdx_string_for_setuptools_77():
    text = (REPO / "pyproject.toml").read_text()
    project = tomllib.loads(text)
    assert project["project"]["license"] == "MIT"  # a table is deprecated (setuptools prints a banner)
    assert "setuptools>=77" in project["build-system"]["requires"]


def _present_plan(*variables: str) -> str:
    """The voila line `make present VARIABLES` runs (-n), install and settings stamps taken as done."""
    from conftest import make_dry_run

    plan = make_dry_run("-o", ".venv/.installed", "present", *variables)
    return next(line for line in plan.splitlines() if "voila.app" in line)


def test_make_present_takes_the_variable_the_page_names():
    import json

    # Notebook 06 (the page itself) tells people which command runs the full budgets: it must do so.
    notebook = json.loads((REPO / "notebooks" / "06_your_own_model.ipynb").read_text())
    text = "\n".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "markdown")
    named = re.findall(r"`make present ([A-Z_]+=0)`", text)
    assert named, "notebook 06 no longer names the command for the full run"
    for variable in named:
        assert _present_plan(variable).startswith("SALIENCY_FAST=0 "), variable
    assert _present_plan().startswith("SALIENCY_FAST=1 ")  # fast by default
    assert _present_plan("FAST=0").startswith("SALIENCY_FAST=0 ")
    assert _present_plan("PRESENT_FAST=0").startswith("SALIENCY_FAST=0 ")  # the earlier name still works
    assert _present_plan("FAST=1", "PRESENT_FAST=0").startswith("SALIENCY_FAST=1 ")
    # The help names the variable that works.
    makefile = (REPO / "Makefile").read_text()
    assert "FAST=0" in makefile.split("help:")[1].split("\n\n")[0]


@pytest.mark.slow(reason="starts Voila through make and stops it (about 15 s each)")
@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_ctrl_c_stops_make_present(tmp_path, sigint):
    """Ctrl+C (SIGINT to the terminal's process group) stops `make present` and its Voila server, also when the
    command was started with SIGINT ignored (a script's `make present &`), where Voila once stopped only on SIGTERM."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    if subprocess.run([sys.executable, "-c", "import voila"], capture_output=True).returncode:
        pytest.skip("voila is not installed (pip install -e '.[test]')")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    venv = Path(sys.prefix)  # this environment's python and voila, its install and settings stamps taken as done
    command = ["make", "-o", f"{venv}/.installed", "present"]
    command += [f"VENV={venv}", f"PRESENT_PORT={port}"]
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint == "ignored" else None
    log = open(tmp_path / "present.log", "w")
    server = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=ignore
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "present.log").read_text()
                time.sleep(0.5)
        os.killpg(server.pid, signal.SIGINT)  # what Ctrl+C in a terminal does
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("`make present` still runs 30 s after Ctrl+C (SIGINT to its process group)")
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        log.close()
