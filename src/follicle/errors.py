"""Errors that reach a user: each names the file, field or row it concerns.

The CLI and the HTTP service turn a :class:`FollicleError` into one clear message and a
non-zero exit (CLI) or a 4xx answer (service); anything else is a bug and may show a trace.
"""

from __future__ import annotations


class FollicleError(Exception):
    """Base class for errors caused by the user's input or environment, not by a bug."""

    exit_code: int = 2

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        self.problems = list(problems or [])
        super().__init__(message)

    def render(self) -> str:
        """The message followed by every problem on its own line."""
        lines = [str(self)]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


class InputError(FollicleError):
    """Bad input data: a file, row, column or field that cannot be used as given."""


class SpecError(FollicleError):
    """An invalid study or analysis specification; ``problems`` lists every failing field."""


class DatabaseError(FollicleError):
    """A database that cannot be reached or does not hold what is needed."""


class CheckFailed(FollicleError):
    """A data-quality check with a fatal result."""

    exit_code = 1
