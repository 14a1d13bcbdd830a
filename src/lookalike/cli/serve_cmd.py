"""`lookalike serve`: run the HTTP API and web page."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from lookalike.cli import options
from lookalike.cli.output import stderr
from lookalike.server.config import ServerConfig


def serve_command(
    index_url: options.IndexUrl = None,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.", min=1, max=65535)] = 8000,
    api_key_file: Annotated[
        Path | None,
        typer.Option("--api-key-file", help="File with API keys, one per line (or LOOKALIKE_API_KEY)."),
    ] = None,
    private_reads: Annotated[
        bool, typer.Option("--private-reads", help="Require the API key for searches and reads too.")
    ] = False,
    max_upload_mb: Annotated[
        float, typer.Option("--max-upload-mb", min=0.01, help="Upload size limit.")
    ] = 20.0,
    max_image_mb: Annotated[
        float,
        typer.Option(
            "--max-image-mb", min=1, help="Memory an upload may take decoded (pixels x bytes a pixel)."
        ),
    ] = 100.0,
    banks_dir: Annotated[
        Path | None, typer.Option("--banks-dir", help="Where banks and thumbnails live.")
    ] = None,
    thumbnails_from_paths: Annotated[
        bool,
        typer.Option("--thumbnails-from-paths", help="Let the page preview files the index holds by path."),
    ] = False,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Server processes (SQLite or ClickHouse server indexes).")
    ] = 1,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs) and the web page on one port.

    Example:

        LOOKALIKE_API_KEY=$(openssl rand -hex 24) lookalike serve --index sqlite:///photos.db --port 8000
    """
    try:
        import uvicorn

        from lookalike.server import create_app
    except ImportError as exc:
        raise typer.BadParameter(
            f"the service needs its extra: pip install 'lookalike[serve]' ({exc.name} is missing)"
        ) from None
    from lookalike.server.config import read_keys

    keys = read_keys(None, api_key_file) if api_key_file else None
    config = ServerConfig.from_environment(
        index_url=index_url,
        api_keys=keys,
        public_reads=not private_reads,
        max_upload_bytes=int(max_upload_mb * (1 << 20)),
        max_image_bytes=int(max_image_mb * (1 << 20)),
        banks_dir=str(banks_dir) if banks_dir else None,
        thumbnails_from_paths=thumbnails_from_paths,
    )
    if config.generated_key:
        stderr.print(f"no API key configured; writes need this one (this run only): {config.api_keys[0]}")
    if workers > 1:
        if (config.index_url or "").startswith("chdb:"):
            raise typer.BadParameter(
                "chDB allows one process per data path: use --workers 1", param_hint="--workers"
            )
        # Worker processes build their app from the environment: hand every setting over that way.
        os.environ.update(environment_for(config))
        where = config.index_url or "sqlite:///lookalike.db"
        stderr.print(
            f"lookalike serving {where} on http://{host}:{port}/ with {workers} workers (docs: /docs)"
        )
        uvicorn.run(
            "lookalike.server.app:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            timeout_keep_alive=5,
        )
        return
    app = create_app(config)
    stderr.print(
        f"lookalike serving {app.state.service.index.url} on http://{host}:{port}/ (API docs: /docs)"
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_keep_alive=5)


def environment_for(config: ServerConfig) -> dict[str, str]:
    """LOOKALIKE_* variables that rebuild `config` in another process."""
    values = {
        "LOOKALIKE_API_KEY": ",".join(config.api_keys),
        "LOOKALIKE_PUBLIC_READS": "1" if config.public_reads else "0",
        "LOOKALIKE_MAX_UPLOAD_MB": str(config.max_upload_bytes / (1 << 20)),
        "LOOKALIKE_MAX_IMAGE_MB": str(config.max_image_bytes / (1 << 20)),
        "LOOKALIKE_THUMBNAILS_FROM_PATHS": "1" if config.thumbnails_from_paths else "0",
    }
    if config.index_url:
        values["LOOKALIKE_INDEX"] = config.index_url
    if config.banks_dir:
        values["LOOKALIKE_BANKS_DIR"] = config.banks_dir
    return values
