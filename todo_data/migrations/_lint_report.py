"""The lint's findings as CI systems read them: JSON, GitHub workflow annotations and SARIF 2.1.0."""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final

import pandas as pd

from todo_data.errors import InvalidArgumentError
from todo_data.migrations._lint_rules import RULES

#: The report formats of :func:`render` (``text`` is the CLI's own).
FORMATS: Final = ("text", "json", "github", "sarif")
SARIF_SCHEMA: Final = "https://json.schemastore.org/sarif-2.1.0.json"
_INFORMATION: Final = "https://github.com/todo-data/todo-data#safe-migrations"


def render(findings: pd.DataFrame, format: str, *, root: Path | None = None) -> str:
    """``findings`` (the lint's frame) as ``json``, ``github`` or ``sarif`` text.

    Paths are written relative to ``root`` (default: the working directory) when they
    are inside it, as GitHub and SARIF viewers expect.
    """
    records = [_record(row, root or Path.cwd()) for row in findings.to_dict("records")]
    if format == "json":
        return json.dumps(records, indent=2, ensure_ascii=False)
    if format == "github":
        return "\n".join(_annotation(record) for record in records)
    if format == "sarif":
        return json.dumps(_sarif(records), indent=2, ensure_ascii=False)
    raise InvalidArgumentError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")


def _record(row: dict[Any, Any], root: Path) -> dict[str, Any]:
    record: dict[str, Any] = {str(key): (None if _missing(value) else value) for key, value in row.items()}
    if record.get("file"):
        record["file"] = _relative(Path(str(record["file"])), root)
    for key in ("line", "column", "rows", "bytes"):
        if record.get(key) is not None:
            record[key] = int(record[key])
    if record.get("rewritten") is not None:
        record["rewritten"] = bool(record["rewritten"])
    if record.get("estimate") is not None:
        record["estimate"] = pd.Timedelta(record["estimate"]).total_seconds()
    return record


def _missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _annotation(record: dict[str, Any]) -> str:
    """``::error file=…,line=…,col=…,title=…::message`` (GitHub's workflow command, escaped)."""
    level = "error" if record["severity"] == "error" else "warning"
    properties = {"title": f"{record['rule']} (todo-data lint)"}
    if record.get("file"):
        properties = {"file": record["file"], "line": str(record["line"]), "col": str(record["column"]), **properties}
    where = f"revision {record['revision']}: " if record.get("revision") else ""
    message = f"{where}{_said(record)}"
    fields = ",".join(f"{key}={_escape(value, property=True)}" for key, value in properties.items())
    return f"::{level} {fields}::{_escape(message)}"


def _said(record: dict[str, Any]) -> str:
    """The finding's message and fix, then (with a database) what it would cost on the live table."""
    said = f"{record['message']}. Fix: {record['fix']}"
    return f"{said}. {record['impact']}" if record.get("impact") else said


def _escape(text: str, *, property: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property else text


def _sarif(records: list[dict[str, Any]]) -> dict[str, Any]:
    names = list(RULES)
    results = []
    for record in records:
        result: dict[str, Any] = {
            "ruleId": record["rule"],
            "ruleIndex": names.index(record["rule"]),
            "level": "error" if record["severity"] == "error" else "warning",
            "message": {"text": _said(record)},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": record.get("file") or f"revision {record.get('revision')}"},
                        "region": {
                            "startLine": record["line"],
                            "startColumn": record["column"],
                            "snippet": {"text": record["statement"]},
                        },
                    }
                }
            ],
            "properties": {"statement": record["statement"]},
        }
        if record.get("revision"):
            result["properties"]["revision"] = record["revision"]
        if record.get("squawk"):
            result["properties"]["squawk"] = record["squawk"]
        for key in ("rows", "bytes", "lock", "rewritten", "estimate", "impact"):
            if record.get(key) is not None:
                result["properties"][key] = record[key]
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "todo-data migrate lint",
                        "version": _version(),
                        "informationUri": _INFORMATION,
                        "rules": [_sarif_rule(name) for name in names],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def _sarif_rule(name: str) -> dict[str, Any]:
    rule = RULES[name]
    properties: dict[str, Any] = {"family": rule.family, "default": rule.default}
    if rule.squawk_ids:
        properties["squawk"] = list(rule.squawk_ids)
    return {
        "id": name,
        "name": "".join(part.title() for part in name.split("_")),
        "shortDescription": {"text": rule.message.format(table="the table", detail="it").split(":")[0]},
        "help": {"text": rule.fix},
        "defaultConfiguration": {"level": "error" if rule.severity == "error" else "warning"},
        "properties": properties,
    }


def _version() -> str:
    try:
        return version("todo-data")
    except PackageNotFoundError:
        return "0"
