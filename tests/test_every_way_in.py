"""Every way in of docs/install.md gets what `make lab` gets: the upload limit, no news pop-up, panels drawn unrun.

The settings travel with the package: the files of ``jupyter-config/`` are pyproject.toml's data-files, which every
install (wheel or editable) puts in the environment's ``etc/jupyter``, where every Jupyter server, JupyterLab and
Voila started from that environment reads them. The notebooks are trusted by one command, the same on every OS
(``python -m saliency_lib trust``).

The browser test follows docs/install.md's pip way in a fresh environment outside the checkout: a venv in a
temporary folder, the package installed from the built wheel by that environment's own pip (the dependencies come
from this environment: their site-packages through a ``.pth`` line, and their installed Jupyter files, JupyterLab's
assets, the widgets' extension, the kernel spec, hard-linked as their RECORD lists them, so nothing is downloaded);
``python -m saliency_lib trust`` in a copy of the checkout's notebooks; a plain ``jupyter lab`` (``python -m
jupyterlab``, what that environment's ``jupyter lab`` runs) with an empty user configuration. In Chromium: every
committed panel renders unrun, JupyterLab's news is off, and after Run All in notebook 06 a 15 MB upload in its
panel arrives and a 25 MB one gets the one-line refusal.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import urllib.request
from pathlib import Path

import pytest
import test_browser
import test_wheel
import tomllib

from conftest import make_dry_run
from saliency_lib.course import tutorial
from saliency_lib.io import uploads

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "jupyter-config"
TORNADO_DEFAULT = 10 * 2**20  # tornado.websocket's websocket_max_message_size when none is set
NEWS = "@jupyterlab/apputils-extension:notification"
wheel = test_wheel.wheel  # the module's fixture: the wheel built from this checkout


def _data_files() -> dict[str, str]:
    """pyproject.toml's data-files: each file of jupyter-config/ -> the folder it is installed to."""
    table = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    return {source: destination for destination, sources in table.items() for source in sources}


def _shipped() -> dict[str, Path]:
    """Each installed file (relative to the environment) -> its source in jupyter-config/."""
    return {f"{folder}/{Path(source).name}": REPO / source for source, folder in _data_files().items()}


def _limit(path: Path, app: str) -> int:
    return json.loads(path.read_text())[app]["tornado_settings"]["websocket_max_message_size"]


# ---- the files, and what reads them ----------------------------------------------------------------------------


def test_every_file_of_jupyter_config_is_installed_under_etc_jupyter():
    files = {str(path.relative_to(REPO)) for path in CONFIG.rglob("*") if path.is_file()}
    assert set(_data_files()) == files
    for source, folder in _data_files().items():  # the same layout: jupyter-config/ mirrors etc/jupyter
        assert folder == str(Path("etc/jupyter") / Path(source).relative_to("jupyter-config").parent)


def test_the_settings_carry_the_message_limit_derived_from_the_upload_limit():
    assert _limit(CONFIG / "jupyter_server_config.json", "ServerApp") == uploads.MAX_MESSAGE_BYTES
    assert _limit(CONFIG / "voila.json", "Voila") == uploads.MAX_MESSAGE_BYTES
    # A 20 MB file base64-encoded in JSON (x 4/3) still fits, and files somewhat over 20 MB arrive (to be refused).
    assert uploads.MAX_MESSAGE_BYTES >= uploads.MAX_BYTES * 4 / 3 + 2**20
    assert uploads.MAX_MESSAGE_BYTES > 2.5 * TORNADO_DEFAULT and uploads.MAX_BYTES > TORNADO_DEFAULT


def test_jupyter_server_voila_and_jupyterlab_read_them(tmp_path, monkeypatch):
    from jupyter_core.paths import jupyter_path
    from jupyter_server.serverapp import ServerApp
    from jupyterlab_server.settings_utils import get_settings
    from voila.app import Voila

    shutil.copytree(CONFIG, tmp_path / "config")
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "config"))  # a configuration directory like etc/jupyter
    server = ServerApp()
    server.load_config_file()
    assert server.tornado_settings["websocket_max_message_size"] == uploads.MAX_MESSAGE_BYTES
    voila = Voila()
    voila.load_config_file("voila", path=voila.config_file_paths)
    assert voila.tornado_settings["websocket_max_message_size"] == uploads.MAX_MESSAGE_BYTES
    schemas = Path(sys.prefix) / "share" / "jupyter" / "lab" / "schemas"
    if not (schemas / "@jupyterlab" / "apputils-extension" / "notification.json").exists():
        pytest.skip(f"JupyterLab's settings schemas are not in {schemas}")
    found, _ = get_settings(
        str(tmp_path / "app-settings"),  # no overrides.json of its own
        str(schemas),
        str(tmp_path / "user-settings"),  # a learner who never changed a setting
        NEWS,
        labextensions_path=jupyter_path("labextensions"),
    )
    defaults = found["schema"]["properties"]  # defaults, not locks: a learner can still turn the news on
    assert defaults["fetchNews"]["default"] == "false" and defaults["checkForUpdates"]["default"] is False


def test_the_upload_limit_is_stated_identically_everywhere():
    stated = f"{uploads.MAX_BYTES / 1e6:g} MB"  # "20 MB"
    with pytest.raises(ValueError) as refusal:
        uploads.check_image(b"\x89PNG\r\n\x1a\n" + bytes(uploads.MAX_BYTES))
    assert f"over the {stated} limit" in str(refusal.value)
    notebook = json.loads((REPO / "notebooks" / "06_your_own_model.ipynb").read_text())
    text = "".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "markdown")
    assert f"at most {stated}" in text
    install = (REPO / "docs" / "install.md").read_text()
    assert f"uploads up to {stated}" in install
    for source in (text, install):  # no other size limit stated beside it
        assert not re.search(r"\b(?!20 MB)\d+(\.\d+)? MB limit", source)


# ---- make, Binder and the commands of docs/install.md -----------------------------------------------------------


@pytest.mark.parametrize("target", ["lab", "present"])
def test_make_lab_and_present_use_the_installed_settings(target):
    # A changed settings file makes the install run again (pip puts the files in .venv/etc/jupyter) before the server.
    plan = make_dry_run("-W", "jupyter-config/jupyter_server_config.json", target)
    install = "-m pip install --progress-bar on -e '.[test]'"
    server = ".venv/bin/jupyter lab " if target == "lab" else "from voila.app import main"
    assert install in plan and server in plan, plan
    assert plan.index(install) < plan.index(server), plan
    assert "server_settings" not in plan


def test_postbuild_installs_trusts_and_copies_the_installed_files():
    post_build = (REPO / "postBuild").read_text()
    assert "pip install --no-deps -e .\n" in post_build
    assert "python -m saliency_lib trust notebooks\n" in post_build
    (copied,) = re.findall(r"for file in (.*); do", post_build)
    assert {f"etc/jupyter/{name}" for name in copied.split()} == set(_shipped())


def _ways_in() -> dict[str, list[str]]:
    """docs/install.md's ways in: the heading of each, and the commands of its code blocks."""
    ways, name = {}, None
    text = (REPO / "docs" / "install.md").read_text()
    for level, heading, block in re.findall(r"^(##+) ([^\n]+)$|^```\w*\n(.*?)^```", text, flags=re.M | re.S):
        if heading:
            name = heading if level == "###" else None  # the ways are the ### headings of "## Every way in"
        elif name:
            lines = [line.split("  #")[0].strip() for line in block.splitlines()]
            ways.setdefault(name, []).extend(line for line in lines if line and not line.startswith("#"))
    return ways


def test_every_way_in_trusts_the_notebooks_and_ends_by_opening_notebook_00():
    ways = _ways_in()
    assert {
        "make (Linux, macOS)",
        "pip on Windows (PowerShell or cmd)",
        "pip on macOS or Linux",
        "conda or mamba",
    } <= set(ways), list(ways)
    for name, commands in ways.items():
        if name.startswith("make"):
            assert commands[-1] == "make lab", (name, commands)  # make lab copies to work/ and trusts the copy
            continue
        assert any(re.search(r"python -m saliency_lib trust$", command) for command in commands), (name, commands)
        assert commands[-1].endswith("jupyter lab notebooks/00_start_here.ipynb"), (name, commands)
        assert len(commands) <= 5, (name, commands)  # conda: create, activate, install, trust, open


def test_windows_runs_the_same_entry_points_as_macos_and_linux():
    ways = _ways_in()
    windows = [line.replace(".venv\\Scripts\\", ".venv/bin/") for line in ways["pip on Windows (PowerShell or cmd)"]]
    posix = ways["pip on macOS or Linux"]
    # The same commands after the interpreter's path: py -m venv / python3 -m venv, then the same module entry points.
    assert [line.split(" ", 1)[1] for line in windows[1:]] == [line.split(" ", 1)[1] for line in posix[1:]]
    assert windows[0] == "py -m venv .venv" and posix[0] == "python3 -m venv .venv"
    assert not any("'" in line or "*" in line for line in windows), windows  # no POSIX quoting, no shell glob


def test_trust_finds_the_notebooks_without_a_shell_glob(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "a.ipynb").write_text("{}")
    (tmp_path / "notebooks" / "notes.md").write_text("")
    assert tutorial.notebooks_to_trust([], here=tmp_path) == [tmp_path / "notebooks" / "a.ipynb"]
    with pytest.raises(ValueError, match=r"notes\.md: not a notebook \(\.ipynb\) or a folder of notebooks$"):
        tutorial.notebooks_to_trust([tmp_path / "notebooks" / "notes.md"])
    with pytest.raises(ValueError, match=r"no \.ipynb files in .*: name the notebooks or folders to trust$"):
        tutorial.notebooks_to_trust([tmp_path])


def test_the_trust_command_signs_the_notebooks_folder_here(tmp_path, monkeypatch, capsys):
    from nbformat import read
    from nbformat.sign import NotebookNotary

    from saliency_lib.cli import main

    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))  # this test's own nbsignatures.db
    shutil.copytree(REPO / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns("solutions"))
    monkeypatch.chdir(tmp_path)
    assert main(["trust"]) == 0
    assert capsys.readouterr().out.startswith(f"trusted {len(tutorial.NOTEBOOKS)} notebook(s) in notebooks")
    notary = NotebookNotary()
    assert all(notary.check_signature(read(path, as_version=4)) for path in (tmp_path / "notebooks").glob("*.ipynb"))
    assert main(["trust", "missing.ipynb"]) == 1
    assert capsys.readouterr().err.strip().count("\n") == 0  # one line


# ---- fresh environments: the wheel, an editable install, Binder's postBuild ------------------------------------


def _link_dependency_files(prefix: Path) -> None:
    """Hard-link the Jupyter files this environment's packages installed (share/jupyter, etc/jupyter: JupyterLab's
    assets, the widgets' extension, the kernel spec, each package's server extension file), as their RECORD lists
    them, into ``prefix``: what pip installing them there would have put. Nothing else of this environment's
    etc/jupyter (such as settings an older `make lab` wrote) comes along."""
    site = Path(sysconfig.get_paths()["purelib"])
    base = Path(sys.prefix).resolve()
    for dist in importlib.metadata.distributions(path=[str(site)]):
        if dist.metadata["Name"].replace("_", "-").lower() == "saliency-tutorial":
            continue
        for file in dist.files or ():
            located = Path(file.locate()).resolve()
            if not located.is_relative_to(base) or located.relative_to(base).parts[:2] not in (
                ("share", "jupyter"),
                ("etc", "jupyter"),
            ):
                continue
            target = prefix / located.relative_to(base)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():  # a hard link (the server refuses static files that are links out of its tree)
                try:
                    os.link(located, target)
                except OSError:  # another file system
                    shutil.copy2(located, target)


def fresh_environment(folder: Path) -> Path:
    """A virtual environment in ``folder`` whose dependencies come from this one (see the module's docstring) and
    whose own ``pip`` is the one pip's console script would run; returns its Python."""
    python, site = test_wheel.bare_environment(folder)
    (folder / "bin" / "pip").write_text(
        f"#!{python}\nimport sys\nfrom pip._internal.cli.main import main\nsys.exit(main())\n"
    )
    (folder / "bin" / "pip").chmod(0o755)
    _link_dependency_files(folder)
    return python


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No PYTHONPATH (the checkout must stay out of sight), no network for pip, a user configuration of its own."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SALIENCY_DATA_DIR", "JUPYTER_PATH")}
    env.update(
        PIP_NO_INDEX="1",
        PIP_NO_BUILD_ISOLATION="0",  # pip reads this variable the other way round: 0 = no isolation
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        JUPYTER_CONFIG_DIR=str(tmp_path / "user-config"),
        JUPYTER_DATA_DIR=str(tmp_path / "user-data"),
        **extra,
    )
    return env


READ_BACK = """
import json, sys
from jupyter_server.serverapp import ServerApp
from voila.app import Voila
import saliency_lib
server = ServerApp(); server.load_config_file()
voila = Voila(); voila.load_config_file("voila", path=voila.config_file_paths)
print(json.dumps({"server": server.tornado_settings.get("websocket_max_message_size"),
                  "voila": voila.tornado_settings.get("websocket_max_message_size"),
                  "prefix": sys.prefix, "package": saliency_lib.__file__}))
"""


def _installed_settings(python: Path, prefix: Path, env: dict) -> dict:
    for name, source in _shipped().items():
        assert (prefix / name).read_bytes() == source.read_bytes(), name
    result = subprocess.run([str(python), "-c", READ_BACK], capture_output=True, text=True, env=env, cwd=prefix)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.mark.slow(reason="builds a wheel and two environments (about 20-70 s)")
def test_a_wheel_and_an_editable_install_both_put_the_settings_where_jupyter_reads_them(wheel, tmp_path):
    env = _clean_env(tmp_path)
    python = fresh_environment(tmp_path / "wheel-env")
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True, env=env)
    found = _installed_settings(python, tmp_path / "wheel-env", env)
    assert found["server"] == found["voila"] == uploads.MAX_MESSAGE_BYTES, found
    assert found["package"].startswith(str(tmp_path / "wheel-env")), found

    python = fresh_environment(tmp_path / "editable-env")  # PEP 660 leaves data files out; setup.py puts them in
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", "-e", str(REPO)], check=True, env=env)
    found = _installed_settings(python, tmp_path / "editable-env", env)
    assert found["server"] == found["voila"] == uploads.MAX_MESSAGE_BYTES, found


CHECKOUT = ["saliency_lib", "data", "notebooks", "jupyter-config", "pyproject.toml", "setup.py", "MANIFEST.in"]


# conda-forge's part cannot run here
@pytest.mark.slow(reason="Binder's postBuild in a fresh environment (about 30-60 s)")
def test_binder_postbuild_runs_in_a_fresh_environment(tmp_path):
    from nbformat import read
    from nbformat.sign import NotebookNotary

    checkout = tmp_path / "repo"
    for name in [*CHECKOUT, "README.md", "postBuild"]:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, checkout / name, ignore=shutil.ignore_patterns("__pycache__", "shipped_data"))
        else:
            shutil.copy2(source, checkout / name)
    prefix = tmp_path / "kernel-env"
    python = fresh_environment(prefix)
    env = _clean_env(tmp_path, PATH=f"{prefix / 'bin'}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(["bash", "postBuild"], cwd=checkout, env=env, capture_output=True, text=True)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    found = _installed_settings(python, prefix, env)
    assert found["server"] == uploads.MAX_MESSAGE_BYTES and found["package"].startswith(str(checkout)), found
    for name, source in _shipped().items():  # and in the user's configuration, for a server in another environment
        copied = tmp_path / "user-config" / Path(name).relative_to("etc/jupyter")
        assert copied.read_bytes() == source.read_bytes(), name
    notary = NotebookNotary(data_dir=str(tmp_path / "user-data"))
    assert all(notary.check_signature(read(path, as_version=4)) for path in (checkout / "notebooks").glob("*.ipynb"))


# ---- the browser: docs/install.md's pip way in, followed in a fresh environment ---------------------------------

UPLOAD_MB, TOO_BIG_MB = 15, 25


# A class: `--dist loadscope` (make test) then runs it on one worker while the tests above run on the other.
class TestPlainJupyterLab:
    @pytest.mark.slow(reason="a fresh environment from the wheel, then JupyterLab in Chromium (about 70-100 s)")
    @pytest.mark.browser  # a fresh environment from the wheel, plain jupyter lab, Chromium: about 70 s
    def test_from_the_wheel_it_draws_the_panels_and_takes_uploads(self, wheel, tmp_path, monkeypatch):
        _plain_jupyter_lab_from_the_wheel(wheel, tmp_path, monkeypatch)


def _plain_jupyter_lab_from_the_wheel(wheel, tmp_path: Path, monkeypatch) -> None:
    test_browser._require_browser()
    env = _clean_env(tmp_path)
    python = fresh_environment(tmp_path / "env")
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True, env=env)
    # The learner's folder: the checkout's notebooks (a copy: nothing the browser does reaches the committed files).
    root = tmp_path / "learner"
    shutil.copytree(REPO / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns("__pycache__"))
    trusted = subprocess.run(
        [str(python), "-m", "saliency_lib", "trust"], cwd=root, env=env, capture_output=True, text=True
    )
    assert trusted.returncode == 0 and "trusted 7 notebook(s) in notebooks" in trusted.stdout, trusted
    for name in ("PYTHONPATH", "SALIENCY_DATA_DIR", "JUPYTER_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JUPYTER_DATA_DIR", env["JUPYTER_DATA_DIR"])  # where trust signed them
    empty = tmp_path / "user-config"  # nothing of ours: the environment's etc/jupyter must do it all
    empty.mkdir(exist_ok=True)
    with test_browser._lab(tmp_path, root, python=python, config=empty, cwd=root) as (base, token):
        with urllib.request.urlopen(f"{base}/lab/api/settings/{NEWS}?token={token}", timeout=30) as reply:
            defaults = json.load(reply)["schema"]["properties"]
        assert defaults["fetchNews"]["default"] == "false" and defaults["checkForUpdates"]["default"] is False
        notebook = root / "notebooks" / "06_your_own_model.ipynb"
        with test_browser._browser_page(notebook, "autosave is off in the test's JupyterLab") as page:
            test_browser.panels_render_unrun(page, base, token, root, "notebooks")
            state = test_browser._run_all_cells(page, base, token, "notebooks/06_your_own_model.ipynb")
            assert state == "done", page.inner_text("body")[-2000:]
            _uploads_in_the_panel(page, tmp_path, tmp_path / "lab.log")
            assert page.get_by_text(test_browser.NEWS_QUESTION).count() == 0, "the news pop-up is showing"


def _uploads_in_the_panel(page, tmp_path: Path, log: Path) -> None:
    """Notebook 06's panel after Run All: a 15 MB PNG arrives and is used; a 25 MB one is refused in one line."""
    status = page.locator(".saliency-status").last
    button = page.locator(".widget-upload").last  # the panel's (section 3 has one too)
    small = test_browser._noise_png(tmp_path / "noise.png", UPLOAD_MB)
    assert 10 * 2**20 < len(small) < uploads.MAX_BYTES, len(small)
    text = test_browser._upload(page, tmp_path / "noise.png", log, "", button, status, ("image noise.png",))
    assert "Press Run." in text, text
    big = test_browser._noise_png(tmp_path / "big.png", TOO_BIG_MB)
    assert uploads.MAX_BYTES < len(big) < uploads.MAX_MESSAGE_BYTES, len(big)
    text = test_browser._upload(page, tmp_path / "big.png", log, text, button, status, ("big.png:",))
    stated = f"{uploads.MAX_BYTES / 1e6:g} MB"
    assert text.startswith(f"big.png: the upload is {len(big) / 1e6:.1f} MB, over the {stated} limit;"), text
    assert "make the picture smaller" in text and "\n" not in text
