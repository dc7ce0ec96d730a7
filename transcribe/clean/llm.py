"""The LLM cleaner: any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp's server,
LM Studio…) through the official `openai` client.

One retry policy for everything that can go wrong with a call: HTTP 429/408/409/5xx, timeouts,
dropped connections and answers that are not the JSON asked for are retried with exponential backoff
and jitter (a Retry-After header is honoured), up to settings.llm_max_retries times; other HTTP errors
(400, 401, 403, 404, 422) are permanent. The client's own retries are off (max_retries=0) so every
try is counted here. A batch runs concurrently on one shared HTTP connection pool, at most
settings.llm_concurrency calls in flight; each returns a CleanResult or an exception, never raises.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from db.settings import Settings
from transcribe.clean.base import CleanError, CleanResult, PermanentCleanError
from transcribe.clean.prompts import PromptTemplate, resolve

RETRYABLE_STATUS = frozenset({408, 409, 425, 429})  # and every 5xx
MAX_BACKOFF_SECONDS = 30.0
CAPTION_SCHEMA = {
    "type": "object",
    "properties": {"caption": {"type": "string"}},
    "required": ["caption"],
    "additionalProperties": False,
}
_FENCED = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


class CaptionAnswer(BaseModel):
    """The structured answer every prompt asks for."""

    model_config = ConfigDict(extra="ignore")
    caption: str

    @field_validator("caption")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("caption is empty")
        return value


class MalformedAnswer(Exception):
    """The endpoint answered, but not with the JSON object the prompt asked for."""


def _json_payload(content: str) -> str:
    """The JSON object inside an answer; local models often wrap it in a code fence or a sentence."""
    fenced = _FENCED.search(content)
    if fenced:
        content = fenced.group(1)
    start, end = content.find("{"), content.rfind("}")
    return content[start : end + 1] if 0 <= start < end else content


def parse_answer(response: Any) -> str:
    """The caption from a chat completion, validated with pydantic; MalformedAnswer otherwise."""
    if not getattr(response, "choices", None):
        raise MalformedAnswer("no choices in the answer")
    choice = response.choices[0]
    content = choice.message.content if choice.message is not None else None
    if choice.finish_reason == "length":
        raise MalformedAnswer("answer cut off at the token limit")
    if not content or not content.strip():
        raise MalformedAnswer("empty answer")
    try:
        return CaptionAnswer.model_validate_json(_json_payload(content)).caption
    except ValidationError as error:
        problem = error.errors()[0]["msg"]
        raise MalformedAnswer(f"{problem}; answer began {content[:80]!r}") from None


def _retry_after(response: Any) -> float | None:
    headers = getattr(response, "headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                return None  # an HTTP date: fall back to our own backoff
    return None


def format_transcripts(transcripts: Sequence[str]) -> str:
    return "\n".join(
        f'<transcript n="{n}">\n{text.strip()}\n</transcript>' for n, text in enumerate(transcripts, 1)
    )


class LLMCleaner:
    name = "llm"
    can_merge = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model = settings.llm_model
        self.prompt: PromptTemplate = resolve("caption", settings.prompt_version)
        self.merge_prompt: PromptTemplate = resolve("merge", settings.merge_prompt_version)
        self.prompt_version = self.prompt.id
        self.merge_prompt_version = self.merge_prompt.id

    # -- the Cleaner interface ---------------------------------------------------------------

    def clean(self, transcript: str) -> CleanResult:
        result = self.clean_many([transcript])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def clean_many(self, transcripts: Sequence[str]) -> list[CleanResult | Exception]:
        jobs = [self.prompt.messages(transcript=text.strip()) for text in transcripts]
        return self._run(jobs, self.prompt.id)

    def merge_many(self, groups: Sequence[Sequence[str]]) -> list[CleanResult | Exception]:
        jobs = [self.merge_prompt.messages(transcripts=format_transcripts(group)) for group in groups]
        return self._run(jobs, self.merge_prompt.id)

    def close(self) -> None:
        """Nothing held between batches: each batch opens and closes its own connection pool."""

    # -- running a batch ---------------------------------------------------------------------

    def _run(self, jobs: list[list[dict[str, str]]], prompt_id: str) -> list[CleanResult | Exception]:
        if not jobs:
            return []
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._run_all(jobs, prompt_id))
        # Called from inside an event loop (an async handler): run the batch on a thread of its own.
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, self._run_all(jobs, prompt_id)).result()

    async def _run_all(
        self, jobs: list[list[dict[str, str]]], prompt_id: str
    ) -> list[CleanResult | Exception]:
        settings = self.settings
        async with openai.DefaultAsyncHttpxClient() as http:
            client = openai.AsyncOpenAI(
                base_url=settings.llm_base_url,
                api_key=settings.llm_api_key or "not-needed",
                timeout=settings.llm_timeout_seconds,
                max_retries=0,
                http_client=http,
            )
            semaphore = asyncio.Semaphore(max(1, settings.llm_concurrency))
            return list(
                await asyncio.gather(*(self._call(client, semaphore, job, prompt_id) for job in jobs))
            )

    def _request(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.settings.llm_temperature,
        }
        if self.settings.llm_json_mode == "json_object":
            request["response_format"] = {"type": "json_object"}
        elif self.settings.llm_json_mode == "json_schema":
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "caption", "strict": True, "schema": CAPTION_SCHEMA},
            }
        return request

    def backoff_seconds(self, attempt: int, retry_after: float | None) -> float:
        """Exponential with jitter (half to full), at least what the server asked for, capped."""
        base = self.settings.llm_retry_base_seconds * 2 ** (attempt - 1)
        delay = min(MAX_BACKOFF_SECONDS, base) * random.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_BACKOFF_SECONDS))
        return delay

    async def _call(
        self,
        client: openai.AsyncOpenAI,
        semaphore: asyncio.Semaphore,
        messages: list[dict[str, str]],
        prompt_id: str,
    ) -> CleanResult | Exception:
        settings = self.settings
        tries = max(0, settings.llm_max_retries) + 1
        prompt_tokens = completion_tokens = 0
        errors: list[str] = []
        request = self._request(messages)
        where = f"{self.model} at {settings.llm_base_url}"
        for attempt in range(1, tries + 1):
            retry_after: float | None = None
            try:
                async with semaphore:
                    # wait_for bounds the whole call, including a server that drips bytes slowly.
                    response = await asyncio.wait_for(
                        client.chat.completions.create(**request), settings.llm_timeout_seconds
                    )
                usage = getattr(response, "usage", None)
                if usage is not None:
                    prompt_tokens += usage.prompt_tokens or 0
                    completion_tokens += usage.completion_tokens or 0
                text = parse_answer(response)
                return CleanResult(text, self.name, self.model, prompt_id, prompt_tokens, completion_tokens)
            except openai.APIStatusError as error:
                status = error.status_code
                if status not in RETRYABLE_STATUS and status < 500:
                    return PermanentCleanError(
                        f"llm {where}: HTTP {status} {_short(_error_message(error))} (not retried)",
                        prompt_tokens,
                        completion_tokens,
                    )
                errors.append(f"HTTP {status}")
                retry_after = _retry_after(error.response)
            except (openai.APITimeoutError, TimeoutError):
                errors.append(f"timeout after {settings.llm_timeout_seconds:g} s")
            except openai.APIConnectionError as error:
                errors.append(f"connection error ({_short(str(error.__cause__ or error))})")
            except (MalformedAnswer, openai.APIResponseValidationError, json.JSONDecodeError) as error:
                errors.append(f"malformed answer ({_short(str(error))})")
            except openai.APIError as error:
                errors.append(f"API error ({_short(str(error))})")
            except Exception as error:  # a surprise: fail this one item, never the whole batch
                message = f"llm {where}: unexpected {type(error).__name__}: {_short(str(error))}"
                return CleanError(message, prompt_tokens, completion_tokens)
            if attempt < tries:
                await asyncio.sleep(self.backoff_seconds(attempt, retry_after))
        return CleanError(
            f"llm {where}: gave up after {tries} tries: {_summarise(errors)}",
            prompt_tokens,
            completion_tokens,
        )


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error_message(error: openai.APIStatusError) -> str:
    """The server's own words: OpenAI-style bodies carry them in error.message."""
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return error.message


def _summarise(errors: list[str]) -> str:
    """'HTTP 500 ×2; timeout after 60 s' rather than the same words over and over."""
    runs: list[list[Any]] = []
    for error in errors:
        if runs and runs[-1][0] == error:
            runs[-1][1] += 1
        else:
            runs.append([error, 1])
    return "; ".join(error if count == 1 else f"{error} ×{count}" for error, count in runs)
