"""The one exception the analysis raises for input it cannot use."""

from __future__ import annotations


class AnalysisInputError(ValueError):
    """Input the analysis cannot use: a missing file, malformed JSON, an unknown run, ...

    The message is one line that names the input and the problem; the command line prints it
    as `error: <message>` and exits 2, never with a traceback.
    """

    def __init__(self, message: object) -> None:
        # One line whatever the input put into it (a run id or a name with a newline).
        super().__init__(" ".join(str(message).split()))
