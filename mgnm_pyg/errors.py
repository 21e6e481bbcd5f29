"""Exceptions raised by mgnm-pyg.

Every error meant for a user derives from :class:`MGNMError`; the CLI turns it into
a one-paragraph message instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path


class MGNMError(Exception):
    """Base class of every error with a message meant for the user."""


class DataFormatError(MGNMError):
    """Input data that does not have the expected shape.

    The message names the file, and where known the line and the column, and
    says what was expected and what was found.

    Args:
        path: the file being read.
        message: what was expected and what was found.
        line: 1-based line number, if known.
        column: column name or 1-based index, if known.
    """

    def __init__(
        self,
        path: str | Path,
        message: str,
        line: int | None = None,
        column: str | int | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.column = column
        self.reason = message
        where = self.path
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column!r}" if isinstance(column, str) else f", column {column}"
        super().__init__(f"{where}: {message}")


class CheckpointError(MGNMError):
    """A checkpoint that is missing, truncated, foreign or incompatible."""


class RecommendError(MGNMError):
    """A user or history that cannot be scored (unknown ids)."""


class TrainingError(MGNMError):
    """Training cannot go on (e.g. the loss became NaN or infinite)."""


class TrainingInterrupted(MGNMError):
    """Training was stopped by the user (Ctrl-C); the message says how to resume."""
