"""Test order for `make test` (pytest -n 2 --dist loadscope), here at the root so it also sees notebooks/, and the
two tiers: `make test-fast` runs what is not marked slow (the unit tests and one run of each notebook), `make test`
everything. A slow test says why in one line: ``@pytest.mark.slow(reason="...")``; collection fails without it.

Shared fixtures live in tests/conftest.py.
"""

from __future__ import annotations

import pytest

# ---- which worker runs what (`make test`: pytest -n 2 --dist loadscope) -----------------------------------------
# loadscope keeps a module's tests (and so its module-scoped fixtures: the quick suite, the golden outputs) and each
# notebook's nbval cells on one worker; the long notebook reruns and browser tests are one class each, so they
# spread. The long ones go first: a long one queued last would leave the other worker idle at the end.
LONG_FIRST = ("notebooks/", "test_notebook_reruns.py", "test_browser.py", "test_portability.py", "test_wheel.py")


def pytest_collection_modifyitems(config, items):
    unexplained = [item.nodeid for item in items for mark in item.iter_markers("slow") if not mark.kwargs.get("reason")]
    if unexplained:
        raise pytest.UsageError(
            f"{len(unexplained)} slow test(s) without a reason, e.g. {unexplained[0]}: write "
            '@pytest.mark.slow(reason="what makes it slow, about how long")'
        )
    items.sort(key=lambda item: not any(part in item.nodeid for part in LONG_FIRST))  # stable within each half
