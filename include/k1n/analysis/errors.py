"""The one exception the analysis raises for input it cannot use."""

from __future__ import annotations


class AnalysisInputError(ValueError):
    """Input the analysis cannot use: a missing file, malformed JSON, an unknown run, ...

    The message is one line that names the input and the problem; the command line prints it
    as `error: <message>` and exits 2, never with a traceback.
    """
