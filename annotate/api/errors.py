"""Every error leaves the API as JSON: {"code": stable-machine-code, "message": human text, ...}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

from annotate.errors import VoicecapError

_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
}


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "message": message, **extra}


def _out_of_range() -> JSONResponse:
    message = "A number in the request is out of range (ids and counts are 64-bit integers)."
    return JSONResponse(error_body("invalid_request", message), status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(VoicecapError)
    async def _domain(_: Request, exc: VoicecapError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"where": ".".join(str(p) for p in err.get("loc", ())), "problem": err.get("msg", "")}
            for err in exc.errors()
        ]
        summary = "; ".join(f"{d['where']}: {d['problem']}" for d in details[:3])
        return JSONResponse(
            error_body("invalid_request", f"The request is malformed: {summary}", details=details),
            status_code=422,
        )

    @app.exception_handler(OverflowError)
    async def _overflow(_: Request, exc: OverflowError) -> JSONResponse:
        return _out_of_range()

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> JSONResponse:
        # PostgreSQL refusing a value its column type cannot hold (an id of 2**63, ...).
        return _out_of_range()

    @app.exception_handler(StatementError)
    async def _statement(request: Request, exc: StatementError) -> JSONResponse:
        if isinstance(exc.orig, OverflowError):  # SQLite's driver refusing an integer past 64 bits
            return _out_of_range()
        raise exc

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=exc.headers)
