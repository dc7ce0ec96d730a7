"""API routes: tasks (filled in by its owner)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["tasks"])
