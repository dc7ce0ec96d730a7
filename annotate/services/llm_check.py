"""`voicecap llm check`: what an OpenAI-compatible endpoint supports, and the settings that suit it.

The check asks the way the cleaner asks: it lists the models, then captions one sample transcript
once per json mode (json_schema, json_object, none) with the real prompt and the real answer checks,
no retries and no fallback, timing each call. A mode "works" when its answer is a caption; it is
"refused" when the server rejects its response_format, "malformed" when the answer is no caption.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import openai

from db.settings import Settings
from transcribe.clean.base import CleanResult
from transcribe.clean.json_modes import JSON_MODES, error_message
from transcribe.clean.llm import FormatRefused, LLMCleaner

SAMPLE_TRANSCRIPT = (
    "um so this is a photo of, uh, a red boat on calm water, and above it there are two, no, three "
    "seagulls, and in the background there's a white lighthouse on a rocky hill"
)
TIMEOUT_HEADROOM = 4  # a recommended timeout leaves this many times the slowest answer seen


@dataclass(frozen=True)
class ModeProbe:
    mode: str
    outcome: str  # "works" | "refused" | "malformed" | "error"
    detail: str  # the caption written, or what went wrong
    seconds: float

    @property
    def works(self) -> bool:
        return self.outcome == "works"


@dataclass
class EndpointCheck:
    base_url: str
    model: str
    reachable: bool = False
    problems: list[str] = field(default_factory=list)  # what is wrong with the endpoint or the settings
    models: list[str] = field(default_factory=list)
    model_listed: bool | None = None  # None: the endpoint does not list its models
    list_seconds: float | None = None
    modes: list[ModeProbe] = field(default_factory=list)
    recommended: dict[str, str] = field(default_factory=dict)  # VOICECAP_* variable -> value

    @property
    def usable(self) -> bool:
        return any(probe.works for probe in self.modes)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["usable"] = self.usable
        for probe in data["modes"]:
            probe["works"] = probe["outcome"] == "works"
        return data


def check_endpoint(settings: Settings, transcript: str = SAMPLE_TRANSCRIPT) -> EndpointCheck:
    """Probe settings' LLM endpoint: reachable, model listed, which json modes work, how fast."""
    check = EndpointCheck(base_url=settings.llm_base_url, model=settings.llm_model)
    _list_models(check, settings)
    if check.reachable:
        check.modes = [_probe(settings, mode, transcript) for mode in JSON_MODES]
        check.recommended = recommend(check, settings)
        if not check.usable:
            check.problems.append("no json mode gave a caption")
    return check


def _list_models(check: EndpointCheck, settings: Settings) -> None:
    client = openai.OpenAI(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key or "not-needed",
        timeout=settings.llm_timeout_seconds,
        max_retries=0,
    )
    started = time.monotonic()
    try:
        check.models = sorted(model.id for model in client.models.list())
    except openai.APIConnectionError as error:
        check.problems.append(f"not reachable: {error.__cause__ or error}")
        return
    except openai.APIStatusError as error:
        check.reachable = True
        if error.status_code in (401, 403):
            check.problems.append(f"the API key was refused: HTTP {error.status_code} {error_message(error)}")
        return  # many servers have no /models; the mode probes still tell
    finally:
        client.close()
    check.reachable = True
    check.list_seconds = round(time.monotonic() - started, 3)
    check.model_listed = settings.llm_model in check.models
    if not check.model_listed:
        listed = ", ".join(check.models) or "none"
        check.problems.append(f"model {settings.llm_model!r} is not listed (listed: {listed})")


def _probe(settings: Settings, mode: str, transcript: str) -> ModeProbe:
    probe_settings = settings.model_copy(
        update={"llm_json_mode": mode, "llm_max_retries": 0, "llm_concurrency": 1}
    )
    cleaner = LLMCleaner(probe_settings, fallback=False)
    started = time.monotonic()
    result = cleaner.clean_many([transcript])[0]
    seconds = round(time.monotonic() - started, 3)
    if isinstance(result, CleanResult):
        return ModeProbe(mode, "works", result.text, seconds)
    outcome = "refused" if isinstance(result, FormatRefused) else "error"
    if "malformed answer" in str(result):
        outcome = "malformed"
    # The check names the endpoint once; each mode's detail is only what went wrong.
    detail = str(result).removeprefix(f"llm {settings.llm_model} at {settings.llm_base_url}: ")
    return ModeProbe(mode, outcome, detail, seconds)


def recommend(check: EndpointCheck, settings: Settings) -> dict[str, str]:
    """The VOICECAP_* settings for this endpoint: the strictest json mode that works, a listed model,
    a timeout with room for the slowest answer seen."""
    recommended: dict[str, str] = {}
    if check.model_listed is False and len(check.models) == 1:
        recommended["VOICECAP_LLM_MODEL"] = check.models[0]
    working = [probe for probe in check.modes if probe.works]
    if working:
        recommended["VOICECAP_LLM_JSON_MODE"] = working[0].mode
        slowest = max(probe.seconds for probe in working)
        if slowest * TIMEOUT_HEADROOM > settings.llm_timeout_seconds:
            timeout = max(10, math.ceil(slowest * TIMEOUT_HEADROOM / 10) * 10)
            recommended["VOICECAP_LLM_TIMEOUT_SECONDS"] = str(timeout)
    return recommended
