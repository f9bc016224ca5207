"""Which web browsers are installed here: what ``make check`` reports when Python's ``webbrowser`` finds none.

``webbrowser`` (what JupyterLab uses to open a page) looks for graphical browsers only when there is a display, so a
Debian server or container with ``chromium`` installed has a browser it does not report::

    find_browsers()          # [("chromium", PosixPath("/usr/bin/chromium")), ...]
    playwright_browsers()    # Playwright's own Chromium executables, newest first
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["BROWSER_COMMANDS", "playwright_browsers", "find_browsers"]

#: Browsers looked for on ``PATH`` when Python's ``webbrowser`` (what JupyterLab uses) finds none: it looks for
#: graphical browsers only when there is a display, so a Debian server or container with ``chromium`` installed
#: has a browser it does not report.
BROWSER_COMMANDS = (
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "chrome",
    "microsoft-edge",
    "firefox",
)


def playwright_browsers() -> list[Path]:
    """The Chromium executables Playwright installed (``playwright install chromium``), newest first.

    Looks in ``$PLAYWRIGHT_BROWSERS_PATH`` (``0``: inside the playwright package), else Playwright's cache
    (``~/.cache/ms-playwright`` on Linux, ``~/Library/Caches/ms-playwright`` on macOS, ``%LOCALAPPDATA%``
    on Windows).
    """
    setting = os.environ.get("PLAYWRIGHT_BROWSERS_PATH", "")
    if setting == "0":
        try:
            import playwright

            roots = [Path(playwright.__file__).parent / "driver" / "package" / ".local-browsers"]
        except ImportError:
            roots = []
    elif setting:
        roots = [Path(setting).expanduser()]
    else:
        home = Path.home()
        roots = [
            home / ".cache" / "ms-playwright",
            home / "Library" / "Caches" / "ms-playwright",
            Path(os.environ.get("LOCALAPPDATA", home / "AppData" / "Local")) / "ms-playwright",
        ]
    inside = (
        "chrome-linux/chrome",
        "chrome-linux64/chrome",
        "chrome-mac/Chromium.app/Contents/MacOS/Chromium",
        "chrome-mac-arm64/Chromium.app/Contents/MacOS/Chromium",
        "chrome-win/chrome.exe",
        "chrome-win64/chrome.exe",
    )
    found = []
    for root in roots:
        for folder in sorted(root.glob("chromium-*"), reverse=True):  # chromium-1140 before chromium-1105
            found += [folder / part for part in inside if (folder / part).is_file()]
    return found


def find_browsers(path: str | None = None) -> list[tuple[str, Path]]:
    """Installed browsers, ``(name, executable)``: :data:`BROWSER_COMMANDS` on ``path`` (default ``$PATH``), then
    Playwright's Chromium (:func:`playwright_browsers`)."""
    import shutil

    found = []
    for command in BROWSER_COMMANDS:
        where = shutil.which(command, path=path)
        if where and not any(Path(where).resolve() == Path(seen).resolve() for _, seen in found):
            found.append((command, Path(where)))
    found += [("Playwright's Chromium", executable) for executable in playwright_browsers()]
    return found
