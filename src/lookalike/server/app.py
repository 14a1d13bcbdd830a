"""The FastAPI application: routes, limits, errors, metrics, the web page and its API docs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from lookalike import __version__
from lookalike.server import routes_banks, routes_images, routes_ops, routes_search
from lookalike.server.config import ServerConfig
from lookalike.server.errors import error_response, install_error_handlers
from lookalike.server.guard import RequestGuard
from lookalike.server.limits import (
    ASGIApp,
    BodyLimitMiddleware,
    BodyTimeout,
    BodyTooLarge,
    Receive,
    Scope,
    Send,
    body_limit,
)
from lookalike.server.memory import return_large_blocks_to_the_system
from lookalike.server.state import ServiceState

STATIC = Path(__file__).parent / "static"


def swagger_ui_files() -> Path:
    """Swagger UI's files as the `fastapi-offline` package ships them: /docs works offline."""
    return Path(str(resources.files("fastapi_offline") / "static"))


def app_from_environment() -> FastAPI:
    """The app configured only by LOOKALIKE_* variables (uvicorn's factory for several workers)."""
    return create_app(ServerConfig.from_environment())


def create_app(config: ServerConfig | None = None) -> FastAPI:
    """The service for `config` (default: from LOOKALIKE_* environment variables)."""
    settings = config or ServerConfig.from_environment()
    return_large_blocks_to_the_system()  # for the whole process: uploads come and go
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
        docs_url=None,  # served below from local files, under the page's security policy
        redoc_url=None,
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

    def limit_for(scope: Scope) -> int:
        return body_limit(scope, settings.max_upload_bytes, settings.max_json_bytes)

    # Added last runs first: metrics see every request, the guard runs before any body is read.
    app.add_middleware(BodyLimitMiddleware, limit_for=limit_for, timeout=settings.body_timeout_seconds)
    app.add_middleware(RequestGuard, config=settings)
    app.add_middleware(MetricsMiddleware)
    for module in (routes_images, routes_search, routes_banks, routes_ops):
        app.include_router(module.router)
    app.mount("/static/swagger", StaticFiles(directory=swagger_ui_files()), name="swagger")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        return FileResponse(STATIC / "docs.html")

    return app
