"""The one shape of "this file cannot be used" errors: file, where in it, and the problem."""

from __future__ import annotations

from pathlib import Path


class FileProblem(ValueError):
    """`<file>: <where>: <problem>` on one line, with each part kept as an attribute."""

    def __init__(self, path: Path | str, problem: str, where: str | None = None) -> None:
        self.path = Path(path)
        self.where = where
        self.problem = problem
        super().__init__(f"{self.path}: {where}: {problem}" if where else f"{self.path}: {problem}")
