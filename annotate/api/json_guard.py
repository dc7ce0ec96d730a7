"""Refuse `NaN`, `Infinity` and `-Infinity` in JSON request bodies before any route sees them.

Python's json module accepts them, but they are not JSON: a NaN stored as a project's limit made every
later answer that carried it fail to serialise (a 500). A pure ASGI middleware, so uploads (which are
not JSON) stream past untouched.
"""

from __future__ import annotations

import json
from typing import Any

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class _NotJson(ValueError):
    pass


def _refuse(constant: str) -> Any:
    raise _NotJson(constant)


class RejectNonFiniteJson:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        body, messages = await _read_body(receive)
        try:
            json.loads(body, parse_constant=_refuse)
        except _NotJson as exc:
            await _answer_422(send, f"The request is malformed: {exc} is not a JSON number.")
            return
        except ValueError:
            pass  # malformed JSON: the route's own validation answers that

        replay = iter(messages)

        async def replayed() -> dict[str, Any]:
            return next(replay, {"type": "http.request", "body": b"", "more_body": False})

        await self.app(scope, replayed, send)


def _is_json(scope: dict[str, Any]) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower().endswith(b"json")
    return False


async def _read_body(receive: Any) -> tuple[bytes, list[dict[str, Any]]]:
    messages, chunks = [], []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks), messages


async def _answer_422(send: Any, message: str) -> None:
    body = json.dumps({"code": "invalid_request", "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 422, "headers": headers})
    await send({"type": "http.response.body", "body": body})
