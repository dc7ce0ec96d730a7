"""Rate limiters.

`DatabaseLimiter` keeps fixed-window counts in the `rate_limit_counts` table, bumped by one atomic
upsert, so any number of API processes on any number of machines share one limit: nothing here is
counted per process. `LoginLimiter` is the login rule built on it.
"""

from __future__ import annotations

import time

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from db.models import RateLimitCount


class DatabaseLimiter:
    def __init__(self, sessions: sessionmaker[Session], window_seconds: int = 60) -> None:
        self.sessions = sessions
        self.window = window_seconds

    def hit(self, key: str, limit: int) -> float:
        """Count a hit; returns 0 when allowed, else about the seconds to wait.

        A sliding window, estimated from two fixed ones: the previous window's count weighs by the
        share of it still inside the last `window` seconds, so a burst across a boundary is not let
        through twice."""
        now = time.time()
        window = int(now // self.window)
        elapsed = now / self.window - window
        with self.sessions() as session:
            count = self._bump(session, key, window)
            previous = session.scalar(
                select(RateLimitCount.count).where(
                    RateLimitCount.key == key, RateLimitCount.window == window - 1
                )
            )
            # Older windows of this key no longer count; dropping them here keeps the table small.
            session.execute(
                delete(RateLimitCount).where(RateLimitCount.key == key, RateLimitCount.window < window - 1)
            )
            session.commit()
        if count + (previous or 0) * (1.0 - elapsed) > limit:
            return (window + 1) * self.window - now
        return 0.0

    def reset(self, key: str) -> None:
        with self.sessions() as session:
            session.execute(delete(RateLimitCount).where(RateLimitCount.key == key))
            session.commit()

    @staticmethod
    def _bump(session: Session, key: str, window: int) -> int:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        statement = dialect.insert(RateLimitCount).values(key=key, window=window, count=1)
        statement = statement.on_conflict_do_update(
            index_elements=["key", "window"], set_={"count": RateLimitCount.count + 1}
        ).returning(RateLimitCount.count)
        return int(session.execute(statement).scalar_one())


class LoginLimiter:
    """Password guessing: attempts are counted per (address, name) and per address, never per name
    alone, so a stranger's wrong guesses cannot lock the real user out from their own address."""

    def __init__(self, counter: DatabaseLimiter, per_name: int, per_address: int) -> None:
        self.counter = counter
        self.per_name = per_name
        self.per_address = per_address

    def check(self, address: str, name: str) -> float:
        """Count one attempt; 0 when allowed, else the seconds to wait."""
        waits = (
            self.counter.hit(f"login:{address}:{name}", self.per_name),
            self.counter.hit(f"login-address:{address}", self.per_address),
        )
        return max(waits)

    def succeeded(self, address: str, name: str) -> None:
        self.counter.reset(f"login:{address}:{name}")
