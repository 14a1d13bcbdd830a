"""The FastAPI application: routes, limits, errors, metrics and the web page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from lookalike import __version__
from lookalike.server import routes_banks, routes_images, routes_ops, routes_search
from lookalike.server.config import ServerConfig
from lookalike.server.errors import error_response, install_error_handlers
from lookalike.server.limits import (
    MULTIPART_OVERHEAD,
    ASGIApp,
    BodyLimitMiddleware,
    BodyTimeout,
    BodyTooLarge,
    Receive,
    Scope,
    Send,
)
from lookalike.server.state import ServiceState

STATIC = Path(__file__).parent / "static"


def app_from_environment() -> FastAPI:
    """The app configured only by LOOKALIKE_* variables (uvicorn's factory for several workers)."""
    return create_app(ServerConfig.from_environment())


def create_app(config: ServerConfig | None = None) -> FastAPI:
    """The service for `config` (default: from LOOKALIKE_* environment variables)."""
    settings = config or ServerConfig.from_environment()
    state = ServiceState(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(
        title="lookalike",
        version=__version__,
        description="Perceptual-hash search, duplicate review and hash-list checks for images.",
        lifespan=lifespan,
    )
    app.state.service = state
    app.state.config = settings
    install_error_handlers(app)

    @app.exception_handler(BodyTooLarge)
    async def too_large(*_: object) -> object:
        return error_response(413, "payload_too_large", "the request body exceeds the limit")

    @app.exception_handler(BodyTimeout)
    async def too_slow(*_: object) -> object:
        return error_response(408, "request_timeout", "the request body arrived too slowly")

    metrics = state.metrics

    class MetricsMiddleware:
        def __init__(self, inner: ASGIApp) -> None:
            self.measured = metrics.middleware(inner)

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await self.measured(scope, receive, send)

    def limit_for(path: str) -> int:
        if path.startswith("/v1/banks/") and path.endswith("/hashes"):
            return settings.max_json_bytes
        if path.startswith("/v1/"):
            return settings.max_upload_bytes + MULTIPART_OVERHEAD
        return 64 * 1024

    app.add_middleware(MetricsMiddleware)
    app.add_middleware(BodyLimitMiddleware, limit_for=limit_for, timeout=settings.body_timeout_seconds)
    for module in (routes_images, routes_search, routes_banks, routes_ops):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app
