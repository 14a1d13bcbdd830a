"""`lookalike compare`: the seed article's table of distances from one image to others."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lookalike.algorithms import HashValue
from lookalike.cli import options
from lookalike.cli.output import emit_json, note, printable, report_error
from lookalike.errors import ImageError
from lookalike.hash import Hash
from lookalike.pipeline import hash_file


def compare_command(
    source: Annotated[Path, typer.Argument(help="The image to compare against.", show_default=False)],
    others: Annotated[list[Path], typer.Argument(help="Images to compare with SOURCE.", show_default=False)],
    hashes: options.Hashes = options.DEFAULT_HASH_TEXT,
    json_output: options.Json = False,
    mode: options.ModeOption = "fast",
    orientation: options.Orientation = True,
) -> None:
    """Hamming distance per hash from SOURCE to each OTHER, and their sum (the seed's combined
    distance: aHash + colorhash by default). Lower is more alike; 0 is identical. The sum is
    given only for hashes of comparable length (at most 2x apart): 64-bit pHash and 256-bit PDQ
    distances are on different scales, so `--hashes phash,pdq` shows each alone.

    Example:

        lookalike compare cat1.jpg cat2.jpg cat3.jpg firetruck1.jpg
    """
    hash_mode = options.check_mode(mode)
    try:
        reference = hash_file(source, hashes, mode=hash_mode, orientation=orientation)
    except ImageError as exc:
        report_error(str(exc))
        raise typer.Exit(1) from None
    summable = summable_hashes(reference)
    if not summable:
        note("no total: " + why_no_total(reference))
    rows: list[tuple[str, dict[str, float]]] = []
    failed = False
    for other in others:
        try:
            result = hash_file(other, hashes, mode=hash_mode, orientation=orientation)
        except ImageError as exc:
            report_error(str(exc))
            failed = True
            if json_output:
                emit_json({"source": str(source), "other": str(other), "error": exc.reason})
            continue
        distances = {name: distance_between(reference[name], result[name]) for name in reference}
        rows.append((str(other), distances))
        if json_output:
            emit_json(
                {
                    "source": str(source),
                    "other": str(other),
                    "distances": distances,
                    **({"total": _total(distances)} if summable else {}),
                }
            )
    if not json_output:
        print_distance_table(str(source), list(reference), rows, with_total=summable)
    if failed:
        raise typer.Exit(1)


def distance_between(a: HashValue, b: HashValue) -> float:
    value = a - b  # type: ignore[operator]
    return int(value) if float(value).is_integer() else round(float(value), 4)


def summable_hashes(hashes: dict[str, HashValue]) -> bool:
    """Whether the distances of these hashes may be summed: one hash, or bit hashes whose lengths
    are at most 2x apart (the seed's 64-bit aHash + 42-bit colorhash; not 64-bit pHash + 256-bit
    PDQ, where the long hash would outweigh the other 4 to 1)."""
    if len(hashes) <= 1:
        return True
    lengths = [value.nbits if isinstance(value, Hash) else None for value in hashes.values()]
    known = [n for n in lengths if n is not None]
    return len(known) == len(lengths) and max(known) <= 2 * min(known)


def why_no_total(hashes: dict[str, HashValue]) -> str:
    parts = [
        f"{name} is {value.nbits} bits" if isinstance(value, Hash) else f"{name} is a multi-hash score"
        for name, value in hashes.items()
    ]
    return "; ".join(parts) + ": their distances are on different scales"


def _total(distances: dict[str, float]) -> float:
    total = sum(distances.values())
    return int(total) if float(total).is_integer() else round(total, 4)


def print_distance_table(
    source: str, names: list[str], rows: list[tuple[str, dict[str, float]]], *, with_total: bool = True
) -> None:
    from rich.console import Console
    from rich.text import Text

    table = Table(title=Text(f"Hamming distance from {printable(source)}"), title_justify="left")
    table.add_column("image", overflow="fold")
    for name in names:
        table.add_column(name, justify="right")
    if with_total:
        table.add_column("total", justify="right", style="bold")
    for other, distances in rows:
        total = [str(_total(distances))] if with_total else []
        table.add_row(Text(printable(other)), *(str(distances[n]) for n in names), *total)
    Console(highlight=False).print(table)
