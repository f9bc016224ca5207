"""The package's structure, held by a test: what may import what.

- Imports only run downwards (:data:`LAYERS`): ``method`` and ``plots`` at the bottom, then ``io``, then
  ``evaluation``, then ``generative``, with ``course`` and ``cli`` on top. A subpackage imports only from lower
  ones, never the package's face (``saliency_lib/__init__.py``, which hands the short names on) save
  ``__version__``.
- No module is over :data:`MAX_LINES` lines.
- No private name crosses a module border: ``from .masks import _x`` or ``masks._x`` in another module fails.
  The one private *module*, ``method._checks``, is the shared argument checks: library modules may import it.
- No library module imports the widgets (widgets import the library, never the other way round).
- No notebook or exercise solution imports a ``_`` module or a ``_`` name of the library.
- No import cycle between library modules (imports inside functions count too: a lazy import hides a cycle,
  it does not remove it).
- Every module of ``cli`` stays a thin shim (parse arguments, call the library).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "saliency_lib"
CLI_MAX_STATEMENTS = 40
MAX_LINES = 500
CHECKS = "saliency_lib.method._checks"
WIDGETS = "saliency_lib.course.widgets"
# Subpackage -> floor: a module may import only from subpackages on a lower floor (or its own subpackage).
LAYERS = {"method": 0, "plots": 0, "io": 1, "evaluation": 2, "generative": 3, "course": 4, "cli": 5}


def module_name(path: Path) -> str:
    """``saliency_lib/widgets/view.py`` -> ``saliency_lib.widgets.view`` (``__init__`` -> the package)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def library_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def resolve(current: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute module named by ``from <level dots><target> import ...`` inside ``current``."""
    if level == 0:
        return target or ""
    base = current.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([target] if target else []))


def imports_of(source: str, current: str, is_package: bool = False):
    """Every import of ``source`` as ``(imported module, imported names, line)``, nested ones included."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append((alias.name, [], node.lineno, alias.asname or alias.name.split(".")[0]))
        elif isinstance(node, ast.ImportFrom):
            target = resolve(current, is_package, node.level, node.module)
            found.append((target, [a.name for a in node.names], node.lineno, None))
    return found


def private_uses(source: str, current: str, is_package: bool, known: set[str]) -> list[str]:
    """Private names of *other* library modules that ``source`` imports or reads (``module._name``).

    ``current`` is the module's dotted name (``"notebook"`` for notebook code); library modules (those in
    ``known``) may import the private :data:`CHECKS` module, nothing else may.
    """
    problems, aliases = [], {}
    may_use_checks = current in known

    def private_module(module: str) -> bool:
        return module.split(".")[-1].startswith("_") and not (module == CHECKS and may_use_checks)

    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("saliency_lib"):
                    if private_module(alias.name):
                        problems.append(f"{current}:{node.lineno} imports private module {alias.name}")
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom):
            target = resolve(current, is_package, node.level, node.module)
            if not target.startswith("saliency_lib") or target == current:
                continue
            if private_module(target):
                problems.append(f"{current}:{node.lineno} imports from private module {target}")
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if submodule in known:  # `from . import masks as M`: a module
                    aliases[alias.asname or alias.name] = submodule
                    if private_module(submodule):
                        problems.append(f"{current}:{node.lineno} imports private module {submodule}")
                elif alias.name.startswith("_") and not alias.name.startswith("__"):
                    problems.append(f"{current}:{node.lineno} imports private name {alias.name} from {target}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and aliases[node.value.id] != current
        ):
            problems.append(f"{current}:{node.lineno} reads private {aliases[node.value.id]}.{node.attr}")
    return problems


def library_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> library modules it imports (a ``from package import module`` counts as that module)."""
    graph = {}
    for name, path in modules.items():
        edges = set()
        for target, names, _, _ in imports_of(path.read_text(), name, path.name == "__init__.py"):
            if not target.startswith("saliency_lib"):
                continue
            targets = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules] or [target]
            edges.update(t for t in targets if t in modules and t != name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None. Package ``__init__`` re-exports are not followed."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt == "saliency_lib" or (nxt in graph and node.startswith(nxt + ".")):
                continue  # a submodule importing its own package's face is not a cycle of ideas
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


# ---- the rules, on the real package ---------------------------------------------------------------------------------


def test_no_private_name_crosses_a_module_border():
    modules = library_modules()
    problems = []
    for name, path in modules.items():
        problems += private_uses(path.read_text(), name, path.name == "__init__.py", set(modules))
    assert not problems, "\n".join(problems)


def test_the_library_never_imports_the_widgets():
    modules = library_modules()
    offenders = []
    for name, path in modules.items():
        if name.startswith(WIDGETS):
            continue
        for target, names, line, _ in imports_of(path.read_text(), name, path.name == "__init__.py"):
            parent, _, leaf = WIDGETS.rpartition(".")
            if target.startswith((WIDGETS, "saliency_lib.widgets")) or (
                target in (parent, "saliency_lib") and leaf in names
            ):
                offenders.append(f"{name}:{line}")
    assert not offenders, offenders


def notebook_sources():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        # IPython magics and shell lines are not Python: blank them out before parsing.
        yield path, "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in code.splitlines())
    for path in sorted((ROOT / "notebooks" / "solutions").glob("*.py")):
        yield path, path.read_text()


def test_notebooks_use_only_public_library_names():
    known = set(library_modules())
    problems = []
    for path, source in notebook_sources():
        for problem in private_uses(source, "notebook", False, known):
            problems.append(f"{path.name}: {problem}")
    assert not problems, "\n".join(problems)


def floor_of(module: str) -> int | None:
    """The floor of a library module (:data:`LAYERS`); None for the package's face and ``__main__``."""
    parts = module.split(".")
    return LAYERS[parts[1]] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else None


def upward_imports(source: str, current: str, is_package: bool, known: set[str]) -> list[str]:
    """Imports of ``source`` (module ``current``) that do not run downwards."""
    here = floor_of(current)
    if here is None:
        return []
    problems = []
    for target, names, line, _ in imports_of(source, current, is_package):
        if not target.startswith("saliency_lib"):
            continue
        if target == "saliency_lib":
            modules = [f"saliency_lib.{n}" for n in names if f"saliency_lib.{n}" in known]
            if not modules and set(names) <= {"__version__"}:
                continue
            targets = modules or [target]
        else:
            targets = [target]
        for t in targets:
            there = floor_of(t)
            same_package = there is not None and t.split(".")[1] == current.split(".")[1]
            if there is None or (not same_package and there >= here):
                problems.append(f"{current}:{line} imports {t} (floor {there}, it is on floor {here})")
    return problems


def test_imports_only_run_downwards():
    modules = library_modules()
    problems = []
    for name, path in modules.items():
        problems += upward_imports(path.read_text(), name, path.name == "__init__.py", set(modules))
    assert not problems, "\n".join(problems)


def test_every_subpackage_has_a_floor():
    subpackages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert subpackages == set(LAYERS), f"subpackages {sorted(subpackages)}, floors for {sorted(LAYERS)}"
    flat = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert flat == ["__init__.py", "__main__.py"], f"modules outside a subpackage: {flat}"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_the_line_limit(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)}: {lines} lines (at most {MAX_LINES}: split it by idea)"


def test_the_short_names_reach_each_module_at_its_home():
    """``saliency_lib.models``, ``from saliency_lib.core import ...``: one module object, found at its home."""
    import importlib

    import saliency_lib

    modules = library_modules()
    for short, home in saliency_lib.SHORT_NAMES.items():
        assert f"saliency_lib.{home}" in modules, f"{short} -> {home}: no such module"
        module = importlib.import_module(f"saliency_lib.{home}")
        assert getattr(saliency_lib, short) is module
        assert importlib.import_module(f"saliency_lib.{short}") is module


def test_python_dash_m_with_a_short_name_runs_the_module_at_its_home():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "saliency_lib.tutorial", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert "python -m saliency_lib.course.tutorial" in result.stdout


def test_every_notebook_import_from_the_library_resolves():
    """Each ``from saliency_lib... import name`` of the notebooks and solutions finds its name (the learner's API)."""
    import importlib

    problems = []
    for path, source in notebook_sources():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("saliency_lib"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    if not hasattr(module, alias.name):
                        try:
                            importlib.import_module(f"{node.module}.{alias.name}")
                        except ImportError:
                            problems.append(f"{path.name}:{node.lineno} {node.module} has no {alias.name}")
    assert not problems, "\n".join(problems)


def test_no_import_cycles():
    cycle = find_cycle(library_graph(library_modules()))
    assert cycle is None, " -> ".join(cycle)


@pytest.mark.parametrize("path", sorted((PACKAGE / "cli").glob("*.py")), ids=lambda p: p.name)
def test_cli_modules_are_thin_shims(path):
    tree = ast.parse(path.read_text())
    # Statements, not lines: the formatter spreads one call over several lines without adding logic.
    statements = sum(isinstance(node, ast.stmt) for node in ast.walk(tree))
    assert statements <= CLI_MAX_STATEMENTS, f"{path.name}: {statements} statements (a shim: <= {CLI_MAX_STATEMENTS})"
    classes = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
    assert not classes, f"{path.name} defines classes {classes}: library code belongs in a library module"


# ---- the checker itself can fail (each rule on a small example) -----------------------------------------------------

KNOWN = {
    "saliency_lib",
    "saliency_lib.method",
    "saliency_lib.method.masks",
    "saliency_lib.method._checks",
    "saliency_lib.method.core",
    "saliency_lib.io",
    "saliency_lib.io.models",
    "saliency_lib.course.widgets",
}


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from .masks import _rescale", "imports private name _rescale"),
        ("from saliency_lib.method.masks import _rescale", "imports private name _rescale"),
        ("from . import masks as M\nM._rescale(1)", "reads private saliency_lib.method.masks._rescale"),
        ("import saliency_lib.method.masks as M\nM._x", "reads private saliency_lib.method.masks._x"),
    ],
)
def test_the_checker_catches_private_uses(source, expected):
    problems = private_uses(source, "saliency_lib.method.core", False, KNOWN)
    assert any(expected in problem for problem in problems), problems


def test_the_checker_allows_public_names_and_the_checks_module():
    source = "from .masks import upsample\nfrom ._checks import check_int\nfrom . import masks as M\nM.upsample"
    assert private_uses(source, "saliency_lib.method.core", False, KNOWN) == []
    # ... but a notebook may not use the private checks module.
    assert private_uses("from saliency_lib.method._checks import check_int", "notebook", False, KNOWN)


def test_the_checker_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize(
    "source, current, upward",
    [
        ("from ..io import models", "saliency_lib.evaluation.datasets", False),
        ("from ..method.core import call_model", "saliency_lib.io.models", False),
        ("from .masks import upsample", "saliency_lib.method.core", False),
        ("from .. import __version__", "saliency_lib.course.tutorial", False),
        ("from ..io import models", "saliency_lib.method.core", True),
        ("from ..course import widgets", "saliency_lib.evaluation.metrics", True),
        ("from .. import models", "saliency_lib.method.core", True),  # the face's short name hides an upward import
        ("from ..plots import show_map", "saliency_lib.method.core", True),  # same floor, another subpackage
        ("import saliency_lib.generative.gan", "saliency_lib.evaluation.metrics", True),
    ],
)
def test_the_checker_finds_upward_imports(source, current, upward):
    assert bool(upward_imports(source, current, False, KNOWN)) == upward


def test_a_short_submodule_import_does_not_hide_a_function_of_the_same_name():
    """Notebook 06 imports the panel function, then names from its module by the short name; run twice (a rerun),
    the first import must still give the function, not the module."""
    import subprocess
    import sys

    code = (
        "from saliency_lib.widgets import your_model_panel\n"
        "from saliency_lib.widgets.your_model_panel import METHOD_LABELS\n"
        "from saliency_lib.widgets import your_model_panel as again\n"
        "import sys, types\n"
        "home = sys.modules['saliency_lib.course.widgets.your_model_panel']\n"
        "assert callable(again) and not isinstance(again, types.ModuleType), type(again)\n"
        "assert sys.modules['saliency_lib.widgets.your_model_panel'] is home and METHOD_LABELS is home.METHOD_LABELS\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
