"""Domain errors carry their HTTP status; one set of handlers renders every error as JSON."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from fxdesk.logging import get_logger, security_event

log = get_logger("fxdesk.errors")


class AppError(Exception):
    """Base of every domain error: a status, a human-readable detail, optional headers."""

    status_code = 400
    detail = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        status_code: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.detail = detail or self.detail
        self.status_code = status_code or self.status_code
        self.headers = dict(headers or {})
        super().__init__(self.detail)


class BadRequest(AppError):
    status_code = 400


class InvalidInput(AppError):
    status_code = 422
    detail = "Invalid input"


class NotAuthenticated(AppError):
    status_code = 401
    detail = "Not authenticated"


class PermissionDenied(AppError):
    status_code = 403
    detail = "Permission denied"


class NotFound(AppError):
    status_code = 404
    detail = "Not found"


class Conflict(AppError):
    status_code = 409
    detail = "Conflict"


class TooManyRequests(AppError):
    status_code = 429
    detail = "Too many requests"


class ServiceUnavailable(AppError):
    status_code = 503
    detail = "Service unavailable"


class ErrorOut(BaseModel):
    """Every error body: a sentence, or FastAPI's list of field errors (a 422 of validation)."""

    detail: str | list[dict[str, Any]]


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the errors a route may answer, each a `{"detail": ...}` body.

    A 422 declared here replaces FastAPI's own, whose `detail` may only be a list: ours is also
    the sentence of a domain error (an unknown currency, a range too long).
    """
    return {code: {"model": ErrorOut, "description": HTTPStatus(code).phrase} for code in codes}


def _clean_validation_errors(errors: Any) -> list[dict[str, Any]]:
    """422 bodies as FastAPI makes them, minus `input`/`ctx` so a password is never echoed."""
    cleaned = []
    for error in errors:
        item = {key: value for key, value in error.items() if key not in {"input", "ctx", "url"}}
        cleaned.append(item)
    return jsonable_encoder(cleaned)  # type: ignore[no-any-return]


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    if exc.status_code in (401, 403, 429):
        security_event(
            "request_refused",
            status=exc.status_code,
            detail=exc.detail,
            method=request.method,
            path=request.url.path,
        )
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": _clean_validation_errors(exc.errors())}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        {"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


def unexpected_error(method: str, path: str, exc: BaseException) -> JSONResponse:
    """Log an unhandled error once (a bounded traceback, no locals, no headers or body) and
    answer the plain 500."""
    log.error("unhandled_error", method=method, path=path, exc_info=exc)
    return JSONResponse({"detail": "Internal server error"}, status_code=500)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Only reached for errors in the outer middleware: RequestContextMiddleware answers the rest
    # itself, so that Starlette does not re-raise them to the server for a second traceback.
    return unexpected_error(request.method, request.url.path, exc)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
