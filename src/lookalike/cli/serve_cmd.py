"""`lookalike serve`: run the HTTP API and web page."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from lookalike.cli import options
from lookalike.cli.output import stderr
from lookalike.server.config import ServerConfig, default_hosts, parse_hosts


def serve_command(
    index_url: options.IndexUrl = None,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.", min=1, max=65535)] = 8000,
    api_key_file: Annotated[
        Path | None,
        typer.Option(
            "--api-key-file",
            help="File with API keys, one per line; used with LOOKALIKE_API_KEY, not instead of it.",
        ),
    ] = None,
    private_reads: Annotated[
        bool,
        typer.Option("--private-reads", help="Require the API key for everything but a bare /healthz."),
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
    allowed_hosts: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="A Host header name to answer (repeatable; * for any). Default: loopback names when "
            "bound to loopback, else any.",
        ),
    ] = None,
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
        from lookalike.server.metrics import shared_metrics_folder
        from lookalike.server.protocol import uvicorn_settings
    except ImportError as exc:
        raise typer.BadParameter(
            f"the service needs its extra: pip install 'lookalike[serve]' ({exc.name} is missing)"
        ) from None
    config = ServerConfig.from_environment(
        key_file=api_key_file,
        index_url=index_url,
        public_reads=not private_reads,
        max_upload_bytes=int(max_upload_mb * (1 << 20)),
        max_image_bytes=int(max_image_mb * (1 << 20)),
        banks_dir=str(banks_dir) if banks_dir else None,
        thumbnails_from_paths=thumbnails_from_paths,
        allowed_hosts=parse_hosts(allowed_hosts) if allowed_hosts else None,
    )
    if not allowed_hosts and "LOOKALIKE_ALLOWED_HOSTS" not in os.environ:
        config = replace(config, allowed_hosts=default_hosts(host))
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
        with shared_metrics_folder():  # /metrics sums every worker's counts
            uvicorn.run(
                "lookalike.server.app:app_from_environment",
                **uvicorn_settings(factory=True, host=host, port=port, workers=workers),
            )
        return
    app = create_app(config)
    stderr.print(
        f"lookalike serving {app.state.service.index.url} on http://{host}:{port}/ (API docs: /docs)"
    )
    uvicorn.run(app, **uvicorn_settings(host=host, port=port))


def environment_for(config: ServerConfig) -> dict[str, str]:
    """LOOKALIKE_* variables that rebuild `config` in another process."""
    values = {
        "LOOKALIKE_API_KEY": ",".join(config.api_keys),
        "LOOKALIKE_PUBLIC_READS": "1" if config.public_reads else "0",
        "LOOKALIKE_MAX_UPLOAD_MB": str(config.max_upload_bytes / (1 << 20)),
        "LOOKALIKE_MAX_IMAGE_MB": str(config.max_image_bytes / (1 << 20)),
        "LOOKALIKE_THUMBNAILS_FROM_PATHS": "1" if config.thumbnails_from_paths else "0",
        "LOOKALIKE_ALLOWED_HOSTS": ",".join(config.allowed_hosts),
    }
    if config.index_url:
        values["LOOKALIKE_INDEX"] = config.index_url
    if config.banks_dir:
        values["LOOKALIKE_BANKS_DIR"] = config.banks_dir
    return values
