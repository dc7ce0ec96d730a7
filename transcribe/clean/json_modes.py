"""How the LLM cleaner asks for JSON, and how it notices a server that refuses the way it asked.

Servers differ: OpenAI and vLLM take `response_format` json_schema; llama.cpp's Python server takes
only json_object and answers a json_schema request with HTTP 500 ("Input should be 'text' or
'json_object'"); others answer 400 or 422. Such a refusal is not a temporary failure: retrying it is a
retry storm that ends with every recording failed. The cleaner instead steps down once,
json_schema → json_object → none, and keeps the mode that worked.
"""

from __future__ import annotations

from typing import Any, Literal

import openai

JsonMode = Literal["json_schema", "json_object", "none"]
JSON_MODES: tuple[JsonMode, ...] = ("json_schema", "json_object", "none")  # strictest first
FALLBACK: dict[str, JsonMode] = {"json_schema": "json_object", "json_object": "none"}
CAPTION_SCHEMA = {
    "type": "object",
    "properties": {"caption": {"type": "string"}},
    "required": ["caption"],
    "additionalProperties": False,
}
# Words a server error uses when it is the response_format it cannot take.
_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "'text'", "grammar", "structured output")


def response_format(mode: str) -> dict[str, Any] | None:
    """The `response_format` request field for a mode (None: leave it out)."""
    if mode == "json_object":
        return {"type": "json_object"}
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": "caption", "strict": True, "schema": CAPTION_SCHEMA},
        }
    return None


def error_message(error: openai.APIStatusError) -> str:
    """The server's own words: OpenAI-style bodies carry them in error.message."""
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return error.message


def refuses_format(error: openai.APIStatusError) -> bool:
    """Whether the server refused the response_format: a 400, 422 or 5xx whose message names it.

    The message decides, not the status: llama.cpp's Python server says 500, LM Studio 400, pydantic
    servers 422, and a 400 for another reason (a too-long prompt) must stay a plain 400.
    """
    if error.status_code not in (400, 422) and error.status_code < 500:
        return False
    text = f"{error_message(error)} {error.body}".lower()
    return any(word in text for word in _FORMAT_WORDS)
