"""ARCHITECTURE.md holds: imports run down the layers, never in a circle, never into a façade.

Read from the source (every import, inside functions too; ``if TYPE_CHECKING:`` blocks
aside), so an import that only runs when a function is called counts like any other.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = REPO_ROOT / "todo_data"
FACADES = ("todo_data.queries", "todo_data.migrations")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    where = REPO_ROOT / name.replace(".", "/")
    return where.with_suffix(".py").is_file() or (where / "__init__.py").is_file()


def imports_of(path: Path) -> set[str]:
    """The ``todo_data`` modules ``path`` imports, wherever the import statement is."""
    tree = ast.parse(path.read_text())
    exempt = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in exempt:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("todo_data"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if not target.startswith("todo_data"):
                continue
            submodules = {f"{target}.{alias.name}" for alias in node.names if is_module(f"{target}.{alias.name}")}
            found.update(submodules)
            if len(submodules) < len(node.names):  # names from the module itself
                found.add(target)
    found.discard(module_name(path))
    return found


def import_graph() -> dict[str, set[str]]:
    return {module_name(path): imports_of(path) for path in sorted(PACKAGE.rglob("*.py"))}


def layers() -> dict[str, int]:
    """``ARCHITECTURE.md``'s layer table: each listed module (or package) and its layer number."""
    text = (REPO_ROOT / "ARCHITECTURE.md").read_text()
    table = text.split("## Layers, bottom to top", 1)[1].split("\n## ", 1)[0]
    found: dict[str, int] = {}
    for number, modules in re.findall(r"^\| (\d)\. [^|]+ \| ([^|]+) \|$", table, flags=re.M):
        for module in re.findall(r"`([\w.]+)`", modules):
            found["todo_data" if module == "todo_data" else f"todo_data.{module}"] = int(number)
    return found


def layer_of(module: str, table: dict[str, int]) -> int:
    """The layer of ``module``: its own entry, else its package's (a private module of ``queries``)."""
    name = module
    while name not in table:
        name, dot, _ = name.rpartition(".")
        if not dot:
            pytest.fail(f"{module} is in no layer of ARCHITECTURE.md: add it to the table")
    return table[name]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph.get(module, set()) & graph.keys():
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle_anywhere_in_the_package() -> None:
    assert cycles(import_graph()) == []


def test_every_import_runs_down_the_layers() -> None:
    table = layers()
    upward = [
        f"{module} (layer {layer_of(module, table)}) imports {target} (layer {layer_of(target, table)})"
        for module, targets in import_graph().items()
        for target in sorted(targets)
        if layer_of(target, table) > layer_of(module, table)
    ]
    assert upward == []


def test_private_modules_never_import_their_facade() -> None:
    into_facade = [
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        for target in targets
        if target in FACADES and module.startswith(f"{target}.")
    ]
    assert into_facade == []


def test_migrations_configuration_imports_nothing_from_migrations() -> None:
    assert {
        t for t in imports_of(PACKAGE / "migrations" / "_config.py") if t.startswith("todo_data.migrations")
    } == set()


def test_every_module_has_a_layer() -> None:
    table = layers()
    assert {layer_of(module, table) for module in import_graph()} <= {1, 2, 3, 4, 5}
    assert set(table) <= set(import_graph()), "ARCHITECTURE.md names a module that does not exist"


def test_the_checker_sees_what_it_must() -> None:
    """The reader counts imports inside functions and relative ones, and skips TYPE_CHECKING blocks."""
    probe = PACKAGE / "queries" / "_tasks.py"
    assert "todo_data.queries._adhoc" in imports_of(probe)
    assert "todo_data.rules" in imports_of(probe)
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    hidden = PACKAGE / "cli.py"
    assert "todo_data.migrations" in imports_of(hidden)  # imported inside the commands only
    assert "todo_data.queries._export" not in imports_of(hidden)  # under TYPE_CHECKING
