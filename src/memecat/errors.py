"""One exception type for everything a user can get wrong; the CLI prints it as one line."""

from __future__ import annotations

from pathlib import Path


class MemecatError(Exception):
    """A problem with user input or setup, reported without a traceback."""


class DataError(MemecatError):
    """Bad data: names the file, the record (if any) and the problem."""

    def __init__(self, path: str | Path | None, problem: str, record_id: str | None = None):
        self.path = str(path) if path is not None else None
        self.record_id = record_id
        self.problem = problem
        where = self.path or "<input>"
        if record_id is not None:
            where += f" [id {record_id}]"
        super().__init__(f"{where}: {problem}")


class NotFittedError(MemecatError):
    """A model was asked to predict, explain or save before it was fitted or loaded."""
