"""The LLM cleaner: any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp's server,
LM Studio…) through the official `openai` client.

One retry policy for everything that can go wrong with a call: HTTP 429/408/409/5xx, timeouts,
dropped connections and answers that are not a caption are retried with exponential backoff and
jitter (a Retry-After header is honoured), up to settings.llm_max_retries times; other HTTP errors
(400, 401, 403, 404, 422) are permanent. The client's own retries are off (max_retries=0) so every
try is counted here. A batch runs concurrently on one shared HTTP connection pool, at most
settings.llm_concurrency calls in flight; each returns a CleanResult or an exception, never raises.

A server that refuses the configured `response_format` (json_modes.py) is not retried: until one
answer has come back in the current mode, the first call of a batch goes alone and steps down
json_schema → json_object → none at once; the mode that answered is kept for every later call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai

from db.settings import Settings
from transcribe.clean.answers import CaptionAnswer, MalformedAnswer, read_caption
from transcribe.clean.base import CleanError, CleanResult, PermanentCleanError
from transcribe.clean.json_modes import (
    CAPTION_SCHEMA,
    FALLBACK,
    JsonMode,
    error_message,
    refuses_format,
    response_format,
)
from transcribe.clean.languages import language_name
from transcribe.clean.prompts import PromptTemplate, resolve

__all__ = [
    "CAPTION_SCHEMA",
    "CaptionAnswer",
    "FormatRefused",
    "LLMCleaner",
    "MalformedAnswer",
    "parse_answer",
]

log = logging.getLogger(__name__)
RETRYABLE_STATUS = frozenset({408, 409, 425, 429})  # and every 5xx
MAX_BACKOFF_SECONDS = 30.0


class FormatRefused(PermanentCleanError):
    """The server refuses the response_format asked for (only when falling back is turned off)."""


def parse_answer(response: Any, *, prose_ok: bool = False, prompt: PromptTemplate | None = None) -> str:
    """The caption from a chat completion; MalformedAnswer when the answer holds none.

    JSON is always read; `prose_ok` (json mode `none`) also takes a plausible prose answer.
    """
    if not getattr(response, "choices", None):
        raise MalformedAnswer("no choices in the answer")
    choice = response.choices[0]
    content = choice.message.content if choice.message is not None else None
    if choice.finish_reason == "length":
        raise MalformedAnswer("answer cut off at the token limit")
    if not content or not content.strip():
        raise MalformedAnswer("empty answer")
    instructions = prompt.system if prompt is not None else ""
    examples = prompt.examples if prompt is not None else frozenset()
    return read_caption(content, prose_ok=prose_ok, instructions=instructions, examples=examples)


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


class _Spent:
    """Every token spent on one caption, retries of malformed answers included (they cost money too)."""

    def __init__(self) -> None:
        self.prompt_tokens = self.completion_tokens = 0

    def add(self, response: Any) -> None:
        usage = getattr(response, "usage", None)
        if usage is not None:
            self.prompt_tokens += usage.prompt_tokens or 0
            self.completion_tokens += usage.completion_tokens or 0


class LLMCleaner:
    name = "llm"
    can_merge = True
    can_translate = True

    def __init__(self, settings: Settings, *, fallback: bool = True) -> None:
        self.settings = settings
        self.model = settings.llm_model
        self.prompt: PromptTemplate = resolve("caption", settings.prompt_version)
        self.merge_prompt: PromptTemplate = resolve("merge", settings.merge_prompt_version)
        self.prompt_version = self.prompt.id
        self.merge_prompt_version = self.merge_prompt.id
        self.json_mode: JsonMode = settings.llm_json_mode
        self.fallback = fallback  # step down a refused response_format (off: `llm check` probes each)
        self.mode_settled = False  # an answer came back in json_mode: refusals are no longer expected
        self.refusals: list[str] = []  # "json_schema: HTTP 500 …", for logs and `voicecap llm check`

    # -- the Cleaner interface ---------------------------------------------------------------

    def clean(self, transcript: str) -> CleanResult:
        result = self.clean_many([transcript])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def clean_many(
        self,
        transcripts: Sequence[str],
        languages: Sequence[str | None] | None = None,
        caption_languages: Sequence[str | None] | None = None,
    ) -> list[CleanResult | Exception]:
        """Captions written in each one's caption language where given, else in the transcript's own
        language (English where neither is given)."""
        wanted = _caption_languages(len(transcripts), languages, caption_languages)
        jobs = [
            self.prompt.messages(transcript=text.strip(), **_language_slot(self.prompt, language))
            for text, language in zip(transcripts, wanted, strict=True)
        ]
        return self._run(jobs, self.prompt)

    def merge_many(
        self,
        groups: Sequence[Sequence[str]],
        languages: Sequence[str | None] | None = None,
        caption_languages: Sequence[str | None] | None = None,
    ) -> list[CleanResult | Exception]:
        wanted = _caption_languages(len(groups), languages, caption_languages)
        jobs = [
            self.merge_prompt.messages(
                transcripts=format_transcripts(group), **_language_slot(self.merge_prompt, language)
            )
            for group, language in zip(groups, wanted, strict=True)
        ]
        return self._run(jobs, self.merge_prompt)

    def close(self) -> None:
        """Nothing held between batches: each batch opens and closes its own connection pool."""

    # -- running a batch ---------------------------------------------------------------------

    def _run(self, jobs: list[list[dict[str, str]]], prompt: PromptTemplate) -> list[CleanResult | Exception]:
        if not jobs:
            return []
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._run_all(jobs, prompt))
        # Called from inside an event loop (an async handler): run the batch on a thread of its own.
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, self._run_all(jobs, prompt)).result()

    async def _run_all(
        self, jobs: list[list[dict[str, str]]], prompt: PromptTemplate
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
            results: list[CleanResult | Exception] = []
            if self.fallback and not self.mode_settled and self.json_mode in FALLBACK:
                # The first call alone finds out whether the server takes the json mode, so a refusal
                # costs one request, not one per transcript in flight.
                results.append(await self._call(client, semaphore, jobs[0], prompt))
                jobs = jobs[1:]
            results += await asyncio.gather(*(self._call(client, semaphore, job, prompt) for job in jobs))
            return results

    def _request(self, messages: list[dict[str, str]], mode: str) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.settings.llm_temperature,
        }
        if self.settings.llm_max_tokens > 0:  # a small model can loop until its context is full
            request["max_tokens"] = self.settings.llm_max_tokens
        form = response_format(mode)
        if form is not None:
            request["response_format"] = form
        return request

    def backoff_seconds(self, attempt: int, retry_after: float | None) -> float:
        """Exponential with jitter (half to full), at least what the server asked for, capped."""
        base = self.settings.llm_retry_base_seconds * 2 ** (attempt - 1)
        delay = min(MAX_BACKOFF_SECONDS, base) * random.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_BACKOFF_SECONDS))
        return delay

    # -- json mode: refused once, then stepped down ------------------------------------------

    def _step_down(self, mode: JsonMode, error: openai.APIStatusError) -> JsonMode | None:
        """The mode to ask in next when the server refused `mode`'s response_format; None: not that.

        The refusal names the format, so it holds for every call: the cleaner steps down for good.
        """
        if not self.fallback or self.mode_settled or mode not in FALLBACK or not refuses_format(error):
            return None
        if self.json_mode == mode:  # the first call to see the refusal records it; the others follow
            self.refusals.append(f"{mode}: HTTP {error.status_code} {_short(error_message(error))}")
            self.json_mode = FALLBACK[mode]
            log.warning(
                "llm %s at %s refused response_format %s (%s); asking with json mode %s from now on",
                self.model,
                self.settings.llm_base_url,
                mode,
                self.refusals[-1],
                self.json_mode,
            )
        return self.json_mode

    # -- one call, with its retries ----------------------------------------------------------

    async def _call(
        self,
        client: openai.AsyncOpenAI,
        semaphore: asyncio.Semaphore,
        messages: list[dict[str, str]],
        prompt: PromptTemplate,
    ) -> CleanResult | Exception:
        settings = self.settings
        tries = max(0, settings.llm_max_retries) + 1
        spent = _Spent()
        errors: list[str] = []
        mode = self.json_mode
        where = f"{self.model} at {settings.llm_base_url}"
        attempt = 0
        while attempt < tries:
            attempt += 1
            retry_after: float | None = None
            try:
                async with semaphore:
                    # wait_for bounds the whole call, including a server that drips bytes slowly.
                    response = await asyncio.wait_for(
                        client.chat.completions.create(**self._request(messages, mode)),
                        settings.llm_timeout_seconds,
                    )
                spent.add(response)
                text = parse_answer(response, prose_ok=mode == "none", prompt=prompt)
                self.mode_settled = True  # this mode answers: no later refusal is taken for a format one
                return CleanResult(
                    text, self.name, self.model, prompt.id, spent.prompt_tokens, spent.completion_tokens
                )
            except openai.APIStatusError as error:
                next_mode = self._step_down(mode, error)
                if next_mode is not None:  # not a try: the same call, asked another way, at once
                    mode, attempt = next_mode, attempt - 1
                    continue
                refused = not self.fallback and mode in FALLBACK and refuses_format(error)
                if refused or (error.status_code not in RETRYABLE_STATUS and error.status_code < 500):
                    return _permanent(error, where, mode, spent, self.fallback)
                errors.append(f"HTTP {error.status_code}")
                retry_after = _retry_after(error.response)
            except Exception as error:  # sorted by _transient into retryable and not
                transient = _transient(error, settings.llm_timeout_seconds)
                if transient is None:  # a surprise: fail this one item, never the whole batch
                    message = f"llm {where}: unexpected {type(error).__name__}: {_short(str(error))}"
                    return CleanError(message, spent.prompt_tokens, spent.completion_tokens)
                errors.append(transient)
            if attempt < tries:
                await asyncio.sleep(self.backoff_seconds(attempt, retry_after))
        return CleanError(
            f"llm {where}: gave up after {tries} tries: {_summarise(errors)}",
            spent.prompt_tokens,
            spent.completion_tokens,
        )


def _caption_languages(
    count: int, spoken: Sequence[str | None] | None, asked: Sequence[str | None] | None
) -> list[str | None]:
    """Per item, the language to write in: the one asked for, else the one spoken."""
    spoken = spoken if spoken is not None else [None] * count
    asked = asked if asked is not None else [None] * count
    return [wanted or said for said, wanted in zip(spoken, asked, strict=True)]


def _language_slot(prompt: PromptTemplate, language: str | None) -> dict[str, str]:
    """{"language": "Spanish"} for a prompt that names the caption's language; v1 prompts do not."""
    return {"language": language_name(language)} if prompt.has_slot("language") else {}


def _permanent(
    error: openai.APIStatusError, where: str, mode: str, spent: _Spent, fallback: bool
) -> PermanentCleanError:
    words = f"HTTP {error.status_code} {_short(error_message(error))}"
    if not fallback and mode in FALLBACK and refuses_format(error):
        return FormatRefused(
            f"llm {where}: response_format {mode} refused: {words}",
            spent.prompt_tokens,
            spent.completion_tokens,
        )
    return PermanentCleanError(
        f"llm {where}: {words} (not retried)", spent.prompt_tokens, spent.completion_tokens
    )


def _transient(error: Exception, timeout: float) -> str | None:
    """How a retryable failure reads in the final error ('timeout after 60 s'); None: not retryable."""
    if isinstance(error, openai.APITimeoutError | TimeoutError):
        return f"timeout after {timeout:g} s"
    if isinstance(error, openai.APIConnectionError):
        return f"connection error ({_short(str(error.__cause__ or error))})"
    if isinstance(error, MalformedAnswer | openai.APIResponseValidationError | json.JSONDecodeError):
        return f"malformed answer ({_short(str(error))})"
    if isinstance(error, openai.APIError):
        return f"API error ({_short(str(error))})"
    return None


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _summarise(errors: list[str]) -> str:
    """'HTTP 500 ×2; timeout after 60 s' rather than the same words over and over."""
    runs: list[list[Any]] = []
    for error in errors:
        if runs and runs[-1][0] == error:
            runs[-1][1] += 1
        else:
            runs.append([error, 1])
    return "; ".join(error if count == 1 else f"{error} ×{count}" for error, count in runs)
