"""Real-browser tests, Debian's Chromium driven by Playwright: JupyterLab on notebook 03, and notebook 06 served as
a standalone page by Voila (`make present`: the page renders its widgets, a click on Run draws a new figure).

Starts ``jupyter lab`` on 127.0.0.1 (a free port, a random token, ``SALIENCY_FAST=1``), opens
``notebooks/03_optimization_loop.ipynb``, runs all cells from the Run menu, then moves the frame slider of the first
loop panel and clicks its Run button, and checks that the rendered figure changes each time. A screenshot goes to
``test-artifacts/``. The server is stopped by its process id.

Every server starts with the Jupyter settings every install of the package puts in its environment's
``etc/jupyter`` (the files of ``jupyter-config/``, copied into the server's own configuration directory). With
them, a 15 MB PNG chosen in an upload box (a one-cell notebook, in JupyterLab and in Voila) reaches the kernel
byte for byte, and a 27 MB one gets the upload check's one-line refusal; with tornado's default websocket limit
(10 MiB) both are dropped on the way. And JupyterLab shows no news pop-up: its news and update checks are off by
default. ``tests/test_every_way_in.py`` checks the same in a fresh environment installed from the wheel.

The committed notebooks, opened without running them in a learner's `make lab` copy (copied and trusted by
``tutorial.working_copy``): every saved panel renders as a panel, from the widget state stored with the notebook;
none shows its Python repr (``LoopPanel(children=(...``), the text line left for viewers without widgets, or
"Error displaying widget: model not found". The Voila page is checked for the same.

Skipped (with the reason) when /usr/bin/chromium or Playwright is missing, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow(reason="JupyterLab or Voila in Chromium: 30-70 s each")]

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
NOTEBOOK = "notebooks/03_optimization_loop.ipynb"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the browser test must run; `make browser-deps` installs chromium)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _require_browser() -> None:
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium; `make browser-deps`)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[test]')")


def stop_server(server: subprocess.Popen, log) -> None:
    """Stop a server (and the kernels it started, in its own process group) by its process id; close its log."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=5)
    log.close()


def _make_settings(tmp_path) -> Path:
    """The Jupyter settings every install of the package puts in the environment's etc/jupyter (jupyter-config/,
    pyproject.toml's data-files), copied into the test server's own configuration directory (its JUPYTER_CONFIG_DIR),
    so the test does not depend on when this environment was installed; returns that directory."""
    config = tmp_path / "config"
    shutil.copytree(REPO / "jupyter-config", config)
    return config


@contextmanager
def _lab(tmp_path, root: Path, *, python: str | Path = sys.executable, config: Path | None = None, cwd: Path = REPO):
    """A JupyterLab server on a free port serving ``root``, with `make lab`'s settings (or the configuration directory
    ``config``), started by ``python -m jupyterlab`` (what the ``jupyter lab`` of that Python's environment runs) in
    ``cwd``; yields (base_url, token); stopped by its PID afterwards."""
    _require_browser()  # before starting anything
    port, token = _free_port(), secrets.token_hex(16)
    settings = tmp_path / "settings"  # a learner's own settings (no news pop-up: `make lab`'s defaults see to it)
    # Never write the test's (fast-mode) outputs over the committed notebook.
    (settings / "@jupyterlab" / "docmanager-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings").write_text(
        json.dumps({"autosave": False})
    )
    # Start the notebook's kernel without asking (no "Select Kernel" dialog).
    (settings / "@jupyterlab" / "notebook-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"autoStartDefaultKernel": True})
    )
    env = dict(
        os.environ,
        SALIENCY_FAST="1",
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTER_CONFIG_DIR=str(config or _make_settings(tmp_path)),
        PYTHONUNBUFFERED="1",
    )
    log = open(tmp_path / "lab.log", "w")
    command = [
        str(python),
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
        "--ServerApp.port_retries=0",
    ]
    server = subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + EVENT_LIMIT
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise RuntimeError("JupyterLab did not start:\n" + (tmp_path / "lab.log").read_text()[-3000:])
            time.sleep(0.5)
        yield base, token
    finally:
        stop_server(server, log)


@pytest.fixture
def lab_server(tmp_path):
    """JupyterLab on the repository (as `make lab`, on a free port); yields (base_url, token)."""
    with _lab(tmp_path, REPO) as server:
        yield server


# Every wait below is for an event the page shows (a status line, a figure's new source), never a fixed pause. The
# limit only ends a test that hangs: on a fully loaded 2-core machine (the other test worker and a CPU-heavy process
# running) a kernel reply can take minutes, so each wait gets the same generous limit.
EVENT_LIMIT = 600.0


def _wait_for(predicate, what: str, page=None, interval: float = 0.5, timeout: float = EVENT_LIMIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    if page is not None:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "browser_03_timeout.png"), full_page=True)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextmanager
def _browser_page(notebook: Path, unchanged: str):
    """A Chromium page (1500 x 1000, headless) for one test; closed afterwards, and ``notebook`` checked to be
    byte for byte what it was (``unchanged`` says why it must be)."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    saved = notebook.read_bytes()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1500, "height": 1000})
        finally:
            browser.close()
    assert notebook.read_bytes() == saved, unchanged


def _run_all_cells(page, base: str, token: str, notebook: str) -> str:
    """Open ``notebook`` (a path under the server's root) in JupyterLab, wait for its kernel, run Run > Run All
    Cells as a learner would, and wait for the cells to finish: "done", or "error" when a cell shows an error."""
    page.goto(f"{base}/lab/tree/{notebook}?token={token}", timeout=EVENT_LIMIT * 1000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=EVENT_LIMIT * 1000)
    # The kernel is up when the toolbar's status says idle (answer a kernel dialog if one still comes).

    def kernel_ready():
        dialog = page.locator(".jp-Dialog button", has_text="Select")
        if dialog.count():
            dialog.first.click()
        with urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=5) as reply:
            sessions = json.load(reply)
        return (
            any(
                session["path"].endswith(Path(notebook).name) and session["kernel"]["execution_state"] == "idle"
                for session in sessions
            )
            and page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count() > 0
        )

    _wait_for(kernel_ready, "the kernel to start", page)

    def run_all():
        # Run > Run All Cells, as a learner would; True once the cells are queued.
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        prompts = lambda: page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()  # noqa: E731
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            # Queued and running cells show [*] (the saved notebook's own numbers do not count).
            if any("*" in prompt for prompt in prompts()):
                return True
            time.sleep(0.2)
        return False

    _wait_for(run_all, "Run All Cells to start the cells", page, interval=0)

    def finished():
        # Cells run in order, so the run is over when the last code cell shows its number (Lab may not
        # render off-screen cells, so only the last one is checked) or a cell shows an error.
        if page.locator("[data-mime-type='application/vnd.jupyter.error']").count():
            return "error"
        last = page.locator(".jp-CodeCell").last
        last.scroll_into_view_if_needed()
        prompt = last.locator(".jp-InputPrompt").inner_text().strip()
        return "done" if re.fullmatch(r"\[\d+\]:", prompt) else None

    return _wait_for(finished, "all cells to run", page, interval=1.0)


def _notebook_03_in_a_real_browser(lab_server):
    base, token = lab_server
    with _browser_page(REPO / NOTEBOOK, "the browser run must not save over the notebook") as page:
        state = _run_all_cells(page, base, token, NOTEBOOK)
        page.screenshot(path=str(ARTIFACTS / "browser_03_after_run_all.png"), full_page=False)
        assert state == "done", (
            "a cell raised an error: "
            + " | ".join(page.locator("[data-mime-type='application/vnd.jupyter.error']").all_inner_texts())[:2000]
        )

        figure = page.locator("img.saliency-figure").first
        figure.scroll_into_view_if_needed()
        slider = page.locator(".saliency-scrub").first
        frames_before = figure.get_attribute("src")
        png_before = figure.screenshot()

        # Move the frame slider: drag its handle to the far left (the first recorded step).
        handle = slider.locator(".noUi-handle").first
        box = handle.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] - 600, box["y"] + box["height"] / 2, steps=10)
        page.mouse.up()
        _wait_for(lambda: figure.get_attribute("src") != frames_before, "the figure to follow the slider", page)
        png_moved = figure.screenshot()
        assert png_moved != png_before
        page.screenshot(path=str(ARTIFACTS / "browser_03_slider_moved.png"), full_page=False)

        # Click Run: the loop runs in the kernel's background thread and redraws the figure when done.
        src_moved = figure.get_attribute("src")
        panel_status = page.locator(".saliency-status").first
        assert panel_status.inner_text().startswith("run 1: done")  # the notebook's own run
        page.locator("button.saliency-run").first.click()
        _wait_for(lambda: panel_status.inner_text().startswith("run 2: done"), "the run to finish", page)
        # Status last, so "done" means the figure is drawn: the last step again, not the first one the slider showed.
        _wait_for(lambda: figure.get_attribute("src") != src_moved, "the figure to update after Run", page)
        png_after_run = figure.screenshot()
        assert png_after_run != png_moved
        figure.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "browser_03.png"), full_page=False)


# ---- the committed notebooks, opened without running them (as a learner's `make lab` copy) ---------------------

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# What a learner must never see: a widget's Python repr, or a widget whose model is gone.
BROKEN_WIDGET = re.compile(r"\w+\(children=\(|Error displaying widget|model not found")


def _widget_outputs(notebook: Path) -> int:
    import nbformat

    cells = nbformat.read(notebook, as_version=4).cells
    return sum(WIDGET_VIEW in out.get("data", {}) for cell in cells for out in cell.get("outputs", []))


def _shut_down_kernels(base: str, token: str) -> None:
    """Ends every session of the server (REST API), so the next notebook starts alone."""
    with urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=10) as reply:
        sessions = json.load(reply)
    for session in sessions:
        request = urllib.request.Request(f"{base}/api/sessions/{session['id']}?token={token}", method="DELETE")
        urllib.request.urlopen(request, timeout=30).close()


# Output areas that hold a rendered widget (textContent: it also sees cells the browser skips drawing), and a
# summary of every output area for a failure message.
RENDERED = """() => Array.from(document.querySelectorAll('.jp-OutputArea-output'))
    .filter(e => e.querySelector('.jupyter-widgets')).length"""
OUTPUTS = """() => Array.from(document.querySelectorAll('.jp-OutputArea-output'))
    .map(e => (e.querySelector('.jupyter-widgets') ? 'widget: ' : 'text: ') + e.textContent.slice(0, 60))"""
FIRST_TRY = 120.0  # seconds before one reload (what a learner does when a panel stays empty)


def _committed_notebooks_show_their_panels(tmp_path, monkeypatch) -> None:
    from saliency_lib.course import tutorial

    # Our own Jupyter data folder (its nbsignatures.db): the copies are trusted there, and no other test that signs
    # notebooks at the same time can hold that database while the server checks a signature.
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))
    root = tmp_path / "root"
    tutorial.working_copy(root / "work", report=None)  # what `make lab` opens: a copy, trusted for this user
    with _lab(tmp_path, root) as (base, token), _browser_page(root / "work" / "00_start_here.ipynb", "") as page:
        panels_render_unrun(page, base, token, root, "work")


def panels_render_unrun(page, base: str, token: str, root: Path, folder: str) -> None:
    """Open every notebook of ``root / folder`` (the server's root and a folder under it) without running it: each
    saved panel renders as a panel, none as text or a broken widget. One kernel at a time, shut down after each."""
    from saliency_lib.course import tutorial

    for entry in tutorial.NOTEBOOKS:
        expected = _widget_outputs(root / folder / entry.file)
        assert expected > 0, entry.file
        url = f"{base}/lab/tree/{folder}/{entry.file}?reset&token={token}"  # ?reset: only this notebook open
        tries = []
        for limit in (FIRST_TRY, EVENT_LIMIT):
            page.goto(url, timeout=EVENT_LIMIT * 1000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=EVENT_LIMIT * 1000)
            try:
                _wait_for(lambda n=expected: page.evaluate(RENDERED) >= n, "the panels", page, timeout=limit)
                break
            except AssertionError:
                tries.append(page.evaluate(OUTPUTS))
                _shut_down_kernels(base, token)
        page.screenshot(path=str(ARTIFACTS / f"unrun_{entry.number}.png"), full_page=False)
        assert len(tries) < 2, f"{entry.file}: {expected} saved panels did not render, twice: {tries}"
        if tries:  # JupyterLab's widget manager can miss the saved state while the kernel starts; say so
            warnings.warn(f"{entry.file}: the panels rendered after one reload; first: {tries[0]}", stacklevel=1)
        text = page.evaluate(  # the outputs only: notebook 00's own text quotes the errors to look out for
            "() => Array.from(document.querySelectorAll('.jp-OutputArea')).map(e => e.textContent).join('\\n')"
        )
        broken = BROKEN_WIDGET.search(text)
        assert broken is None, f"{entry.file}: shows {text[max(0, broken.start() - 80) : broken.end() + 80]!r}"
        assert "an interactive panel: run the notebook" not in text, f"{entry.file}: a panel shows as text"
        assert page.evaluate(RENDERED) == expected, (entry.file, page.evaluate(OUTPUTS), expected)
        _shut_down_kernels(base, token)  # one kernel at a time, as a learner's 2 GB allows


# ---- notebook 06 as a standalone page (Voila, `make present`) ---------------------------------------------------

PAGE_NOTEBOOK = "notebooks/06_your_own_model.ipynb"


@contextmanager
def _voila(tmp_path, notebook: str, cwd: Path = REPO):
    """Voila serving ``notebook`` (a path from ``cwd``) on a free port, with `make present`'s flags and settings (fast
    mode); yields (the URL, the server's log); stopped by PID."""
    _require_browser()
    if subprocess.run([sys.executable, "-c", "import voila"], capture_output=True).returncode:
        _missing("voila is not installed (pip install -e '.[test]')")
    port = _free_port()
    env = dict(
        os.environ,
        SALIENCY_FAST="1",
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTER_CONFIG_DIR=str(_make_settings(tmp_path)),
        PYTHONUNBUFFERED="1",
    )
    log = open(tmp_path / "voila.log", "w")
    # The same flags as `make present` (Makefile), on a free port.
    command = [
        sys.executable,
        "-m",
        "voila",
        notebook,
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        "--Voila.port_retries=0",
        "--VoilaConfiguration.progressive_rendering=True",
    ]
    server = subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + EVENT_LIMIT
        while True:  # the port answers (a GET of the page would start a kernel: the browser does that)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise RuntimeError("Voila did not start:\n" + (tmp_path / "voila.log").read_text()[-3000:])
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/", tmp_path / "voila.log"
    finally:
        stop_server(server, log)


@pytest.fixture
def voila_server(tmp_path):
    """Voila serving notebook 06 (as `make present`, on a free port); yields (the URL, the server's log)."""
    with _voila(tmp_path, PAGE_NOTEBOOK) as server:
        yield server


def _notebook_06_as_a_standalone_page(voila_server):
    url, log = voila_server
    with _browser_page(REPO / PAGE_NOTEBOOK, "serving the page must not change the notebook") as page:
        page.goto(url, timeout=EVENT_LIMIT * 1000)
        status = page.locator(".saliency-status").first

        def panel_ran():
            # The notebook itself runs the panel once (section 7); an error output means a cell failed.
            if page.locator(
                ".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr'] .ansi-red-fg, "
                "[data-mime-type='application/vnd.jupyter.error']"
            ).count():
                return "error"
            return "done" if status.count() and "run 1: done" in status.inner_text() else None

        try:
            state = _wait_for(panel_ran, "the page to run the notebook and its panel", page)
        finally:
            page.screenshot(path=str(ARTIFACTS / "browser_06_page.png"), full_page=False)
        assert state == "done", "a cell raised an error on the page:\n" + log.read_text()[-3000:]
        text = page.inner_text("body")
        broken = BROKEN_WIDGET.search(page.evaluate("() => document.body.textContent"))
        assert broken is None, f"the page shows a broken widget: {broken.group(0)!r}"
        assert "cfg = tutorial.setup(seed=0)" not in text and "def my_wrap" not in text, "the page shows code"

        # The controls rendered: the model dropdown with the models and the Run button.
        models = [m.replace("\xa0", " ") for m in page.locator(".saliency-model select option").all_inner_texts()]
        assert any("EfficientNet-Lite0" in m for m in models) and any("ResNet50" in m for m in models)
        assert any("your model" in m for m in models), models
        run = page.locator("button.saliency-run").first
        assert run.is_visible() and run.is_enabled()

        # A click runs the methods in the kernel's background thread and draws a new figure.
        figure = page.locator("img.saliency-figure").first
        figure.scroll_into_view_if_needed()
        before = figure.get_attribute("src")
        run.click()
        _wait_for(lambda: "run 2: done" in status.inner_text(), "the run started by the click", page)
        # The panel sets its status last, so "done" means the figure is drawn. The same photograph and methods may
        # give the same picture again (then the image keeps its source): check that one is shown, not that it changed.
        assert figure.is_visible() and figure.get_attribute("src") and before
        assert "OISE" in status.inner_text() and "RISE" in status.inner_text()
        assert BROKEN_WIDGET.search(page.evaluate("() => document.body.textContent")) is None
        figure.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "browser_06.png"), full_page=False)


# ---- an upload over tornado's 10 MiB websocket default reaches the kernel ---------------------------

# The smallest page with an upload box: the box, and a line the kernel writes when the file has arrived (through
# saliency_lib.io.uploads, as notebook 06's panel reads it): its size and sha256.
UPLOAD_CELL = """\
import hashlib

import ipywidgets

from saliency_lib.io import uploads

upload = ipywidgets.FileUpload(accept=".png", multiple=False, description="Upload image")
received = ipywidgets.HTML("nothing received yet")
received.add_class("upload-received")


def show(change):
    try:
        ((name, content),) = uploads.upload_contents(upload.value)
        info = uploads.check_image(content)
        received.value = (
            f"received {name}: {len(content)} bytes, sha256 {hashlib.sha256(content).hexdigest()}, "
            f"{info.format} {info.width} x {info.height}"
        )
    except Exception as error:
        received.value = f"refused: {error}"


upload.observe(show, names="value")
ipywidgets.VBox([upload, received])
"""
UPLOAD_MB = 15  # over tornado's default websocket limit (10 MiB), under the upload limit (uploads.MAX_BYTES)
TOO_BIG_MB = 27  # the second file: over the upload limit, so the kernel must answer with the refusal line


def _upload_notebook(tmp_path) -> Path:
    import nbformat

    folder = tmp_path / "notebooks"
    folder.mkdir()
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(UPLOAD_CELL)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "upload.ipynb"
    nbformat.write(notebook, path)
    return path


def _noise_png(path: Path, megabytes: float) -> bytes:
    """A PNG of random pixels (it does not compress) of about ``megabytes`` MB; returns its bytes."""
    import numpy as np
    from PIL import Image

    side = round((megabytes * 1e6 / 3) ** 0.5)
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, compress_level=1)
    return path.read_bytes()


def _upload(page, picture: Path, log: Path, before: str, button=None, received=None, answers=("received", "refused")):
    """Choose ``picture`` in the page's upload box (``button``, default the first); the kernel's line (``received``,
    default the upload cell's) once it changes from ``before`` and starts with one of ``answers``."""
    received = received or page.locator(".upload-received")
    button = button or page.locator(".widget-upload").first
    with page.expect_file_chooser(timeout=EVENT_LIMIT * 1000) as chooser:
        button.click()
    chooser.value.set_files(str(picture))

    def arrived():
        # A message over the server's limit closes the kernel's websocket: the page reconnects ("Restoring
        # connection" in the log) and the file never arrives, so that ends the wait at once.
        if "Restoring connection" in log.read_text():
            return "dropped"
        text = received.inner_text()
        return text if text != before and text.startswith(answers) else None

    try:
        text = _wait_for(arrived, f"the kernel to receive {picture.name}", page)
    finally:
        page.screenshot(path=str(ARTIFACTS / f"browser_upload_{log.stem}.png"), full_page=False)
    assert text != "dropped", (
        f"the server dropped a {picture.stat().st_size / 1e6:.1f} MB upload (its websocket message limit):\n"
        + log.read_text()[-2000:]
    )
    return text


def _upload_reaches_the_kernel(page, tmp_path, log: Path) -> None:
    """Choose a ~15 MB noise PNG in the page's upload box: the kernel must report every byte (size and sha256).
    Then a ~27 MB one: the kernel must answer with the upload check's one-line refusal, not silence."""
    from saliency_lib.io import uploads

    received = page.locator(".upload-received")
    _wait_for(lambda: received.count() and "nothing received" in received.inner_text(), "the upload box", page)
    data = _noise_png(tmp_path / "noise.png", UPLOAD_MB)
    assert 10 * 2**20 < len(data) < uploads.MAX_BYTES, len(data)
    text = _upload(page, tmp_path / "noise.png", log, "")
    digest = hashlib.sha256(data).hexdigest()
    assert text.startswith(f"received noise.png: {len(data)} bytes, sha256 {digest}, PNG"), text

    big = _noise_png(tmp_path / "big.png", TOO_BIG_MB)
    assert uploads.MAX_BYTES < len(big) < uploads.MAX_MESSAGE_BYTES, len(big)
    text = _upload(page, tmp_path / "big.png", log, text)
    assert text.startswith(f"refused: the upload is {len(big) / 1e6:.1f} MB, over the"), text
    assert "make the picture smaller" in text and "\n" not in text


NEWS_QUESTION = "Would you like to get notified about official Jupyter news?"  # JupyterLab 4's first-start toast


def _large_upload_in_jupyterlab(tmp_path) -> None:
    notebook = _upload_notebook(tmp_path)
    with _lab(tmp_path, notebook.parent) as (base, token):
        # `make lab`'s defaults turn JupyterLab's news off (the learner's own settings are empty here).
        plugin = "@jupyterlab/apputils-extension:notification"
        with urllib.request.urlopen(f"{base}/lab/api/settings/{plugin}?token={token}", timeout=30) as reply:
            defaults = json.load(reply)["schema"]["properties"]
        assert defaults["fetchNews"]["default"] == "false", defaults["fetchNews"]
        assert defaults["checkForUpdates"]["default"] is False, defaults["checkForUpdates"]
        with _browser_page(notebook, "the browser run must not save over the notebook") as page:
            state = _run_all_cells(page, base, token, notebook.name)
            assert state == "done", page.inner_text("body")[-2000:]
            _upload_reaches_the_kernel(page, tmp_path, tmp_path / "lab.log")
            # By now (the page up for a while) JupyterLab would have asked about the news, over the notebook.
            assert page.get_by_text(NEWS_QUESTION).count() == 0, "the news pop-up is showing"


def _large_upload_in_voila(tmp_path) -> None:
    notebook = _upload_notebook(tmp_path)
    with _voila(tmp_path, notebook.name, cwd=notebook.parent) as (url, log):
        with _browser_page(notebook, "serving the page must not change the notebook") as page:
            page.goto(url, timeout=EVENT_LIMIT * 1000)
            _upload_reaches_the_kernel(page, tmp_path, log)


# A class each, so that `--dist loadscope` (make test) can run the browser tests on both workers at once.
class TestJupyterLab:
    def test_notebook_03_in_a_real_browser(self, lab_server):
        _notebook_03_in_a_real_browser(lab_server)


class TestCommittedNotebooks:
    def test_every_committed_notebook_opened_unrun_shows_its_panels(self, tmp_path, monkeypatch):
        _committed_notebooks_show_their_panels(tmp_path, monkeypatch)


class TestVoila:
    def test_notebook_06_as_a_standalone_page(self, voila_server):
        _notebook_06_as_a_standalone_page(voila_server)


class TestLargeUploadInJupyterLab:
    def test_a_15_mb_upload_reaches_the_kernel_and_27_mb_gets_one_line(self, tmp_path):
        _large_upload_in_jupyterlab(tmp_path)


class TestLargeUploadInVoila:
    def test_a_15_mb_upload_reaches_the_kernel_and_27_mb_gets_one_line(self, tmp_path):
        _large_upload_in_voila(tmp_path)
