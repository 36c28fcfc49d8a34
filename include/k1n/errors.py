"""The one shape of "this file cannot be used" errors: file, where in it, and the problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class FileProblem(ValueError):
    """`<file>: <where>: <problem>` on one line, with each part kept as an attribute."""

    def __init__(self, path: Path | str, problem: str, where: str | None = None) -> None:
        self.path = Path(path)
        self.where = where
        self.problem = problem
        text = f"{self.path}: {where}: {problem}" if where else f"{self.path}: {problem}"
        # Parts quoted from the input may hold line breaks; the message stays one line.
        super().__init__(text.translate(_LINE_BREAKS))


_LINE_BREAKS = str.maketrans({"\n": "\\n", "\r": "\\r", "\x0b": "\\v", "\x0c": "\\f"})


def brief(value: Any, limit: int = 60) -> str:
    """`repr(value)` cut to `limit` characters: a message never carries a whole input."""
    huge = isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200
    text = "<huge int>" if huge else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
