"""Small helpers the loaders share: reading JSON files and epoch/ISO timestamps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from include.k1n.analysis.errors import AnalysisInputError


def read_json_file(path: Path | str, what: str) -> Any:
    """The parsed JSON of `path`; a missing, unreadable or malformed file raises one line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AnalysisInputError(f"{what} {path}: file not found") from None
    except IsADirectoryError:
        raise AnalysisInputError(f"{what} {path}: is a directory, expected a JSON file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AnalysisInputError(f"{what} {path}: cannot be read: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnalysisInputError(
            f"{what} {path}: malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
