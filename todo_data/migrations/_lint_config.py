"""The lint's configuration: ``[tool.todo-data.lint]`` in the nearest ``pyproject.toml``.

Found like ruff finds its own: from the working directory upwards, the first
``pyproject.toml`` that has a ``[tool.todo-data.lint]`` table wins. Keys: ``select``
(rule names, or "all"), ``ignore`` (rule names) and ``postgres-version``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from todo_data.errors import SettingsError, TodoDataError
from todo_data.migrations._lint_rules import resolve

_KEYS: Final = frozenset({"select", "ignore", "postgres-version"})


@dataclass(frozen=True)
class LintConfig:
    """What ``[tool.todo-data.lint]`` says (nothing said: every field None or empty)."""

    select: str | tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    postgres_version: object = None
    path: Path | None = None


def find_config(start: Path | None = None) -> LintConfig:
    """The configuration of the nearest ``pyproject.toml`` with a lint table, from ``start`` (the cwd) up."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            table = _lint_table(candidate)
            if table is not None:
                return _parse(table, candidate)
    return LintConfig()


def _lint_table(path: Path) -> dict[str, Any] | None:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"Cannot read {path} for [tool.todo-data.lint]: {exc}") from None
    table = document.get("tool", {}).get("todo-data", {}).get("lint")
    if table is not None and not isinstance(table, dict):
        raise SettingsError(f"{path}: [tool.todo-data.lint] must be a table")
    return table


def _parse(table: dict[str, Any], path: Path) -> LintConfig:
    where = f"{path} [tool.todo-data.lint]"
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise SettingsError(f"{where}: unknown key {', '.join(unknown)} (known: select, ignore, postgres-version)")
    select = table.get("select")
    if select is not None and select != "all" and not _names(select):
        raise SettingsError(f'{where}: select must be a list of rule names or "all"')
    ignore = table.get("ignore", [])
    if not _names(ignore):
        raise SettingsError(f"{where}: ignore must be a list of rule names")
    try:
        resolve([*([] if select in (None, "all") else select), *ignore], where=where)
    except TodoDataError as exc:
        raise SettingsError(str(exc)) from None
    chosen = select if select in (None, "all") else tuple(select)
    return LintConfig(chosen, tuple(ignore), table.get("postgres-version"), path)


def _names(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)
