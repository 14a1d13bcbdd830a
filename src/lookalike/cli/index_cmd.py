"""`lookalike index ...`: add folders to an index, remove, compact, list, stats, export and import."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from lookalike.cli import options
from lookalike.cli.output import emit_json, emit_line, progress_bar, report_error, stderr
from lookalike.exchange import entry_record, export_index, format_of, import_into
from lookalike.index.base import AddReport
from lookalike.local.features import local_features_available
from lookalike.matcher import default_index_hashes

app = typer.Typer(
    help="Build and inspect an index of image hashes.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

Format = Annotated[
    str | None, typer.Option("--format", help="jsonl, csv, parquet or hashes (plain hex list).")
]
Algorithm = Annotated[
    str | None,
    typer.Option("--algorithm", "-a", help="The algorithm of a plain hash list (e.g. pdq, phash)."),
]


@app.command("add")
def add_command(
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders.", show_default=False)],
    index_url: options.IndexUrl = None,
    recursive: options.Recursive = False,
    hashes: Annotated[
        str | None, typer.Option("--hashes", help="Algorithms to store (default: what the presets need).")
    ] = None,
    workers: options.Workers = None,
    mode: options.ModeOption = "fast",
    json_output: options.Json = False,
    progress: options.ShowProgress = True,
    no_cache: options.NoCache = False,
) -> None:
    """Hash images and add them to the index (unchanged files are skipped without being read).

    Each hash is stored with its rotation, flip and crop variants, and (with the default hashes,
    when OpenCV is installed) each image's local features, so `lookalike dupes --index` finds
    rotated, cropped and partial copies from the index alone.

    Example:

        lookalike index add ~/Pictures --recursive --index sqlite:///photos.db
    """
    hash_mode = options.check_mode(mode)
    names = options.parse_hash_names(hashes, default_index_hashes())
    files, skipped = options.find_images(paths, recursive)
    with (
        options.open_index_or_exit(index_url) as index,
        progress_bar("indexing", len(files), enabled=progress and len(files) > 1) as bar,
    ):
        task = bar.task_ids[0]
        report = index.add_files(
            files,
            names,
            workers=workers,
            mode=hash_mode,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            cache=None if no_cache else options.open_cache(),
            dihedral=True,
            # the default set: local features too, so `search --partial` and `dupes` verify
            local=hashes is None and local_features_available(),
        )
    print_add_report(report, json_output)
    if report.failed or skipped:
        raise typer.Exit(1)


def print_add_report(report: AddReport, json_output: bool) -> None:
    if json_output:
        emit_json(
            {
                "added": report.added,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "same_bytes": [{"key": k, "existing": e} for k, e in report.same_bytes],
                "failed": [{"path": p, "reason": r} for p, r in report.failed],
            }
        )
    parts = [f"added {report.added}", f"updated {report.updated}", f"unchanged {report.unchanged}"]
    if report.same_bytes:
        parts.append(f"same bytes as an indexed file {len(report.same_bytes)}")
    parts.append(f"failed {len(report.failed)}")
    stderr.print(", ".join(parts))
    for path, reason in report.failed:
        report_error(f"{path}: {reason}")


@app.command("remove")
def remove_command(
    keys: Annotated[list[str], typer.Argument(help="Keys (file paths or external ids) to remove.")],
    index_url: options.IndexUrl = None,
    json_output: options.Json = False,
) -> None:
    """Remove entries by key (a relative file path is resolved as `index add` stored it).

    Example:

        lookalike index remove ~/Pictures/old/IMG_0001.jpg
    """
    with options.open_index_or_exit(index_url, must_exist=True) as index:
        resolved = [key if key in index else os.path.abspath(key) for key in keys]
        removed = index.remove(resolved)
    if json_output:
        emit_json({"removed": removed})
    else:
        emit_line(f"removed {removed} of {len(keys)}")
    if removed < len(keys):
        raise typer.Exit(1)


@app.command("compact")
def compact_command(index_url: options.IndexUrl = None, json_output: options.Json = False) -> None:
    """Drop the rows that updates and removals left behind (a ClickHouse index keeps replaced
    versions until then; SQLite keeps none) and, on ClickHouse, merge each table a search reads
    into one part: run it after a bulk load. Searches may run meanwhile.

    Example:

        lookalike index compact --index chdb:///data/lookalike
    """
    with options.open_index_or_exit(index_url, must_exist=True) as index:
        dropped = index.compact()
    if json_output:
        emit_json({"dropped": dropped})
    else:
        emit_line(f"dropped {dropped} replaced or removed rows")


@app.command("list")
def list_command(index_url: options.IndexUrl = None, json_output: options.Json = False) -> None:
    """List the entries: key, size, and every stored hash.

    Example:

        lookalike index list --json | jq .hashes.phash
    """
    with options.open_index_or_exit(index_url, must_exist=True) as index:
        for entry in index.entries():
            if json_output:
                emit_json(entry_record(entry))
            else:
                size = f"{entry.width}x{entry.height}" if entry.width else "-"
                fields = "  ".join(f"{name}={value}" for name, value in sorted(entry.hashes.items()))
                emit_line(f"{entry.key}  {size}  {fields}")


@app.command("stats")
def stats_command(index_url: options.IndexUrl = None, json_output: options.Json = False) -> None:
    """Entries, hashes and flagged (unreliable) hashes per algorithm, and size on disk.

    Example:

        lookalike index stats --index chdb:///data/lookalike
    """
    with options.open_index_or_exit(index_url, must_exist=True) as index:
        stats = index.stats()
        url = index.url
    if json_output:
        emit_json(
            {
                "index": url,
                "entries": stats.entries,
                "algorithms": {
                    name: {
                        "bits": stats.nbits.get(name),
                        "hashes": count,
                        "flagged": stats.flagged.get(name, 0),
                    }
                    for name, count in sorted(stats.hashes.items())
                },
                "disk_bytes": stats.disk_bytes,
            }
        )
        return
    emit_line(f"index     {url}")
    emit_line(f"entries   {stats.entries}")
    emit_line("on disk   " + ("unknown" if stats.disk_bytes is None else f"{stats.disk_bytes / 1e6:.1f} MB"))
    names = sorted(stats.hashes)
    # Every column as wide as its longest cell, so a long name (phash_eq_trimmed_smooth) or a
    # large count does not push its row out of line.
    name_width = max((len(name) for name in names), default=0)
    bits_width = max((len(str(stats.nbits.get(name, "?"))) for name in names), default=0)
    count_width = max((len(str(stats.hashes[name])) for name in names), default=0)
    flagged_width = max((len(str(stats.flagged.get(name, 0))) for name in names), default=0)
    for name in names:
        bits, count, flagged = stats.nbits.get(name, "?"), stats.hashes[name], stats.flagged.get(name, 0)
        emit_line(
            f"{name:<{name_width}}  {bits:>{bits_width}} bits  {count:>{count_width}} hashes  "
            f"{flagged:>{flagged_width}} flagged"
        )


@app.command("export")
def export_command(
    target: Annotated[Path, typer.Argument(help="Output file: .jsonl, .csv, .parquet, or a hash list.")],
    index_url: options.IndexUrl = None,
    fmt: Format = None,
    algorithm: Algorithm = None,
    json_output: options.Json = False,
) -> None:
    """Write the index to a file (catalog rows, or one hex hash per line with --format hashes).

    Example:

        lookalike index export pdq-list.txt --format hashes --algorithm pdq
    """
    with options.open_index_or_exit(index_url, must_exist=True) as index:
        count = export_index(index, target, format_of(target, fmt), algorithm)
    if json_output:
        emit_json({"exported": count, "file": str(target)})
    else:
        emit_line(f"exported {count} rows to {target}")


@app.command("import")
def import_command(
    source: Annotated[Path, typer.Argument(help="A file written by `index export`, or a hash list.")],
    index_url: options.IndexUrl = None,
    fmt: Format = None,
    algorithm: Algorithm = None,
    key_prefix: Annotated[
        str | None,
        typer.Option("--key-prefix", help="Key prefix for unlabelled hashes (default: file name)."),
    ] = None,
    json_output: options.Json = False,
) -> None:
    """Add rows from a file to the index: catalog rows (JSONL, CSV, Parquet) or a plain hash list
    (one hex per line, optionally followed by a label; 64-digit hashes are PDQ).

    Example:

        lookalike index import known-bad.pdq.txt --index sqlite:///bank.db
    """
    if not source.is_file():
        raise typer.BadParameter(f"{source}: no such file", param_hint="SOURCE")
    with options.open_index_or_exit(index_url) as index:
        report = import_into(
            index, source, format_of(source, fmt), algorithm=algorithm, key_prefix=key_prefix
        )
    print_add_report(report, json_output)
