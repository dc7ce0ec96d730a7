"""Which images an export holds: the filter, the split, and the SQL that selects, counts and pages them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Engine, Select, and_, exists, func, select

from annotate.errors import InvalidInput
from db.models import Caption, CaptionStatus, Image
from db.session import read_only_engine

State = Literal["approved", "captioned", "all"]
STATES: tuple[str, ...] = ("approved", "captioned", "all")
SPLITS: tuple[str, ...] = ("train", "validation", "test")
# Captions that no longer speak for their image.
DEAD_CAPTION_STATES = (CaptionStatus.rejected, CaptionStatus.superseded)


def parse_when(text: str | None) -> datetime | None:
    """An ISO date or date-time; one without a zone is UTC."""
    if text is None or not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"{text!r} is not an ISO date like 2026-01-31 or 2026-01-31T12:00:00+00:00."
        ) from None
    return as_utc(value)


def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class ExportFilter:
    """Which images an export holds and which caption speaks for each.

    state: `approved` = images with an approved caption; `captioned` = images with any live caption
    (approved preferred, else the latest); `all` = every image, `caption` null where none fits.
    since/until and caption_version narrow the captions that may be chosen (by their created_at and
    prompt_version); with `all` every image is still listed.
    """

    project_id: int
    state: State = "approved"
    since: datetime | None = None
    until: datetime | None = None
    caption_version: str | None = None

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise InvalidInput(f"Unknown state {self.state!r}; use one of {', '.join(STATES)}.")
        for value in (self.since, self.until):
            if value is not None and value.tzinfo is None:
                raise InvalidInput("Dates need a time zone (e.g. 2026-01-31T00:00:00+00:00).")
        if self.since and self.until and self.since >= self.until:
            raise InvalidInput("--since must be before --until.")

    def as_dict(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "state": self.state,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "caption_version": self.caption_version,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExportFilter:
        """The inverse of as_dict (a part builder receives its filter this way)."""
        return cls(
            project_id=data["project_id"],
            state=data["state"],
            since=parse_when(data["since"]),
            until=parse_when(data["until"]),
            caption_version=data["caption_version"],
        )


@dataclass(frozen=True)
class SplitSpec:
    """Deterministic split by image hash: int(sha256[:8], 16) % 100 against cumulative percentages.

    The hash of the image bytes decides, so an image keeps its split across exports, databases and
    re-ingests, and duplicates of one image cannot leak between train and test.
    """

    train: int = 90
    validation: int = 5
    test: int = 5

    def __post_init__(self) -> None:
        parts = (self.train, self.validation, self.test)
        if any(p < 0 for p in parts) or sum(parts) != 100:
            raise InvalidInput(f"Split percentages must be non-negative and add up to 100, not {parts}.")

    @classmethod
    def parse(cls, text: str) -> SplitSpec:
        """ "90,5,5" (train, validation, test)."""
        try:
            parts = [int(p) for p in text.replace("/", ",").split(",")]
        except ValueError:
            raise InvalidInput(f"--split takes three whole percentages like 90,5,5, not {text!r}.") from None
        if len(parts) != 3:
            raise InvalidInput(f"--split takes three percentages (train,validation,test), not {text!r}.")
        return cls(*parts)

    def split_of(self, sha256: str) -> str:
        bucket = int(sha256[:8], 16) % 100
        if bucket < self.train:
            return "train"
        if bucket < self.train + self.validation:
            return "validation"
        return "test"

    def percentages(self) -> dict[str, int]:
        return {"train": self.train, "validation": self.validation, "test": self.test}

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.percentages(),
            "method": "int(sha256[:8], 16) % 100: below train -> train, below train+validation -> "
            "validation, else test",
        }


def caption_conditions(flt: ExportFilter) -> list[Any]:
    """SQL for the captions the filter's version and dates allow."""
    conditions: list[Any] = []
    if flt.caption_version is not None:
        conditions.append(Caption.prompt_version == flt.caption_version)
    if flt.since is not None:
        conditions.append(Caption.created_at >= flt.since)
    if flt.until is not None:
        conditions.append(Caption.created_at < flt.until)
    return conditions


def image_condition(flt: ExportFilter, after_id: int = 0, upto_id: int | None = None) -> Any:
    """SQL that keeps the images with ids in (after_id, upto_id] that have a caption the filter could
    choose (every image in the range for `all`).

    The id bounds are repeated on the captions inside EXISTS: PostgreSQL plans the EXISTS as a merge
    semi-join over ix_captions_image, and without its own bound that scan starts at the first caption of
    the table for every window (quadratic: a million images took 115 s instead of under 60).
    """
    window = [Image.id > after_id]
    caption_window = [Caption.image_id > after_id]
    if upto_id is not None:
        window.append(Image.id <= upto_id)
        caption_window.append(Caption.image_id <= upto_id)
    if flt.state == "all":
        return and_(*window)
    status = (
        Caption.status == CaptionStatus.approved
        if flt.state == "approved"
        else Caption.status.not_in(DEAD_CAPTION_STATES)
    )
    caption = exists().where(
        and_(Caption.image_id == Image.id, status, *caption_window, *caption_conditions(flt))
    )
    return and_(*window, caption)


def reader(engine: Engine) -> Engine:
    """The engine for reading only: on SQLite its transactions begin DEFERRED, so in WAL mode an export
    (or two export processes) never holds up the workers' writes."""
    return read_only_engine(engine)


def count_images(engine: Engine, flt: ExportFilter) -> int:
    """How many images the filter selects (for the progress bar and the manifest's check)."""
    query = select(func.count()).select_from(Image).where(Image.project_id == flt.project_id)
    query = query.where(image_condition(flt))
    with reader(engine).connect() as conn:
        return int(conn.execute(query).scalar_one())


def plan_parts(engine: Engine, flt: ExportFilter, parts: int) -> list[tuple[int, int]]:
    """Cut the selected images into up to `parts` runs of about equal size, in one pass over the ids.

    Returns (last image id, images) per run in id order; the runs' images add up to the selection's count,
    so this stands in for count_images. A run is the ids after the previous run's last id up to its own.
    """
    if parts < 1:
        raise InvalidInput("An export needs at least one part.")
    numbered = (
        select(Image.id, func.ntile(parts).over(order_by=Image.id).label("part"))
        .where(Image.project_id == flt.project_id, image_condition(flt))
        .subquery()
    )
    query = select(func.max(numbered.c.id), func.count()).group_by(numbered.c.part).order_by(numbered.c.part)
    with reader(engine).connect() as conn:
        return [(int(last), int(count)) for last, count in conn.execute(query).all()]


def window_query(flt: ExportFilter, after_id: int, upto_id: int | None, window: int) -> Select[Any]:
    """The next `window` selected images after `after_id` (keyset paging), in id order."""
    return (
        select(
            Image.id,
            Image.sha256,
            Image.source,
            Image.blob_key,
            Image.width,
            Image.height,
            Image.format,
        )
        .where(Image.project_id == flt.project_id, image_condition(flt, after_id, upto_id))
        .order_by(Image.id)
        .limit(window)
    )
