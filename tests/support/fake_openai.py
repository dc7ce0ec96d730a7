"""A real local HTTP server speaking OpenAI's chat-completions protocol, with scripted behaviour.

It stands in for a paid remote LLM: the cleaner under test talks to it over real sockets with the
real `openai` client. A behaviour decides each answer from the request (and how many times that same
prompt was seen before), so a test can script "429 twice, then answer" per transcript:

    with FakeOpenAI(by_transcript({"a red boat": [Reply(status=429), Reply()]})) as fake:
        settings.llm_base_url = fake.base_url

By default the answer echoes the transcript(s) as the caption (faithful by construction), after
`Reply.delay` seconds; bench/clean.py uses it with a 1 s delay.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

_TRANSCRIPT = re.compile(r"<transcript(?: n=\"\d+\")?>\n(.*?)\n</transcript>", re.DOTALL)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    caption: str | None = None  # None: echo the transcript(s)
    content: str | None = None  # the raw message content, instead of {"caption": …} (malformed JSON)
    delay: float = 0.0  # seconds before answering (a slow model, or past the client's timeout)
    drop: bool = False  # start the answer, then close the connection half-way
    retry_after: float | None = None  # a Retry-After header on an error status
    message: str | None = None  # an error status's message (default "scripted <status>")
    finish_reason: str = "stop"


@dataclass(frozen=True)
class SeenRequest:
    body: dict[str, Any]
    transcripts: list[str]
    attempt: int  # 0 the first time this prompt arrives, 1 the second, …

    @property
    def key(self) -> str:
        return "\n".join(self.transcripts)


Behaviour = Callable[[SeenRequest], Reply]


def echo(delay: float = 0.0) -> Behaviour:
    return lambda _request: Reply(delay=delay)


def by_transcript(plan: Mapping[str, Sequence[Reply]], default: Reply | None = None) -> Behaviour:
    """Per transcript (the exact text sent), the replies to its 1st, 2nd, … request; the last repeats."""

    def behaviour(request: SeenRequest) -> Reply:
        replies = plan.get(request.key)
        if not replies:
            return default or Reply()
        return replies[min(request.attempt, len(replies) - 1)]

    return behaviour


# What llama.cpp's Python server (llama-cpp-python 0.3.36) answers, with HTTP 500, to a json_schema request.
LLAMA_CPP_REFUSAL = (
    "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
    "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema', "
    "'ctx': {'expected': \"'text' or 'json_object'\"}}\n"
)


def refusing(
    formats: Collection[str],
    status: int = 500,
    message: str = LLAMA_CPP_REFUSAL,
    then: Behaviour | None = None,
) -> Behaviour:
    """Refuses requests whose response_format type is in `formats` ("none": no response_format)."""
    otherwise = then or echo()

    def behaviour(request: SeenRequest) -> Reply:
        kind = (request.body.get("response_format") or {}).get("type", "none")
        return Reply(status=status, message=message) if kind in formats else otherwise(request)

    return behaviour


class _DroppedResponse(Response):
    """Sends headers promising a body, half of it, then gives up: the client sees the connection die."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"400")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b'{"id": "chatcmpl-drop", "choi', "more_body": True}
        )
        raise ConnectionAbortedError("scripted dropped connection")


@dataclass
class Stats:
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    attempts: Counter[str] = field(default_factory=Counter)  # per prompt key
    bodies: list[dict[str, Any]] = field(default_factory=list)
    model_lists: int = 0  # GET /v1/models


def _words(text: str) -> int:
    return len(text.split())


class FakeOpenAI:
    def __init__(self, behaviour: Behaviour | None = None, model: str = "fake-model") -> None:
        self.behaviour = behaviour or echo()
        self.model = model
        self.stats = Stats()
        self._lock = threading.Lock()
        self.app = self._build_app()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _build_app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        async def models() -> Response:
            with self._lock:
                self.stats.model_lists += 1
            return JSONResponse({"object": "list", "data": [{"id": self.model, "object": "model"}]})

        @app.post("/v1/chat/completions")
        async def chat_completions(request: Request) -> Response:
            body = await request.json()
            user = "\n".join(
                m.get("content", "") for m in body.get("messages", []) if m.get("role") == "user"
            )
            transcripts = _TRANSCRIPT.findall(user)
            with self._lock:
                seen = SeenRequest(body, transcripts, self.stats.attempts["\n".join(transcripts)])
                self.stats.attempts[seen.key] += 1
                self.stats.requests += 1
                self.stats.bodies.append(body)
                self.stats.in_flight += 1
                self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
            try:
                reply = self.behaviour(seen)
                if reply.delay:
                    await asyncio.sleep(reply.delay)
                with self._lock:
                    self.stats.statuses[reply.status] += 1
                return self._answer(body, seen, reply)
            finally:
                with self._lock:
                    self.stats.in_flight -= 1

        return app

    def _answer(self, body: dict[str, Any], seen: SeenRequest, reply: Reply) -> Response:
        if reply.drop:
            return _DroppedResponse()
        if reply.status != 200:
            headers = {"retry-after": f"{reply.retry_after:g}"} if reply.retry_after is not None else {}
            message = reply.message if reply.message is not None else f"scripted {reply.status}"
            error = {"error": {"message": message, "type": "fake", "code": reply.status}}
            return JSONResponse(error, status_code=reply.status, headers=headers)
        if reply.content is not None:
            content = reply.content
        else:
            caption = reply.caption if reply.caption is not None else " ".join(seen.transcripts)
            content = json.dumps({"caption": caption})
        prompt_tokens = sum(_words(m.get("content", "")) for m in body.get("messages", []))
        completion_tokens = _words(content)
        return JSONResponse(
            {
                "id": f"chatcmpl-{self.stats.requests}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", self.model),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": reply.finish_reason,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="critical", lifespan="off", timeout_graceful_shutdown=1, backlog=512
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-openai", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
