"""Domain errors with a stable machine-readable code; the API turns them into JSON, the CLI into messages."""

from __future__ import annotations


class VoicecapError(Exception):
    """An error a user can act on. `code` is stable (clients match on it); `message` is for people."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class NotFound(VoicecapError):
    code = "not_found"
    status = 404


class Conflict(VoicecapError):
    code = "conflict"
    status = 409


class Forbidden(VoicecapError):
    code = "forbidden"
    status = 403


class Unauthorized(VoicecapError):
    code = "not_authenticated"
    status = 401


class InvalidInput(VoicecapError):
    code = "invalid_input"
    status = 422
