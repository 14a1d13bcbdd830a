"""Errors as JSON with a code and a reason, never a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lookalike.errors import ImageError, ImageTooLargeError, InvalidHashError, LookalikeError

log = logging.getLogger("lookalike.server")


class ApiError(Exception):
    """An error the API reports to the client as `{"error": {"code": ..., "message": ...}}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def validation_problems(errors: Sequence[Any]) -> str:
    """The first few problems pydantic found, one line: `field: what is wrong; ...`."""
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg', 'invalid')}"
        for error in errors[:5]
    )
    return problems or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(ImageTooLargeError)
    async def too_large(_: Request, exc: ImageTooLargeError) -> JSONResponse:
        return error_response(413, "image_too_large", exc.reason)

    @app.exception_handler(ImageError)
    async def bad_image(_: Request, exc: ImageError) -> JSONResponse:
        return error_response(422, "bad_image", exc.reason)

    @app.exception_handler(InvalidHashError)
    async def bad_hash(_: Request, exc: InvalidHashError) -> JSONResponse:
        return error_response(422, "bad_hash", str(exc))

    @app.exception_handler(LookalikeError)
    async def lookalike_error(_: Request, exc: LookalikeError) -> JSONResponse:
        return error_response(400, "bad_request", str(exc))

    @app.exception_handler(RequestValidationError)
    async def validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        unknown = [error for error in errors if error.get("type") == "extra_forbidden"]
        if unknown:  # a query parameter the route's options do not declare
            names = ", ".join(repr(str(error.get("loc", ("",))[-1])[:64]) for error in unknown[:5])
            return error_response(422, "unknown_parameter", f"no such parameter: {names} (see /docs)")
        return error_response(422, "bad_field", validation_problems(errors))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        from lookalike.server.limits import BodyTimeout, body_signal

        signal = body_signal(exc.__cause__)  # FastAPI turns form-parsing failures into a 400
        if signal is not None:
            if isinstance(signal, BodyTimeout):
                return error_response(408, "request_timeout", "the request body arrived too slowly")
            return error_response(413, "payload_too_large", "the request body exceeds the limit")
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "internal error; the server log has the details")
