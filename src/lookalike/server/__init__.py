"""`lookalike serve`: an HTTP API and a web page over any index (FastAPI, extra `lookalike[serve]`).

`create_app` is imported on first use, so the command line works without the service's extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lookalike.server.config import ServerConfig

if TYPE_CHECKING:
    from lookalike.server.app import create_app

__all__ = ["ServerConfig", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from lookalike.server.app import create_app

        return create_app
    raise AttributeError(name)
