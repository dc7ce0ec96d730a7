"""LLM token usage and its cost: what `voicecap status` and `voicecap clean` report."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Caption, Image
from db.settings import Settings


@dataclass(frozen=True)
class TokenTotals:
    captions: int
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def estimate_cost(prompt_tokens: int, completion_tokens: int, settings: Settings) -> float | None:
    """Cost in the currency of the configured prices, or None when no price is configured."""
    input_price = settings.llm_price_per_million_input
    output_price = settings.llm_price_per_million_output
    if not input_price and not output_price:
        return None
    return (prompt_tokens * input_price + completion_tokens * output_price) / 1_000_000


def token_totals(session: Session, project_id: int | None = None, cleaner: str | None = "llm") -> TokenTotals:
    """Tokens recorded on stored captions (retries of malformed answers included)."""
    query = select(
        func.count(Caption.id),
        func.coalesce(func.sum(Caption.prompt_tokens), 0),
        func.coalesce(func.sum(Caption.completion_tokens), 0),
    )
    if cleaner is not None:
        query = query.where(Caption.cleaner == cleaner)
    if project_id is not None:
        query = query.join(Image, Image.id == Caption.image_id).where(Image.project_id == project_id)
    count, prompt_tokens, completion_tokens = session.execute(query).one()
    return TokenTotals(int(count), int(prompt_tokens), int(completion_tokens))
