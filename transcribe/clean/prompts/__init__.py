"""Prompt templates, one file per version: `<kind>-v<N>.txt` (caption-v1, merge-v1, …).

A file holds `=== system ===` and `=== user ===` sections after optional `#` comment lines. The user
section names its slots: `{transcript}` (caption) or `{transcripts}` (merge); the system section of
v2 and later names `{language}`, the language the caption is written in ("Spanish"). Slots are replaced
literally, so braces elsewhere (the JSON example) need no escaping and a transcript's own braces are
safe. The id of the file is stored on every caption it produced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

from transcribe.clean.answers import prompt_examples

PROMPT_DIR = Path(__file__).parent
_ID = re.compile(r"^(?P<kind>[a-z]+)-v(?P<version>\d+)$")
_SECTION = re.compile(r"^=== (system|user) ===$", re.MULTILINE)


class PromptNotFound(LookupError):
    pass


@dataclass(frozen=True)
class PromptTemplate:
    id: str  # "caption-v1"
    kind: str  # "caption" | "merge"
    system: str
    user: str

    def has_slot(self, name: str) -> bool:
        return "{" + name + "}" in self.system or "{" + name + "}" in self.user

    def messages(self, **slots: str) -> list[dict[str, str]]:
        """The chat messages with each `{slot}` replaced by its value, in both sections."""
        system, user = self.system, self.user
        for name, value in slots.items():
            if not self.has_slot(name):
                raise ValueError(f"prompt {self.id} has no {{{name}}} slot")
            system = system.replace("{" + name + "}", value)
        for name, value in slots.items():
            if "{" + name + "}" in self.user:  # only the template's own slots: a transcript's "{…}" stays
                user = user.replace("{" + name + "}", value)
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    @cached_property
    def examples(self) -> frozenset[str]:
        """Example captions the prompt shows: an answer that copies one is malformed."""
        return prompt_examples(self.system, self.user)


def available(kind: str | None = None) -> list[str]:
    """Prompt ids shipped with this package, oldest version first."""
    found = []
    for path in PROMPT_DIR.glob("*.txt"):
        match = _ID.match(path.stem)
        if match and (kind is None or match["kind"] == kind):
            found.append((match["kind"], int(match["version"]), path.stem))
    return [prompt_id for _, _, prompt_id in sorted(found)]


@cache
def load_prompt(prompt_id: str) -> PromptTemplate:
    match = _ID.match(prompt_id)
    path = PROMPT_DIR / f"{prompt_id}.txt"
    if match is None or not path.is_file():
        raise PromptNotFound(f"no prompt {prompt_id!r}; shipped: {', '.join(available()) or 'none'}")
    text = "\n".join(line for line in path.read_text().splitlines() if not line.startswith("#"))
    parts = _SECTION.split(text)
    sections = dict(zip(parts[1::2], (part.strip() for part in parts[2::2]), strict=True))
    if set(sections) != {"system", "user"}:
        raise ValueError(f"{path} needs exactly a '=== system ===' and a '=== user ===' section")
    return PromptTemplate(prompt_id, match["kind"], sections["system"], sections["user"])


def latest(kind: str) -> PromptTemplate:
    ids = available(kind)
    if not ids:
        raise PromptNotFound(f"no {kind} prompt shipped")
    return load_prompt(ids[-1])


def resolve(kind: str, prompt_id: str = "") -> PromptTemplate:
    """The named prompt (checked to be of `kind`), or the newest of `kind` when none is named."""
    if not prompt_id:
        return latest(kind)
    prompt = load_prompt(prompt_id)
    if prompt.kind != kind:
        raise PromptNotFound(f"prompt {prompt_id!r} is a {prompt.kind} prompt, not a {kind} prompt")
    return prompt
