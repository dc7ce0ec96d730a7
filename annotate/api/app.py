"""The FastAPI application: the JSON API under /api and the browser UI from the `web` package."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

import web
from annotate.api.errors import install_error_handlers
from annotate.api.json_guard import RejectNonFiniteJson
from annotate.api.ratelimit import DatabaseLimiter, LoginLimiter
from annotate.api.routes import (
    admin,
    auth,
    exports,
    images,
    media,
    recordings,
    review,
    sessions,
    stats,
    tasks,
    triage,
)
from annotate.api.security_headers import SecurityHeaders
from annotate.security import SessionSigner, secret_key
from annotate.services.housekeeping import SWEEP_SECONDS, sweep
from annotate.services.media_links import MediaSigner
from db.blobstore import open_blobstore
from db.migrate import check_schema
from db.session import get_engine, session_factory
from db.settings import Settings, get_settings

WEB_DIR = Path(web.__file__).resolve().parent
log = logging.getLogger(__name__)

# Pages are plain HTML files in web/; each talks to the API only.
PAGES = {
    "/login": "login.html",
    "/task": "task.html",
    "/review": "review.html",
    "/admin": "admin.html",
    "/dashboard": "dashboard.html",
}


def _sweep_once(app: FastAPI) -> None:
    try:
        with app.state.sessions() as session:
            swept = sweep(session, app.state.login_limiter.counter.window)
            session.commit()
        if swept.sessions or swept.rate_limit_windows:
            log.info("swept %d expired sessions, %d old rate-limit windows", *vars(swept).values())
    except Exception:  # a database hiccup must not stop the API; the next sweep tries again
        log.exception("housekeeping sweep failed")


@asynccontextmanager
async def _housekeeping(app: FastAPI) -> AsyncIterator[None]:
    """Sweep expired sessions and old limiter windows at start, then every SWEEP_SECONDS."""

    async def forever() -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            await run_in_threadpool(_sweep_once, app)

    await run_in_threadpool(_sweep_once, app)  # done before the first request is served
    task = asyncio.create_task(forever())
    try:
        yield
    finally:
        task.cancel()


def create_app(settings: Settings | None = None, *, verify_schema: bool = True) -> FastAPI:
    settings = settings or get_settings()
    engine = get_engine(settings.resolved_database_url)
    if verify_schema:
        check_schema(engine)  # refuse to serve on an out-of-date schema, saying what to run

    app = FastAPI(
        title="voicecap",
        version="0.1.0",
        description="Record spoken image descriptions; review and export captions.",
        lifespan=_housekeeping,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.blobs = open_blobstore(settings.blob_location)
    app.state.signer = SessionSigner(secret_key(settings), settings.session_days * 86400)
    app.state.media_signer = MediaSigner(secret_key(settings))
    app.state.login_limiter = LoginLimiter(
        DatabaseLimiter(app.state.sessions),
        per_name=settings.login_attempts_per_minute,
        per_address=settings.login_attempts_per_address_per_minute,
    )

    install_error_handlers(app)
    app.add_middleware(RejectNonFiniteJson)
    app.add_middleware(SecurityHeaders)
    for module in (auth, sessions, tasks, recordings, images, media, review, triage, admin, stats, exports):
        app.include_router(module.router)

    @app.get("/api/health", tags=["meta"])
    def health() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/login")

    for route, filename in PAGES.items():
        app.add_api_route(route, _page(filename), include_in_schema=False, methods=["GET"])

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    return app


def _page(filename: str):
    def serve() -> FileResponse:
        return FileResponse(WEB_DIR / filename, headers={"Cache-Control": "no-cache"})

    return serve
