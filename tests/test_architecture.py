"""The package's structure, held by a test: what may import what.

- No private name crosses a module border: ``from .masks import _x`` or ``masks._x`` in another module fails.
  The one private *module*, ``_checks``, is the shared argument checks: library modules may import it.
- No library module imports the widgets (widgets import the library, never the other way round).
- No notebook or exercise solution imports a ``_`` module or a ``_`` name of the library.
- No import cycle between library modules (imports inside functions count too: a lazy import hides a cycle,
  it does not remove it).
- Every ``cli_*`` module stays a thin shim (parse arguments, call the library).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "saliency_lib"
CLI_MAX_STATEMENTS = 40


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
    ``known``) may import the private ``saliency_lib._checks`` module, nothing else may.
    """
    problems, aliases = [], {}
    may_use_checks = current in known

    def private_module(module: str) -> bool:
        return module.split(".")[-1].startswith("_") and not (module == "saliency_lib._checks" and may_use_checks)

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
        if name.startswith("saliency_lib.widgets"):
            continue
        for target, names, line, _ in imports_of(path.read_text(), name, path.name == "__init__.py"):
            if target.startswith("saliency_lib.widgets") or (target == "saliency_lib" and "widgets" in names):
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


def test_no_import_cycles():
    cycle = find_cycle(library_graph(library_modules()))
    assert cycle is None, " -> ".join(cycle)


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("cli_*.py")), ids=lambda p: p.name)
def test_cli_modules_are_thin_shims(path):
    tree = ast.parse(path.read_text())
    # Statements, not lines: the formatter spreads one call over several lines without adding logic.
    statements = sum(isinstance(node, ast.stmt) for node in ast.walk(tree))
    assert statements <= CLI_MAX_STATEMENTS, f"{path.name}: {statements} statements (a shim: <= {CLI_MAX_STATEMENTS})"
    classes = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
    assert not classes, f"{path.name} defines classes {classes}: library code belongs in a library module"


# ---- the checker itself can fail (each rule on a small example) -----------------------------------------------------

KNOWN = {"saliency_lib", "saliency_lib.masks", "saliency_lib._checks", "saliency_lib.core", "saliency_lib.widgets"}


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from .masks import _rescale", "imports private name _rescale"),
        ("from saliency_lib.masks import _rescale", "imports private name _rescale"),
        ("from . import masks as M\nM._rescale(1)", "reads private saliency_lib.masks._rescale"),
        ("import saliency_lib.masks as M\nM._x", "reads private saliency_lib.masks._x"),
    ],
)
def test_the_checker_catches_private_uses(source, expected):
    problems = private_uses(source, "saliency_lib.core", False, KNOWN)
    assert any(expected in problem for problem in problems), problems


def test_the_checker_allows_public_names_and_the_checks_module():
    source = "from .masks import upsample\nfrom ._checks import check_int\nfrom . import masks as M\nM.upsample"
    assert private_uses(source, "saliency_lib.core", False, KNOWN) == []
    # ... but a notebook may not use the private checks module.
    assert private_uses("from saliency_lib._checks import check_int", "notebook", False, KNOWN)


def test_the_checker_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
