"""`lookalike demo`: the showcase `make demo` runs, offline, on the embedded index."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from lookalike.cli import options
from lookalike.cli.compare_cmd import distance_between, print_distance_table
from lookalike.cli.dupes_cmd import print_groups
from lookalike.cli.index_cmd import print_add_report
from lookalike.cli.output import emit_line, progress_bar, report_error, stderr
from lookalike.dedupe.collection import Queries, complete_queries, duplicate_groups, index_files
from lookalike.dedupe.describe import describe_groups
from lookalike.dedupe.report import write_report
from lookalike.demo import build_gallery, sample_photos, score_groups
from lookalike.matcher import SEED_HASHES, Matcher, default_index_hashes
from lookalike.pipeline import hash_file


def demo_command(
    photos: Annotated[
        Path | None, typer.Option("--photos", help="Originals (default: the repository's sample photos).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Where the gallery and the report go.")] = Path(
        "demo-output"
    ),
    index_url: options.IndexUrl = None,
    preset: options.Preset = None,
    workers: options.Workers = None,
    progress: options.ShowProgress = True,
) -> None:
    """Build a gallery of sample photos plus edited copies (resized, re-compressed, cropped,
    recoloured, flipped, watermarked, letterboxed), index it, print the duplicate groups and the
    seed article's distance table, and write the HTML review page.

    Example:

        lookalike demo --out demo-output --index sqlite:///lookalike.db
    """
    try:
        originals = sample_photos(photos)
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="--photos") from None
    rule = Matcher.parse(preset or "near-duplicate")
    gallery = build_gallery(originals, out / "gallery")
    copies = sum(1 for image in gallery if image.edit)
    photos_count = len(gallery) - copies
    stderr.print(
        f"gallery: {len(gallery)} images ({photos_count} photos, {copies} edited copies) in {out}/gallery"
    )
    files = [str(image.path.resolve()) for image in gallery]
    queries: Queries = {}
    cache = options.open_cache()
    with options.open_index_or_exit(index_url) as index:
        names = list(dict.fromkeys([*default_index_hashes(), *rule.algorithms]))
        with progress_bar("indexing", len(files), enabled=progress) as bar:
            task = bar.task_ids[0]
            report = index_files(
                index, files, names, queries, workers=workers, cache=cache,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )  # fmt: skip
        print_add_report(report, json_output=False)
        for failure in complete_queries(
            index, files, queries, list(rule.algorithms), workers=workers, cache=cache
        ):
            report_error(str(failure))
        groups = duplicate_groups(index, {key: queries[key] for key in files if key in queries}, rule)
        stored_in = index.url
    groups = describe_groups(groups)
    emit_line("")
    emit_line(f"duplicate groups ({rule.name or rule}), the copy to keep first:")
    print_groups(groups, json_output=False)
    score = score_groups(groups, gallery)
    emit_line(
        f"planted groups: {score.planted}; found whole {score.found}, partly {score.partial}, "
        f"missed {score.missed}; groups mixing different photos: {score.false_groups}"
    )
    emit_line("")
    _seed_table(gallery[0].path, [image.path for image in gallery[1:6]])
    page = write_report(groups, out / "report.html", title="lookalike demo: duplicate groups", rule=rule)
    emit_line("")
    emit_line(f"index: {stored_in}")
    emit_line(f"review page: {page}")
    emit_line(f"open it with: xdg-open {os.path.relpath(page)}")


def _seed_table(source: Path, others: list[Path]) -> None:
    """The seed article's table: aHash and colorhash distances and their sum."""
    reference = hash_file(source, list(SEED_HASHES))
    rows = []
    for other in others:
        result = hash_file(other, list(SEED_HASHES))
        rows.append(
            (os.path.relpath(other), {n: distance_between(reference[n], result[n]) for n in SEED_HASHES})
        )
    print_distance_table(os.path.relpath(source), list(SEED_HASHES), rows)
