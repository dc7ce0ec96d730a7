"""The one settings object. Every `VOICECAP_*` environment variable is read here and nowhere else.

It lives in `db/` because `db` is the bottom of the import graph: `transcribe` and `annotate` both
need settings, and neither may be imported by `db`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICECAP_", env_file=".env", extra="ignore")

    # Storage
    data_dir: Path = Field(Path("./voicecap-data"), description="Blob store, secrets and the SQLite file.")
    blob_url: str = Field(
        "",
        description="Where images and audio are stored: a folder, or s3://BUCKET/PREFIX (an existing "
        "bucket; endpoint, region and credentials from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION). Empty means data_dir/blobs.",
    )
    media_redirect: bool = Field(
        False,
        description="Serve images and audio by redirect to a short-lived presigned URL of the object "
        "store (S3 only) instead of through the app.",
    )
    presigned_url_seconds: int = Field(900, description="How long a presigned media URL stays valid.")
    database_url: str = Field("", description="SQLAlchemy URL; empty means sqlite:///<data_dir>/voicecap.db.")

    # Web app
    host: str = Field("127.0.0.1", description="Interface `voicecap serve` listens on.")
    port: int = Field(8000, description="Port `voicecap serve` listens on.")
    secret_key: str = Field(
        "", description="Signs session cookies; empty means generated once into data_dir."
    )
    session_days: int = Field(14, description="How long a login lasts.")
    cookie_secure: bool = Field(False, description="Set true behind HTTPS.")
    login_attempts_per_minute: int = Field(
        10, description="Login attempts allowed per minute from one address for one user name."
    )
    login_attempts_per_address_per_minute: int = Field(
        50, description="Login attempts allowed per minute from one address, all names together."
    )
    assignment_lease_minutes: int = Field(
        30, description="How long an annotator holds an image before it returns to the pool."
    )

    # Audio intake
    max_upload_mb: float = Field(
        50.0, description="Largest accepted recording upload (checked while streaming)."
    )
    duration_tolerance_seconds: float = Field(
        5.0, description="Grace above a project's max seconds before a take is refused."
    )
    max_silence_fraction: float = Field(0.9, description="A take more silent than this share is refused.")
    # -60, not -50: quiet speech through a browser's noise suppression dips to -55 between syllables,
    # so at -50 a real -45 dBFS take measured ~88% silence and was sometimes refused as `audio_silent`.
    silence_threshold_dbfs: float = Field(
        -60.0, description="A 100 ms window quieter than this (RMS, dBFS) counts as silence at intake."
    )
    quiet_loudness_dbfs: float = Field(
        -40.0, description="A take quieter than this (RMS over the take, dBFS) is kept but flagged `quiet`."
    )
    mostly_silent_fraction: float = Field(
        0.5, description="A take more silent than this share is kept but flagged `mostly_silent`."
    )

    # Pointing (narrate and point modes)
    pointing_max_points: int = Field(
        500, ge=1, description="Most points one take may carry; more is refused (`pointing_too_many_points`)."
    )
    pointing_max_trace_samples: int = Field(
        20_000,
        ge=1,
        description="Most trace samples one take may carry (a 120 s take at 60 Hz is 7,200); more is "
        "refused (`pointing_too_many_samples`).",
    )
    pointing_max_kb: int = Field(
        2048, ge=1, description="Largest pointing JSON (traces and points) sent with one take, in KB."
    )
    pointing_time_tolerance_seconds: float = Field(
        1.0, description="A trace sample or point may be timed this far outside the take's audio."
    )
    pointing_link_window_seconds: float = Field(
        3.0, description="A point links to the noun phrase spoken nearest its time, at most this far away."
    )

    # Review triage
    unsure_word_probability: float = Field(
        0.5, description="A word Whisper heard with a lower probability is unsure (underlined in review)."
    )
    unsure_word_share: float = Field(
        0.15, description="A take with more than this share of unsure words is flagged `unsure_recognition`."
    )
    min_mean_word_probability: float = Field(
        0.7, description="A take whose mean word probability is lower is flagged `unsure_recognition`."
    )

    # Transcription
    engine: Literal["faster-whisper", "openai-whisper"] = Field(
        "faster-whisper",
        description="Speech-to-text engine: faster-whisper (default) or openai-whisper (needs the extra).",
    )
    model: str = Field(
        "tiny.en",
        description="A name of `voicecap models list` (tiny.en, base), a local directory or a .pt path.",
    )
    device: str = Field("auto", description="auto, cpu or cuda.")
    compute_type: str = Field(
        "auto", description="faster-whisper compute type; auto = int8 on CPU, float16 on GPU."
    )
    cpu_threads: int = Field(0, description="0 means the number of cores this process may use.")
    beam_size: int = Field(5, description="Whisper beam size (both engines).")
    batch_size: int = Field(
        8, description="Recordings claimed per batch; also faster-whisper's batch on GPU."
    )
    vad_filter: bool = Field(
        True, description="Skip silence with voice activity detection (stops hallucinated text)."
    )
    language: str = Field("", description="Force a language; empty means the project's language.")
    escalation_model: str = Field(
        "",
        description="Confidence cascade: unsure transcripts are transcribed again by this model (e.g. "
        "base on CPU, large-v3 on GPU) and the surer one kept; empty means no cascade.",
    )
    check_language: bool = Field(
        True,
        description="Detect each take's spoken language with a multilingual model (the worker's or the "
        "escalation model; one more encoder pass) and flag takes not in the project's language.",
    )
    # unsure_word_probability and unsure_word_share (under "Review triage") also mark a transcript unsure.
    unsure_mean_logprob: float = Field(
        -0.8, description="A transcript whose mean log-probability is below this is unsure."
    )

    # Cleaning
    cleaner: Literal["rules", "llm"] = Field(
        "rules", description="Transcript cleaner: rules (offline) or llm (any OpenAI-compatible endpoint)."
    )
    llm_base_url: str = Field(
        "http://127.0.0.1:11434/v1",
        description="OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp, LM Studio).",
    )
    llm_model: str = Field("llama3.1", description="Model name sent to the endpoint.")
    llm_api_key: str = Field("not-needed", description="API key for the endpoint.")
    llm_concurrency: int = Field(16, description="Requests in flight at once to the endpoint.")
    llm_timeout_seconds: float = Field(60.0, description="Timeout of one request to the endpoint.")
    llm_price_per_million_input: float = Field(
        0.0, description="Price per million prompt tokens, for cost estimates (0: none shown)."
    )
    llm_price_per_million_output: float = Field(
        0.0, description="Price per million completion tokens, for cost estimates."
    )
    prompt_version: str = Field("", description="Prompt template id; empty means the newest shipped.")
    faithfulness_threshold: float = Field(
        0.15, description="Share of unsupported content words that flags a caption."
    )
    llm_max_retries: int = Field(
        3, description="Retries of one LLM call (429, 5xx, timeout, dropped connection, bad JSON)."
    )
    llm_retry_base_seconds: float = Field(
        1.0, description="First retry waits about this long, doubling each time (capped at 30 s)."
    )
    llm_json_mode: Literal["json_object", "json_schema", "none"] = Field(
        "json_object", description="How to ask for JSON: response_format json_object, json_schema, or not."
    )
    llm_temperature: float = Field(0.2, description="Sampling temperature for the llm cleaner.")
    llm_max_tokens: int = Field(
        1024, description="Most tokens one LLM answer may take (a rambling model is cut off; 0: no cap)."
    )
    merge_captions: bool = Field(
        True, description="Also write one merged caption per image from all its transcripts (llm only)."
    )
    merge_prompt_version: str = Field("", description="Merge prompt id; empty means the newest shipped.")

    # Image ingestion
    max_image_pixels: int = Field(
        89_478_485, description="More pixels than this is refused as a decompression bomb (Pillow's default)."
    )
    max_image_mb: float = Field(100.0, description="Largest image file accepted, local or downloaded.")
    fetch_timeout_seconds: float = Field(30.0, description="Per-request timeout when ingesting image URLs.")
    ingest_allow_private_urls: bool = Field(
        False,
        description="Let URL lists fetch loopback, private, link-local and multicast addresses "
        "(a lab network); off, such URLs and redirects to them are refused.",
    )
    ingest_workers: int = Field(
        0, description="Threads that read, decode and store images; 0 means cores + 1, 1 means no threads."
    )

    # Work queue
    lease_seconds: int = Field(
        300, description="How long a worker holds claimed recordings without a heartbeat."
    )
    max_attempts: int = Field(
        3, description="Errors (the engine or cleaner raised) before a recording is marked failed."
    )
    max_crashes: int = Field(
        10,
        ge=1,
        description="A worker that dies (killed, preempted, crashed) costs its rows no attempt: they are "
        "retried one at a time, and a recording is marked failed once its worker died this many times "
        "while processing it alone.",
    )
    retry_backoff_seconds: float = Field(30.0, description="First retry delay; doubles with each attempt.")
    worker_poll_seconds: float = Field(2.0, description="How often an idle worker looks for work.")
    test_crash_on_recording: int | None = Field(
        None,
        description="For tests only: a worker that is about to process this recording id exits at "
        "once, as if its machine died. Empty: off.",
    )

    # Export and Label Studio
    public_base_url: str = Field(
        "",
        description="Where this app is reached (e.g. https://voicecap.example); exports and Label "
        "Studio tasks link images and audio under it. Empty: exports give local paths.",
    )
    media_link_days: float = Field(
        30.0,
        gt=0,
        description="How long a signed media link (exports' image_url, Label Studio tasks' image and audio) "
        "lets anyone holding it fetch that one file without logging in.",
    )
    labelstudio_url: str = Field("http://127.0.0.1:8080", description="Label Studio's base URL.")
    labelstudio_api_key: str = Field("", description="A Label Studio access token (Account & Settings).")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'voicecap.db').resolve()}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def blob_location(self) -> str:
        """VOICECAP_BLOB_URL, or the local folder data_dir/blobs."""
        return self.blob_url or str(self.blob_dir)


@lru_cache
def get_settings() -> Settings:
    return Settings()


def reset_settings_cache() -> None:
    """Tests and the demo change the environment; this makes the next get_settings() re-read it."""
    get_settings.cache_clear()
