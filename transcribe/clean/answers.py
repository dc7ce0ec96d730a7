"""Reading a model's answer: the caption in it, or why it is not one.

JSON modes (json_object, json_schema) expect `{"caption": "…"}`; local models often wrap it in a code
fence or a sentence, which is tolerated. In `none` mode a server may ignore the JSON instruction, so a
prose answer is accepted as the caption when it is plausible: not empty, not a refusal, not the prompt
echoed back. In every mode a caption that is a placeholder or the prompt's own example is refused: a
small model copies what it sees.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

_FENCED = re.compile(r"```(?:json|text)?\s*(.*?)```", re.DOTALL)
_QUOTED = re.compile(r'"([^"]{1,80})"')  # an example may wrap onto the next line
_BRACKETED = re.compile(r"^\s*(<[^<>]*>|\[[^\[\]]*\]|\{[^{}]*\})\s*$")
# Words a template uses where the real text belongs.
PLACEHOLDERS = frozenset(
    {"caption", "the caption", "your caption", "a caption", "caption here", "string", "text", "..."}
)
_REFUSAL = re.compile(
    r"^(i'?m sorry|i am sorry|sorry|i can ?not|i can'?t|i am unable|i'?m unable|as an ai|unfortunately)\b"
)
# A preface before a prose caption ("Sure! Here is the caption:"), dropped.
_PREFACE = re.compile(
    r"^\s*(?:sure[!.,]?\s*)?(?:here(?:'s| is) (?:the |your |a )?(?:written )?caption\s*:|caption\s*:)\s*",
    re.IGNORECASE,
)
# A caption describes the image; an answer that talks about the transcript or the speaker describes the task.
_ABOUT_THE_TASK = re.compile(r"<transcript|\btranscript\b|\bthe speaker\b|\bthe annotator\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”]?\s+")
ECHO_RUN = 8  # this many words in a row copied from the instructions make an answer an echo


class MalformedAnswer(Exception):
    """The endpoint answered, but not with a caption (wrong JSON, a placeholder, a refusal, an echo)."""


class CaptionAnswer(BaseModel):
    """The structured answer every prompt asks for."""

    model_config = ConfigDict(extra="ignore")
    caption: str

    @field_validator("caption", mode="before")
    @classmethod
    def _unwrap(cls, value: object) -> object:
        """Small models nest it: {"caption": {"text": "…"}}; one string inside is the caption."""
        if isinstance(value, dict):
            strings = [item for item in value.values() if isinstance(item, str)]
            if isinstance(value.get("text"), str):
                return value["text"]
            if len(strings) == 1:
                return strings[0]
        return value

    @field_validator("caption")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("caption is empty")
        return value


def json_payload(content: str) -> str:
    """The JSON object inside an answer; local models often wrap it in a code fence or a sentence."""
    fenced = _FENCED.search(content)
    if fenced:
        content = fenced.group(1)
    start, end = content.find("{"), content.rfind("}")
    return content[start : end + 1] if 0 <= start < end else content


def prompt_examples(*texts: str) -> frozenset[str]:
    """Every quoted example a prompt shows (`"<the caption>"`, `"four boats"`), normalised: a small model
    answers with one of them, and no caption of a real image is exactly a prompt's example."""
    return frozenset(_normalise(example) for text in texts for example in _QUOTED.findall(text))


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w<>\[\]{}.]+", " ", text.lower()).split()).strip(" .")


def check_not_copied(caption: str, examples: Iterable[str] = ()) -> str:
    """The caption, unless it is a placeholder or the prompt's example (MalformedAnswer)."""
    normal = _normalise(caption)
    if normal in PLACEHOLDERS or _BRACKETED.match(caption) or normal in set(examples):
        raise MalformedAnswer(f"the caption {caption[:60]!r} copies the prompt's placeholder")
    return caption


def json_caption(content: str) -> str:
    """The caption of a `{"caption": …}` answer; MalformedAnswer when there is none."""
    try:
        return CaptionAnswer.model_validate_json(json_payload(content)).caption
    except ValidationError as error:
        problem = error.errors()[0]["msg"]
        raise MalformedAnswer(f"{problem}; answer began {content[:80]!r}") from None


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def echoes(answer: str, instructions: str, run: int = ECHO_RUN) -> bool:
    """Whether the answer copies `run` words in a row from the instructions (the prompt echoed)."""
    said = _words(instructions)
    seen = {tuple(said[i : i + run]) for i in range(len(said) - run + 1)}
    words = _words(answer)
    return any(tuple(words[i : i + run]) in seen for i in range(len(words) - run + 1))


def prose_caption(content: str, instructions: str) -> str:
    """A prose answer as the caption when it is plausible; MalformedAnswer otherwise.

    Small models describe, then start talking about the task ("… This is the transcript of …"): the
    sentences before that are the caption; an answer that opens with such talk has none.
    """
    fenced = _FENCED.search(content)
    text = " ".join(_PREFACE.sub("", fenced.group(1) if fenced else content).split())
    if not text:
        raise MalformedAnswer("empty answer")
    if _REFUSAL.match(text.lower()):
        raise MalformedAnswer(f"a refusal, not a caption: {text[:80]!r}")
    kept: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        if _ABOUT_THE_TASK.search(sentence) or echoes(sentence, instructions):
            break
        kept.append(sentence)
    caption = " ".join(kept).strip(" \"'“”")
    if not caption:
        raise MalformedAnswer(f"the answer echoes the prompt: {text[:80]!r}")
    return caption


def read_caption(content: str, *, prose_ok: bool, instructions: str, examples: Iterable[str] = ()) -> str:
    """The caption in an answer's content: JSON first, then (when `prose_ok`) plausible prose."""
    try:
        caption = json_caption(content)
    except MalformedAnswer:
        if not prose_ok or _looks_like_json(content):
            raise
        caption = prose_caption(content, instructions)
    return check_not_copied(caption, examples)


def _looks_like_json(content: str) -> bool:
    """A JSON object without a caption is a wrong answer, not prose to keep."""
    try:
        return isinstance(json.loads(json_payload(content)), dict)
    except ValueError:
        return False
