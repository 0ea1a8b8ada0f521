"""Errors meant for the user: one clear paragraph, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix (bad file, unreachable host, refused key).

    The message is a complete paragraph: what is wrong, where (file, key, value or
    host and command) and what is expected.  ``exit_code`` is the CLI's status.
    """

    exit_code: int = 2

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
