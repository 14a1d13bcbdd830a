"""`lookalike search`: the nearest indexed images for images or hex hashes, as one batch."""

from __future__ import annotations

from typing import Annotated

import typer

from lookalike.cli import options
from lookalike.cli.output import emit_json, emit_line, report_error
from lookalike.errors import LookalikeError
from lookalike.lookup import (
    NOT_VERIFIED,
    Found,
    Query,
    describe_where,
    parse_queries,
    query_algorithms,
    search_algorithms,
    search_queries,
    with_query_algorithms,
)


def search_command(
    queries: Annotated[
        list[str],
        typer.Argument(
            help="Images, or hex hashes (ALGORITHM=HEX, or bare HEX: 64 digits = PDQ).", show_default=False
        ),
    ],
    index_url: options.IndexUrl = None,
    k: Annotated[int, typer.Option("--k", "-k", min=1, help="How many nearest matches (default).")] = 10,
    max_distance: Annotated[
        int | None,
        typer.Option("--max-distance", "-r", min=0, help="Every match within this distance instead."),
    ] = None,
    preset: options.Preset = None,
    hashes: Annotated[
        str | None,
        typer.Option("--hashes", help="Algorithms to compare; the first one ranks (default: the index's)."),
    ] = None,
    dihedral: options.Dihedral = False,
    json_output: options.Json = False,
    workers: options.Workers = None,
    fail_on_match: Annotated[
        bool, typer.Option("--fail-on-match", help="Exit 1 if anything matched.")
    ] = False,
    partial: Annotated[
        bool,
        typer.Option(
            "--partial",
            help="Find partial copies too (crops, screenshots, collages): the partial-copy preset.",
        ),
    ] = False,
) -> None:
    """Find the indexed images nearest to each query, best first, with the distance per hash.

    Example:

        lookalike search upload.jpg --preset near-duplicate --json
        lookalike search screenshot.png --partial
        lookalike search pdq=f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22
    """
    if partial and preset is not None:
        raise typer.BadParameter("use one of --partial and --preset")
    if partial:
        preset = "partial-copy"
    if max_distance is not None and preset is not None:
        raise typer.BadParameter("use one of --max-distance and --preset")
    with options.open_index_or_exit(index_url, must_exist=True) as index:
        stored = index.algorithm_bits()
        try:
            names = search_algorithms(hashes, stored)
        except LookalikeError as exc:
            raise typer.BadParameter(str(exc)) from None
        with_variants = dihedral or preset is not None  # presets are tuned with the variants in play
        parsed = parse_queries(queries, names, with_variants, workers, query_algorithms(names, stored))
        names = with_query_algorithms(names, parsed, stored)
        results = search_queries(index, parsed, names, k, max_distance, preset, dihedral)
    failed = False
    matched = False
    for query, found in zip(parsed, results, strict=True):
        if query.error is not None:
            failed = True
            report_error(f"{query.text}: {query.error}")
            if json_output:
                emit_json({"query": query.text, "error": query.error})
            continue
        matched = matched or bool(found)
        _print(query, found, json_output)
    if failed or (fail_on_match and matched):
        raise typer.Exit(1)


def _print(query: Query, found: list[Found], json_output: bool) -> None:
    if json_output:
        emit_json(
            {
                "query": query.text,
                "matches": [
                    {
                        "key": f.key,
                        "path": f.path,
                        "distances": dict(f.distances),
                        **({"where": dict(f.where)} if f.where else {}),
                        **({"verified": f.verified} if f.verified is not None else {}),
                    }
                    for f in found
                ],
            }
        )
        return
    emit_line(f"{query.text}: {len(found)} match{'es' if len(found) != 1 else ''}")
    for rank, item in enumerate(found, start=1):
        distances = "  ".join(f"{name} {value}" for name, value in item.distances.items())
        emit_line(f"  {rank:>3}. {item.path}  {distances}")
        if item.where:
            emit_line(f"       {describe_where(item.where)}")
        if item.verified is False:
            emit_line(f"       {NOT_VERIFIED}")
