"""Errors shown to dashboard users as a page with a status, never as a traceback."""

from __future__ import annotations


class AdminError(Exception):
    """A mistake or refusal with the HTTP status and the message the page shows."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
