"""`lookalike hash`: hash files and folders, print or save the hashes."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from lookalike.cli import options
from lookalike.cli.output import advance, emit_json, emit_line, progress_bar, quality_fields, report_error
from lookalike.discover import path_text
from lookalike.errors import ImageError
from lookalike.pipeline import HashResult, hash_files
from lookalike.writers import open_hash_writer

R = TypeVar("R")


def hash_command(
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders.", show_default=False)],
    hashes: options.Hashes = options.DEFAULT_HASH_TEXT,
    json_output: options.Json = False,
    recursive: options.Recursive = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Also write all hashes to FILE (.jsonl, .csv or .parquet)."),
    ] = None,
    workers: options.Workers = None,
    mode: options.ModeOption = "fast",
    orientation: options.Orientation = True,
    progress: options.ShowProgress = True,
    cache_file: Annotated[
        Path | None,
        typer.Option(
            "--cache",
            help="Cache file of earlier results (default: $LOOKALIKE_CACHE_DIR, $XDG_CACHE_HOME/lookalike "
            "or ~/.cache/lookalike, then hashes.sqlite). Unchanged files are not decoded again.",
            show_default=False,
        ),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the cache.")] = False,
) -> None:
    """Hash image files (and the images in folders).

    Example:

        lookalike hash cat.jpg photos/ --recursive --hashes phash,pdq --json
    """
    hash_mode = options.check_mode(mode)
    files, skipped = options.find_images(paths, recursive)
    failures: list[ImageError] = []
    hashed = cached = 0
    writer = open_hash_writer(out) if out else None
    cache = None if no_cache else options.open_cache(cache_file)
    try:
        with progress_bar("hashing", len(files), enabled=progress and len(files) > 1) as bar:
            results = hash_files(
                files, hashes, workers=workers, mode=hash_mode, orientation=orientation, cache=cache
            )
            # The bar moves as files finish; lines come out in the order the files were named.
            for path, result in in_input_order(files, advance(bar, results)):
                if isinstance(result, ImageError):
                    failures.append(result)
                    _print_failure(path, result, json_output)
                    continue
                if result.cached:
                    cached += 1
                else:
                    hashed += 1
                _print_result(path, result, json_output)
                if writer:
                    writer.write(path_text(path), result)  # a name that is not UTF-8, escaped
    finally:
        if writer:
            writer.close()
        if cache:
            cache.close()
    options.print_summary(
        hashed=hashed, cached=cached, failures=failures, skipped=len(skipped), show=len(files) > 1
    )
    if failures or skipped:
        raise typer.Exit(1)


def in_input_order(paths: Sequence[str], results: Iterable[tuple[str, R]]) -> Iterator[tuple[str, R]]:
    """`results` (as workers finish them) in the order of `paths`: each is held until those
    named before it are out, so `hash a b c` prints a, b, c whichever decodes first."""
    waiting: dict[str, deque[R]] = defaultdict(deque)
    position = 0
    for path, result in results:
        waiting[path].append(result)
        while position < len(paths) and waiting[paths[position]]:
            yield paths[position], waiting[paths[position]].popleft()
            position += 1
    for path in paths[position:]:  # none, unless a result came back under another name
        while waiting[path]:
            yield path, waiting[path].popleft()
    for path, rest in waiting.items():
        for result in rest:
            yield path, result


def _print_result(path: str, result: HashResult, json_output: bool) -> None:
    if json_output:
        emit_json({"path": path, "hashes": {k: str(v) for k, v in result.items()}, **quality_fields(result)})
    else:
        fields = "  ".join(f"{name}={value}" for name, value in result.items())
        emit_line(f"{path}  {fields}")


def _print_failure(path: str, error: ImageError, json_output: bool) -> None:
    if json_output:
        emit_json({"path": path, "error": error.reason})
    report_error(str(error))
