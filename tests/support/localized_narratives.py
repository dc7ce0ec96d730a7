# python3
# Copyright 2020 The Google Research Authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""Localized Narratives' own record types, copied from google/localized-narratives (localized_narratives.py
at commit 5c5b303), so tests load voicecap's `--format localized-narratives` lines with the
format's own loader: `LocalizedNarrative(**json.loads(line))`.

Only the three NamedTuples are copied, unchanged but for indentation (the file's downloader needs `wget`,
which the tests do not use).
"""

from typing import List, NamedTuple  # noqa: UP035 - as upstream wrote it


class TimedPoint(NamedTuple):
    x: float
    y: float
    t: float


class TimedUtterance(NamedTuple):
    utterance: str
    start_time: float
    end_time: float


class LocalizedNarrative(NamedTuple):
    """Represents a Localized Narrative annotation.

    Visit https://google.github.io/localized-narratives/index.html?file-formats=1
    for the documentation of each field.
    """

    dataset_id: str
    image_id: str
    annotator_id: int
    caption: str
    timed_caption: List[TimedUtterance]  # noqa: UP006
    traces: List[List[TimedPoint]]  # noqa: UP006
    voice_recording: str
