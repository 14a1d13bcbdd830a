"""`lookalike bench ...`: the benchmarks that ship with the package (needs the `bench` extra)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from lookalike.cli import options
from lookalike.cli.output import emit_json, emit_line, stderr

bench_app = typer.Typer(
    name="bench",
    help="Measure lookalike against its peers on your own photos.",
    no_args_is_help=True,
    add_completion=False,
)


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lookalike" / "accuracy"


@bench_app.command("accuracy")
def accuracy_command(
    photos: Annotated[Path, typer.Option("--photos", help="Folder of photos (searched recursively).")],
    cache: Annotated[
        Path | None,
        typer.Option("--cache", help="Where transformed copies and hashes are kept between runs."),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for accuracy.md, .json and roc.png.")
    ] = Path("accuracy-results"),
    max_side: Annotated[
        int, typer.Option("--max-side", min=64, help="Photos are first scaled to this long side.")
    ] = 512,
    copy_format: Annotated[str, typer.Option("--copy-format", help="jpeg (q95) or png.")] = "jpeg",
    peers: Annotated[
        bool, typer.Option("--peers/--no-peers", help="Measure ImageHash, pdqhash, perception.")
    ] = True,
    limit: Annotated[int | None, typer.Option("--limit", min=4, help="Use only the first N photos.")] = None,
    transforms: Annotated[
        str | None, typer.Option("--transforms", help="Comma-separated transform names (default: all).")
    ] = None,
    index_eval: Annotated[
        bool,
        typer.Option(
            "--index-eval",
            help="Also run each preset as an index does (the test half in a SQLite index with local "
            "features, a duplicate search per preset): the only path that measures a local clause.",
        ),
    ] = False,
    index_rules: Annotated[
        list[str] | None,
        typer.Option("--index-rule", help="With --index-eval: another rule or preset to run (repeatable)."),
    ] = None,
    workers: options.Workers = None,
    json_output: options.Json = False,
) -> None:
    """Recall at 99.9% and 99.99% precision, overall and per transform family, for lookalike's
    hashes and matcher presets and for the peer libraries, with ROC curves.

    Example:

        lookalike bench accuracy --photos ~/Pictures/sample --out results/
    """
    from lookalike.benchmarks.accuracy import run_benchmark
    from lookalike.benchmarks.accuracy_report import markdown_tables, plot_roc, save_run
    from lookalike.pipeline import default_workers

    if copy_format not in ("jpeg", "png"):
        raise typer.BadParameter("--copy-format must be jpeg or png")
    names = [t.strip() for t in transforms.split(",") if t.strip()] if transforms else None
    run = run_benchmark(
        photos,
        cache or _default_cache(),
        max_side=max_side,
        copy_format=copy_format,
        workers=workers or default_workers(),
        peers=peers,
        limit=limit,
        transform_names=names,
        index_eval=index_eval,
        index_rules=index_rules or (),
        log=lambda text: stderr.print(text),
    )
    save_run(run, out)
    try:
        plot_roc(run, out / "roc.png")
    except ImportError:
        stderr.print("matplotlib is not installed (pip install 'lookalike[bench]'): no ROC plot")
    for failure in run.failures:
        stderr.print(f"note: {failure}")
    if json_output:
        for result in run.results:
            emit_json(
                {
                    "name": result.name,
                    "peer": result.peer,
                    "recall": result.recall,
                    "precision": result.precision,
                }
            )
    else:
        for line in markdown_tables(run).splitlines():
            emit_line(line)
    stderr.print(f"{run.images} images, {run.seconds:.0f} s; results in {out}")
