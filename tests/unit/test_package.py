"""The package's table of contents: every public name resolves, and importing it stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import todo_data

HEAVY = ("sqlalchemy", "sqlmodel", "pydantic_settings", "pandas", "pyarrow", "alembic", "asyncpg", "rich")


def modules_loaded_by(code: str) -> set[str]:
    """The top-level packages loaded by running ``code`` in a new interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_import_todo_data_loads_no_heavy_module() -> None:
    assert modules_loaded_by("import todo_data") & set(HEAVY) == set()


def test_importing_the_pytest_plugin_loads_no_heavy_module() -> None:
    # pytest imports it in every session of every project that installs todo_data.
    assert modules_loaded_by("import todo_data.pytest_plugin") & set(HEAVY) == set()


def test_the_cli_builds_its_help_without_any_heavy_module() -> None:
    code = (
        "import contextlib, io, sys\n"
        "sys.argv = ['todo-data', '--help']\n"
        "from todo_data.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main()"
    )
    assert modules_loaded_by(code) & set(HEAVY) == set()


@pytest.mark.parametrize("name", todo_data.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(todo_data, name) is not None
    assert name in dir(todo_data)


def test_the_names_are_the_modules_own_objects() -> None:
    from todo_data import database, models, runner, settings

    assert todo_data.create_engine is database.create_engine
    assert todo_data.Task is models.Task
    assert todo_data.run is runner.run
    assert todo_data.get_settings is settings.get_settings
    from todo_data import migrations

    assert todo_data.migrations is migrations


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = todo_data.nope  # type: ignore[attr-defined]


def test_every_error_derives_from_todo_data_error_and_is_exported() -> None:
    """Every public exception of every module (not only errors.py), as httpx tests its exports."""
    import importlib
    import inspect
    import pkgutil

    from todo_data import errors

    defined = [
        cls
        for info in pkgutil.walk_packages(todo_data.__path__, "todo_data.")
        for _, cls in inspect.getmembers(importlib.import_module(info.name), inspect.isclass)
        if issubclass(cls, BaseException) and cls.__module__ == info.name and not cls.__name__.startswith("_")
    ]
    names = {cls.__name__ for cls in defined}
    assert names >= {"DatabaseOperationError", "QueryError", "MissingExtraError", "CopyFormatError", "TodoDataWarning"}
    for cls in defined:
        assert getattr(todo_data, cls.__name__) is cls, (
            f"{cls.__module__}.{cls.__name__} is not exported from todo_data"
        )
        assert cls.__name__ in todo_data.__all__
        if not issubclass(cls, Warning):
            assert issubclass(cls, errors.TodoDataError), f"{cls.__name__} does not derive from TodoDataError"
    # The binary COPY decoder's own error joins the tree, and what a query raises catches it.
    assert issubclass(errors.CopyFormatError, errors.DatabaseOperationError)
    assert issubclass(errors.QueryError, errors.DatabaseOperationError)
