"""Options shared by several commands, so every command spells them the same way."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lookalike.cli.output import note, report_error, stderr
from lookalike.discover import SkippedPath, iter_image_paths
from lookalike.errors import ImageError, IndexUnreachableError, LookalikeError
from lookalike.index.base import Index

if TYPE_CHECKING:
    from lookalike.hash_cache import HashCache
from lookalike.pipeline import DEFAULT_HASHES
from lookalike.prepare import Mode

DEFAULT_HASH_TEXT = ",".join(DEFAULT_HASHES)

Hashes = Annotated[
    str,
    typer.Option(
        "--hashes",
        help="Comma-separated algorithms: ahash, dhash, dhash_vertical, phash, phash_simple, whash, "
        "whash_db4, colorhash, crop_resistant, pdq; a size after a colon, e.g. phash:16, colorhash:4.",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="One JSON object per line on stdout.")]
Recursive = Annotated[bool, typer.Option("--recursive", "-r", help="Descend into sub-folders.")]
Workers = Annotated[
    int | None, typer.Option("--workers", "-w", min=1, help="Worker processes (default: all cores).")
]
ModeOption = Annotated[
    str,
    typer.Option(
        "--mode",
        help="fast: JPEGs decoded at reduced scale (a bit or two from exact); "
        "exact: bit-identical to ImageHash.",
    ),
]
Orientation = Annotated[
    bool,
    typer.Option("--orientation/--no-orientation", help="Apply EXIF orientation before hashing."),
]
ShowProgress = Annotated[
    bool, typer.Option("--progress/--no-progress", help="Show a progress bar on stderr.")
]


def check_mode(mode: str) -> Mode:
    if mode == "fast":
        return "fast"
    if mode == "exact":
        return "exact"
    raise typer.BadParameter(f"--mode must be fast or exact, not {mode!r}")


def print_summary(
    *, hashed: int, failures: list[ImageError], skipped: int = 0, cached: int = 0, show: bool
) -> None:
    """The end-of-run summary on stderr: counts, then failures grouped by reason."""
    if not show:
        return
    parts = [f"hashed {hashed}", f"cached {cached}", f"failed {len(failures)}"]
    if skipped:
        parts.append(f"skipped folders {skipped}")
    stderr.print(", ".join(parts))
    reasons = Counter(_reason_class(f.reason) for f in failures)
    for reason, count in reasons.most_common():
        stderr.print(f"  {count} x {reason}")


def _reason_class(reason: str) -> str:
    return reason.split(" (", 1)[0]


IndexUrl = Annotated[
    str | None,
    typer.Option(
        "--index",
        "-i",
        envvar="LOOKALIKE_INDEX",
        help="Index URL: sqlite:///path.db (default ./lookalike.db), chdb:///dir, "
        "clickhouse://user:pass@host:port/db[?cluster=NAME].",
        show_default=False,
    ),
]
Preset = Annotated[
    str | None,
    typer.Option("--preset", help="A matcher preset (exact-duplicate, near-duplicate, similar) or a rule."),
]
Dihedral = Annotated[bool, typer.Option("--dihedral", help="Also match rotated and flipped copies.")]


def find_images(
    paths: Sequence[str | os.PathLike[str]], recursive: bool
) -> tuple[list[str], list[SkippedPath]]:
    """The image files `paths` name or hold; folders that cannot be read are reported as errors
    (and returned, so the command exits 1), a folder with no image gets a hint saying why."""
    skipped: list[SkippedPath] = []
    empty: list[SkippedPath] = []
    files = list(iter_image_paths(paths, recursive=recursive, on_skip=skipped.append, on_empty=empty.append))
    for skip in skipped:
        report_error(f"{skip.path}: {skip.reason}")
    for folder in empty:
        note(f"{folder.path}: {folder.reason}")
    return files, skipped


def open_index_or_exit(url: str | None, *, must_exist: bool = False) -> Index:
    """Open the index; a bad URL is a usage error (exit 2), an unreachable server one error line
    (exit 1). With `must_exist` (commands that only read an index), a local index that is not
    there is a usage error too, instead of a new empty database and a silent "0 results"."""
    from lookalike.index import open_index

    missing = missing_local_index(url) if must_exist else None
    if missing is not None:
        raise typer.BadParameter(
            f"no index at {missing} (`lookalike index add DIR --index ...` creates one)", param_hint="--index"
        )
    try:
        return open_index(url)
    except IndexUnreachableError as exc:
        report_error(str(exc))
        raise typer.Exit(1) from None
    except LookalikeError as exc:
        raise typer.BadParameter(str(exc), param_hint="--index") from None


def missing_local_index(url: str | None) -> str | None:
    """The path of a local index (SQLite file, chDB folder) that `url` names and that does not
    exist; None when it exists, or lives on a server, or in memory."""
    from lookalike.index.base import DEFAULT_INDEX_URL

    text = DEFAULT_INDEX_URL if url is None else url
    scheme = text.split("://", 1)[0].lower() if "://" in text else "sqlite"
    if scheme == "sqlite":
        from lookalike.index.sqlite import sqlite_path

        path = sqlite_path(text)
        return None if path == ":memory:" or os.path.exists(path) else path
    if scheme == "chdb":
        from lookalike.index.clickhouse.connection import chdb_path

        try:
            folder = chdb_path(text)
        except LookalikeError:
            return None  # opening it reports the bad URL
        return None if os.path.isdir(folder) else folder
    return None


def parse_hash_names(text: str | None, default: tuple[str, ...]) -> list[str]:
    names = [part.strip() for part in (text or "").split(",") if part.strip()]
    return names or list(default)


NoCache = Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the hash cache.")]


def open_cache(path: Path | None = None) -> HashCache | None:
    """The hash cache, or None (with a warning) if it cannot be opened: hashing goes on without it."""
    from lookalike.hash_cache import HashCache

    try:
        return HashCache(path)
    except LookalikeError as exc:
        report_error(f"{exc} (going on without the cache)")
        return None
