"""The one shape of "this file cannot be used" errors: file, where in it, and the problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class FileProblem(ValueError):
    """`<file>: <where>: <problem>` on one line, with each part kept as an attribute."""

    def __init__(self, path: Path | str, problem: str, where: str | None = None) -> None:
        self.path = Path(path)
        self.where = where
        self.problem = problem
        super().__init__(f"{self.path}: {where}: {problem}" if where else f"{self.path}: {problem}")


def read_yaml(path: Path, error: type[FileProblem]) -> Any:
    """Load a YAML file; a missing, unreadable or malformed file raises `error(path, problem)`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(path, "file not found") from None
    except OSError as exc:
        raise error(path, f"cannot be read: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(path, f"invalid YAML: {_describe_yaml_error(exc)}") from None


def _describe_yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return problem
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
