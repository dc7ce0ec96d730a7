"""A speech clip as the recogniser benchmarks use it: decoded 16 kHz mono audio and its reference text."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transcribe.engines.base import SAMPLE_RATE


@dataclass
class Clip:
    name: str
    audio: np.ndarray
    text: str
    language: str = "en"

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE
