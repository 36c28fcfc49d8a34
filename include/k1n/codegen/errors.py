"""The engine's exceptions; every message is one line that names what failed."""

from __future__ import annotations


class CodegenError(RuntimeError):
    """Code generation cannot go on: a bad library, template, staging dir or state dir."""


class LibraryError(CodegenError):
    """The pattern library, or one pattern file in it, is invalid."""


class ValidationFailed(CodegenError):
    """Generated code failed a check (compile, import, tests, lint, format); nothing is published.

    `failures` maps each failing pattern to the names of its failing checks.
    """

    def __init__(self, message: str, failures: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.failures = failures
