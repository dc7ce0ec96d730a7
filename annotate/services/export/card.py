"""The dataset card (README.md with a `configs:` block) and the manifest's `load_with`, written from the
files an export actually wrote: a split with no rows has no file, so it is named nowhere (naming it made
`load_dataset` fail with FileNotFoundError).

`datasets.load_dataset(export_dir)` reads the card's `configs:`: the default config is the Parquet files
when there are any (their schema is fixed), else the JSONL; Localized Narratives lines are a config of
their own. The pixmo-cap profile also declares its features, so they are PixMo-Cap's whatever the rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from annotate.services.export.fields import PIXMO_POINTS_ROW, ListOf, ParquetType, Struct
from annotate.services.export.narratives import FORMAT as NARRATIVES
from annotate.services.export.pointing import PIXMO_POINTS
from annotate.services.export.profiles import Profile
from db.files import atomic_write

CARD = "README.md"
BUILDERS = {"parquet": "parquet", "jsonl": "json", NARRATIVES: "json", PIXMO_POINTS: "json"}
POINTING_COLUMNS = (
    "Pointing (narrate and point projects): `points` lists each take's current points per label as "
    "PixMo-Points does ({label, points: [{x, y}] in percent of width and height, one decimal, count, "
    'collection_method "pointing" or "narrate", recording_id}; a label answered "none in this image" has '
    "count 0), `points_text` renders the labelled points as Molmo does (`<point x=.. y=.. alt=..>`, or "
    "`<points x1=.. y1=.. ...>` for several), and each recording carries `traces` (strokes of {x, y, t}, "
    "x and y in 0..1, t in seconds of its audio) and, for a traced take, `timed_caption` (its words with "
    "their times), as Localized Narratives."
)


PIXMO_POINTS_CONFIG = (
    "The `pixmo_points` config has exactly PixMo-Points' columns (image_url, image_sha256, points in "
    "percent, count, label, collection_method), one row per image, label and take."
)


def _splits(files: list[dict[str, Any]], fmt: str) -> dict[str, str]:
    return {f["split"]: f["path"] for f in files if f["format"] == fmt and f.get("split")}


def _default_format(files: list[dict[str, Any]]) -> str | None:
    for fmt in ("parquet", "jsonl"):
        if _splits(files, fmt):
            return fmt
    return None


def load_with(files: list[dict[str, Any]]) -> dict[str, str]:
    """Snippets that load exactly the files written (none for a format that wrote nothing)."""
    snippets: dict[str, str] = {}
    default = _default_format(files)
    if default is not None:
        snippets["datasets"] = 'load_dataset("EXPORT_DIR")  # the configs in README.md'
        data_files = json.dumps(_splits(files, default))
        snippets["datasets_files"] = f'load_dataset("{BUILDERS[default]}", data_files={data_files})'
        first = next(iter(_splits(files, default).values()))
        reader = "read_parquet" if default == "parquet" else "read_json"
        snippets["pandas"] = f'pandas.{reader}("{first}"{", lines=True" if default == "jsonl" else ""})'
    if _splits(files, PIXMO_POINTS):
        snippets["pixmo_points"] = 'load_dataset("EXPORT_DIR", "pixmo_points")  # PixMo-Points\' columns'
    narratives = _splits(files, NARRATIVES)
    if narratives:
        snippets["localized_narratives"] = (
            'load_dataset("EXPORT_DIR", "localized_narratives"), or per line: '
            "LocalizedNarrative(**json.loads(line))"
        )
    return snippets


def _feature(kind: ParquetType) -> Any:
    if isinstance(kind, ListOf):
        return {"list": _feature(kind.item)}
    if isinstance(kind, Struct):
        return [{"name": name, **_named(item)} for name, item in kind.fields]
    return kind


def _named(kind: ParquetType) -> dict[str, Any]:
    """One feature as a card's YAML writes it: `dtype: string`, `list: string`, `struct: [...]`."""
    if isinstance(kind, ListOf):
        return {"list": _feature(kind.item)}
    if isinstance(kind, Struct):
        return {"struct": _feature(kind)}
    return {"dtype": kind}


def _config(name: str, splits: dict[str, str]) -> dict[str, Any]:
    return {"config_name": name, "data_files": [{"split": s, "path": p} for s, p in splits.items()]}


def card_text(project: str, profile: Profile, files: list[dict[str, Any]]) -> str:
    configs = []
    default = _default_format(files)
    if default is not None:
        configs.append(_config("default", _splits(files, default)))
    if _splits(files, NARRATIVES):
        configs.append(_config("localized_narratives", _splits(files, NARRATIVES)))
    infos = []
    if profile.shape is not None and default is not None:
        infos.append({"config_name": "default", "features": _feature(profile.struct)})
    if _splits(files, PIXMO_POINTS):
        configs.append(_config("pixmo_points", _splits(files, PIXMO_POINTS)))
        infos.append({"config_name": "pixmo_points", "features": _feature(PIXMO_POINTS_ROW)})
    header: dict[str, Any] = {}
    if configs:
        header["configs"] = configs
    if infos:
        header["dataset_info"] = infos[0] if len(infos) == 1 else infos
    # JSON is YAML: no YAML writer is needed, and every string is quoted safely.
    front = "".join(f"{key}: {json.dumps(value, ensure_ascii=False)}\n" for key, value in header.items())
    written = ", ".join(f"{f['path']} ({f['rows']} rows)" for f in files) or "no rows"
    paragraphs = [
        f"# voicecap export: {project}",
        f"Profile `{profile.name}`: {profile.describes}.",
        f"Files: {written}.",
        *([POINTING_COLUMNS] if profile.shape is None else []),
        *([PIXMO_POINTS_CONFIG] if _splits(files, PIXMO_POINTS) else []),
        'Load it with `datasets.load_dataset("path/to/this/folder")`; manifest.json holds the counts, '
        "the filters and a sha256 of every file.",
    ]
    return f"---\n{front}---\n\n" + "\n\n".join(paragraphs) + "\n"


def write_card(out_dir: Path, project: str, profile: Profile, files: list[dict[str, Any]]) -> Path:
    path = out_dir / CARD
    with atomic_write(path) as handle:
        handle.write(card_text(project, profile, files))
    return path
