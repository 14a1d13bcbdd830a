"""`lookalike dupes`: near-duplicate groups of a folder or an index, a review page, safe actions."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lookalike.algorithms import parse_spec
from lookalike.cli import options
from lookalike.cli.index_cmd import print_add_report
from lookalike.cli.output import emit_json, emit_line, note, progress_bar, report_error, stderr
from lookalike.dedupe import actions
from lookalike.dedupe.best_copy import check_keep_rule
from lookalike.dedupe.collection import Queries, complete_queries, duplicate_groups, index_files
from lookalike.dedupe.describe import TIER_TITLES, describe_groups
from lookalike.dedupe.grouping import Group
from lookalike.dedupe.relations import KINDS
from lookalike.dedupe.report import write_report
from lookalike.dedupe.shown_copies import NOT_A_COPY
from lookalike.discover import file_key
from lookalike.errors import LookalikeError
from lookalike.index.base import FROM_FILE, Entry, Index
from lookalike.matcher import Matcher, default_index_hashes
from lookalike.prepare import Mode

if TYPE_CHECKING:
    from lookalike.hash_cache import HashCache


def dupes_command(
    folders: Annotated[
        list[Path] | None,
        typer.Argument(help="Folders (or files) to check; or use --index.", show_default=False),
    ] = None,
    index_url: options.IndexUrl = None,
    preset: options.Preset = None,
    max_distance: Annotated[
        int | None,
        typer.Option("--max-distance", "-r", min=0, help="Group by one hash within R bits instead."),
    ] = None,
    hashes: Annotated[
        str | None, typer.Option("--hashes", help="With --max-distance: the hash to compare (default phash).")
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Every member within the distance of its group's centre.")
    ] = False,
    recursive: Annotated[
        bool,
        # No -r here: in `dupes`, as in `search`, -r is --max-distance.
        typer.Option("--recursive/--no-recursive", help="Descend into sub-folders."),
    ] = True,
    json_output: options.Json = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write a review page (self-contained HTML).")
    ] = None,
    action: Annotated[
        str, typer.Option("--action", help="report (default), move, delete or hardlink the copies.")
    ] = "report",
    dest: Annotated[
        Path | None, typer.Option("--dest", help="Where `--action move` puts the copies.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Really act; without it actions are a dry run.")] = False,
    log: Annotated[Path, typer.Option("--log", help="Where actions are logged.")] = Path(
        "lookalike-actions.log"
    ),
    workers: options.Workers = None,
    mode: options.ModeOption = "fast",
    progress: options.ShowProgress = True,
    fail_on_match: Annotated[
        bool, typer.Option("--fail-on-match", help="Exit 1 if any group was found.")
    ] = False,
    no_cache: options.NoCache = False,
    keep: Annotated[
        str,
        typer.Option(
            "--keep",
            help="Which copy to keep: auto (the original: least derived, highest fidelity), largest,"
            " oldest, newest or path:PREFIX (a copy under PREFIX).",
        ),
    ] = "auto",
    include_edited: Annotated[
        bool,
        typer.Option(
            "--include-edited",
            help="Let actions and the page's selection take rotated, cropped and edited copies too.",
        ),
    ] = False,
    partial: Annotated[
        bool,
        typer.Option(
            "--partial", help="Group partial copies too (crops, collages): the partial-copy preset."
        ),
    ] = False,
) -> None:
    """Duplicate groups by tier (identical files, identical pixels, copies, edited copies), the
    copy to keep first (the original: least derived, highest fidelity), and what each other
    member is to it (resized, re-encoded, rotated, cropped, edited, ...).

    Example:

        lookalike dupes ~/Pictures --html review.html
        lookalike dupes --index photos.db --preset exact-duplicate --action move --dest /tmp/d --yes
    """
    hash_mode = options.check_mode(mode)
    try:
        check_keep_rule(keep)
    except LookalikeError as exc:
        raise typer.BadParameter(str(exc)) from None
    if partial and preset is not None:
        raise typer.BadParameter("use one of --partial and --preset")
    if partial:
        preset = "partial-copy"
    if action not in ("report", *actions.ACTIONS):
        raise typer.BadParameter("--action must be report, move, delete or hardlink")
    if action == "move" and dest is None:
        raise typer.BadParameter("--action move needs --dest DIR")
    if max_distance is not None and preset is not None:
        raise typer.BadParameter("use one of --max-distance and --preset")
    if not folders and index_url is None and not os.path.exists("lookalike.db"):
        raise typer.BadParameter("give folders to check, or an index with --index")
    rule = None if max_distance is not None else Matcher.parse(preset or "near-duplicate")
    algorithm = parse_spec((hashes or "phash").split(",")[0]).key
    needed = list(rule.algorithms) if rule else [algorithm]
    failed = False
    cache = None if no_cache else options.open_cache()
    queries: Queries = {}
    with _index_for(folders, index_url) as index:
        if folders:
            failed, keys = _index_folders(
                index, folders, needed, recursive, workers, hash_mode, progress, cache, queries
            )
        if rule is not None and not folders:
            # Each entry is searched with the variants stored with it, files or uploads alike:
            # the same call as the service's /v1/duplicates. A search of a stored index can be
            # long: it keeps a journal, so an interrupted run resumes where it stopped.
            journal = search_checkpoint(index, rule)
            try:
                with _bar("searching", len(index), progress) as follow:
                    groups = index.duplicates(
                        matcher=rule, strict=strict, progress=follow, checkpoint=journal
                    )
            except KeyboardInterrupt:
                if journal is not None:
                    note("interrupted: the same command resumes the search where it stopped")
                raise
        elif rule is not None:
            failures = complete_queries(
                index, keys, queries, list(rule.algorithms), workers=workers, mode=hash_mode, cache=cache
            )
            for failure in failures:
                report_error(str(failure))
            failed = failed or bool(failures)
            with _bar("searching", len(keys), progress) as follow:
                groups = duplicate_groups(index, queries, rule, strict=strict, progress=follow)
        else:
            groups = index.duplicates(algorithm, max_distance or 0, strict=strict)
    members = sum(len(group.members) for group in groups)
    with _bar("verifying", members, progress) as follow:
        groups = describe_groups(groups, keep=keep, progress=follow)
    print_groups(groups, json_output, include_edited)
    if html is not None:
        grouped_by = rule or Matcher.parse(f"{algorithm} <= {max_distance or 0}")
        page = write_report(groups, html, rule=grouped_by, include_edited=include_edited)
        note(f"review page: {page}")
    if action != "report":
        failed = _act(groups, action, dest, yes, log, include_edited) or failed
    if failed or (fail_on_match and groups):
        raise typer.Exit(1)


@contextlib.contextmanager
def _bar(description: str, total: int, enabled: bool) -> Iterator[Callable[[int, int], None]]:
    """A progress bar for one step of the job, as a `progress(done, total)` callback."""
    with progress_bar(description, total, enabled=enabled and total > 1) as bar:
        task = bar.task_ids[0]
        yield lambda done, total: bar.update(task, completed=done, total=total)


def search_checkpoint(index: Index, rule: Matcher) -> Path | None:
    """Where the duplicate search of `index` under `rule` keeps its journal: the user's cache
    folder (not beside the index, which may be read-only or on a server), one file per index and
    rule. The journal itself checks that the index has not changed since; None if the folder
    cannot be made (the search then runs without one)."""
    from lookalike.cache_dir import default_cache_dir

    folder = default_cache_dir() / "dupes-journals"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    name = hashlib.sha256(f"{index.url}\n{rule}".encode()).hexdigest()[:32]
    return folder / f"{name}.journal"


@contextlib.contextmanager
def _index_for(folders: list[Path] | None, url: str | None) -> Iterator[Index]:
    """The index to use: the one named, else a temporary one for the folders."""
    if url is not None or not folders:
        with options.open_index_or_exit(url, must_exist=not folders) as index:
            yield index
        return
    with (
        tempfile.TemporaryDirectory(prefix="lookalike-dupes-") as folder,
        options.open_index_or_exit(f"sqlite:///{folder}/dupes.db") as index,
    ):
        yield index


def _index_folders(
    index: Index, folders: list[Path], names: list[str], recursive: bool, workers: int | None, mode: Mode,
    progress: bool, cache: HashCache | None, queries: Queries,
) -> tuple[bool, list[str]]:  # fmt: skip
    """Add the folders' images to the index; returns (whether something failed, their keys)."""
    files, skipped = options.find_images(folders, recursive)
    wanted = list(dict.fromkeys([*names, *default_index_hashes()]))
    with _bar("indexing", len(files), progress) as follow:
        report = index_files(
            index, files, wanted, queries, workers=workers, mode=mode, cache=cache, progress=follow
        )
    print_add_report(report, json_output=False)
    failed_keys = {path for path, _ in report.failed}
    keys = [key for key in (file_key(f) for f in files) if key not in failed_keys]
    return bool(report.failed or skipped), keys


def print_groups(groups: list[Group], json_output: bool, include_edited: bool = False) -> None:
    """Groups as text (a section per tier, each member with its relation to the kept copy) or as
    JSON lines (one object per group, with its tier and each member's relation)."""
    tier = None
    for number, group in enumerate(groups, start=1):
        best = group.best.key
        selected = {entry.key for entry in group.selected(include_edited)}
        if json_output:
            emit_json(
                {
                    "group": number,
                    "tier": group.tier,
                    "members": [
                        {
                            "path": _file_path(entry),
                            "key": entry.key,
                            "best": entry.key == best,
                            "width": entry.width,
                            "height": entry.height,
                            "bytes": entry.byte_size,
                            "relation": _relation_json(group, entry),
                            "selected": entry.key in selected,
                        }
                        for entry in group.members
                    ],
                    "similar": [{"path": _file_path(entry), "key": entry.key} for entry in group.similar],
                }
            )
            continue
        if group.tier != tier and group.tier is not None:
            tier = group.tier
            emit_line(f"{TIER_TITLES[tier]}:")
        emit_line(f"group {number}: {len(group.members)} images{_kinds_text(group)}")
        for entry in group.members:
            size = f"{entry.width}x{entry.height}" if entry.width else "?"
            relation = group.relations.get(entry.key)
            mark = "keep" if entry.key == best else "  - " if entry.key in selected else "    "
            said = f"  {relation.describe()}" if relation is not None else ""
            emit_line(f"  {mark}  {entry.key}  {size}  {entry.byte_size or 0:,} bytes{said}")
        for entry in group.similar:
            emit_line(f"   ~    {entry.key}  {NOT_A_COPY}")
    if not json_output:
        files = sum(len(g.members) for g in groups)
        chosen = sum(len(g.selected(include_edited)) for g in groups)
        stderr.print(
            f"{len(groups)} groups, {files} images in them, {chosen} copies safe to remove (marked -)"
        )
        similar = sum(len(g.similar) for g in groups)
        if similar:
            stderr.print(f"{similar} images the search paired are similar, not copies (marked ~, left out)")


def _kinds_text(group: Group) -> str:
    """' (1 identical-file, 2 resized)': how many members of each relation, when verified."""
    counts = Counter(relation.kind for relation in group.relations.values())
    if not counts:
        return ""
    ordered = sorted(counts.items(), key=lambda item: KINDS.index(item[0]))
    return " (" + ", ".join(f"{count} {kind}" for kind, count in ordered) + ")"


def _relation_json(group: Group, entry: Entry) -> dict[str, object] | None:
    """The member's relation to the kept copy (None for the kept copy itself)."""
    if entry.key == group.best.key:
        return None
    relation = group.relations.get(entry.key)
    return relation.as_json() if relation is not None else None


def _file_path(entry: Entry) -> str | None:
    """The file an entry names, if `index add` made it from one (never a client's id or metadata)."""
    return actions.IndexedFile.of(entry).path if entry.origin == FROM_FILE else None


def _act(
    groups: list[Group], action: str, dest: Path | None, yes: bool, log: Path, include_edited: bool
) -> bool:
    steps = actions.plan(groups, action, dest, include_edited=include_edited)  # type: ignore[arg-type]
    if not yes:
        for step in steps:
            refused = actions.refusal(step)
            note(
                f"would leave {step.path} alone: {refused}" if refused else f"would {actions.describe(step)}"
            )
        note(f"dry run: {len(steps)} steps; add --yes to carry them out (logged to {log})")
        return False
    failures = 0
    for result in actions.execute(steps, log):
        if result.ok:
            note(f"{actions.describe(result.step)}{': ' + result.message if result.message else ''}")
        else:
            failures += 1
            report_error(f"{result.step.path}: {result.message}")
    note(f"{len(steps) - failures} done, {failures} failed or refused; log: {log}")
    return failures > 0
