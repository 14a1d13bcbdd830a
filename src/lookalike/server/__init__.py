"""`lookalike serve`: an HTTP API and a web page over any index (FastAPI)."""

from lookalike.server.app import create_app
from lookalike.server.config import ServerConfig

__all__ = ["ServerConfig", "create_app"]
