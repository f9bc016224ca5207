"""The packages' structure: what ``lint-imports`` (import-linter, run by ``make lint``) cannot check.

The import contracts live in ``pyproject.toml`` (``[tool.importlinter]``): ``saliency_research`` above
``saliency_lib``, the library's subpackages in layers, the widgets imported only by notebooks, no import cycles.
This file holds the rest:

- ``saliency_lib`` is the tutorial's library: every module of it is reached from the notebooks, their solutions, the
  widgets or one of the tutorial's commands (:data:`ENTRY_POINTS`); a module nothing reaches belongs in the
  research bench, ``saliency_research``, or nowhere.
- Plain imports: no import hook of ours, so every module is found by its file's path.
- No private name crosses a module border (``from .masks import _x``, ``masks._x``), in either package or in the
  notebooks.
- Every ``from saliency_lib... import name`` of the notebooks and solutions resolves.
- The command-line modules stay thin shims (parse arguments, call the library).
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "saliency_lib"
PACKAGES = (PACKAGE, ROOT / "saliency_research")
ROOTS = ("saliency_lib", "saliency_research")
CLI_MAX_STATEMENTS = 40
CLI_MODULES = sorted(path for package in PACKAGES for path in (package / "cli").glob("*.py"))
# The tutorial's ways into saliency_lib besides the notebooks and their solutions (which are read from the files):
ENTRY_POINTS = {
    "saliency_lib.__main__": "python -m saliency_lib (explain one image, assets)",
    "saliency_lib.course.widgets": "the panels (every widget module is an entry point of the notebooks)",
    "saliency_lib.course.install_check": "make check and notebook 00",
    "saliency_lib.course.learner_edition": "make learner-edition",
}


def module_name(path: Path) -> str:
    """``saliency_lib/widgets/view.py`` -> ``saliency_lib.course.widgets.view`` (``__init__`` -> the package)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def library_modules(*packages: Path) -> dict[str, Path]:
    """Dotted name -> file of every module of ``packages`` (default: both of this repository's)."""
    return {module_name(path): path for package in packages or PACKAGES for path in sorted(package.rglob("*.py"))}


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

    ``current`` is the module's dotted name (``"notebook"`` for notebook code); ``known``: the packages' modules.
    """
    problems, aliases = [], {}

    def private_module(module: str) -> bool:
        return any(part.startswith("_") and not part.startswith("__") for part in module.split("."))

    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(ROOTS):
                    if private_module(alias.name):
                        problems.append(f"{current}:{node.lineno} imports private module {alias.name}")
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom):
            target = resolve(current, is_package, node.level, node.module)
            if not target.startswith(ROOTS) or target == current:
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


def test_no_private_name_crosses_a_module_border():
    modules = library_modules()
    problems = []
    for name, path in modules.items():
        problems += private_uses(path.read_text(), name, path.name == "__init__.py", set(modules))
    assert not problems, "\n".join(problems)


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


def notebook_imports() -> set[str]:
    """Library modules the notebooks and solutions import (``from saliency_lib.io import data``: ``...io.data``)."""
    modules = set(library_modules(PACKAGE))
    found = set()
    for _, source in notebook_sources():
        for target, names, _, _ in imports_of(source, "notebook"):
            if target.startswith("saliency_lib"):
                found.add(target)
                found.update(f"{target}.{name}" for name in names if f"{target}.{name}" in modules)
    return found & modules


def unreached_modules(starts: set[str]) -> list[str]:
    """Modules of saliency_lib that no module of ``starts`` imports, even indirectly (grimp, import-linter's graph)."""
    import grimp

    graph = grimp.build_graph("saliency_lib", cache_dir=None)
    reached = set()
    for start in starts:
        reached |= {start} | graph.find_upstream_modules(start) | graph.find_descendants(start)
        for descendant in graph.find_descendants(start):
            reached |= graph.find_upstream_modules(descendant)
    for module in list(reached):  # importing a module runs its packages' __init__ too
        parts = module.split(".")
        reached.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return sorted(graph.modules - reached)


def test_the_library_holds_only_what_the_tutorial_uses():
    starts = notebook_imports()
    assert {"saliency_lib.io.data", "saliency_lib.course.tutorial", "saliency_lib.method.core"} <= starts, starts
    unreached = unreached_modules(starts | set(ENTRY_POINTS) | {"saliency_lib.cli." + n for n in ("assets", "explain")})
    assert not unreached, (
        f"saliency_lib modules that no notebook, solution, widget or tutorial command reaches: {unreached}; "
        "move them to saliency_research (or name their entry point in ENTRY_POINTS)"
    )


def test_the_scope_check_finds_a_module_nothing_reaches():
    everything = unreached_modules(set(ENTRY_POINTS))
    assert "saliency_lib.io.uploads" not in everything  # reached through the widgets
    assert "saliency_lib.generative.reconstruct" in unreached_modules({"saliency_lib.__main__"})


def test_no_import_hook_of_ours():
    """Every module is found by its file's path: no finder of ours on ``sys.meta_path``, no ``__getattr__`` on
    the packages' faces handing out modules."""
    import importlib

    modules = {name: path for name, path in library_modules().items() if not name.endswith("__main__")}
    for name in modules:
        importlib.import_module(name)
    finders = [type(f).__module__ for f in sys.meta_path if type(f).__module__.startswith(ROOTS)]
    assert not finders, finders
    for root in ROOTS:
        assert not hasattr(importlib.import_module(root), "__getattr__"), root
    for name, path in modules.items():
        assert Path(sys.modules[name].__file__).resolve() == path.resolve(), name


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


@pytest.mark.parametrize("path", CLI_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_cli_modules_are_thin_shims(path):
    tree = ast.parse(path.read_text())
    # Statements, not lines: the formatter spreads one call over several lines without adding logic.
    statements = sum(isinstance(node, ast.stmt) for node in ast.walk(tree))
    assert statements <= CLI_MAX_STATEMENTS, f"{path.name}: {statements} statements (a shim: <= {CLI_MAX_STATEMENTS})"
    classes = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
    assert not classes, f"{path.name} defines classes {classes}: library code belongs in a library module"


# ---- the private-name checker itself can fail ------------------------------------------------------------------------

KNOWN = {
    "saliency_lib",
    "saliency_lib.method",
    "saliency_lib.method.masks",
    "saliency_lib.method.checks",
    "saliency_lib.method.core",
    "saliency_lib.io",
    "saliency_lib.io.models",
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


def test_the_checker_allows_public_names():
    source = "from .masks import upsample\nfrom .checks import check_int\nfrom . import masks as M\nM.upsample"
    assert private_uses(source, "saliency_lib.method.core", False, KNOWN) == []
    assert private_uses("from saliency_lib.method._helpers import x", "notebook", False, KNOWN)
