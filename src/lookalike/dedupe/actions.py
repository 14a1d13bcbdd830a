"""Acting on duplicate groups: move, delete or hard-link the copies that are not the best one.

Every action is planned first (a dry run prints the plan), never touches a group's best copy,
touches only the copies that verification calls safe to remove (identical, re-encoded, resized)
unless edited ones are asked for too (`include_edited`), and, when carried out, appends one
JSON line per step to a log so that what happened can be reviewed or undone by hand.

Only files the command line itself indexed from disk are ever touched: both the copy and the
best copy kept in its place must be entries `index add` made (origin FROM_FILE; an id sent over
HTTP, or a `path` in metadata, names no file), and must still have on disk the size and sha256
they were indexed with, else the step is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lookalike.dedupe.grouping import Group
from lookalike.discover import key_path
from lookalike.errors import LookalikeError
from lookalike.index.base import FROM_FILE, Entry

ActionKind = Literal["move", "delete", "hardlink"]
ACTIONS: tuple[ActionKind, ...] = ("move", "delete", "hardlink")


@dataclass(frozen=True)
class IndexedFile:
    """A file as the index knows it: its path and the size and sha256 it was indexed with."""

    path: str
    byte_size: int | None
    sha256: str | None
    from_disk: bool  # the entry was made by `index add` from this path (origin FROM_FILE)

    @classmethod
    def of(cls, entry: Entry) -> IndexedFile:
        from_disk = entry.origin == FROM_FILE
        return cls(key_path(entry.key) if from_disk else entry.key, entry.byte_size, entry.sha256, from_disk)


@dataclass(frozen=True)
class Step:
    """One file operation: `path` is a duplicate, `keep` the group's best copy."""

    action: ActionKind
    path: str
    keep: str
    target: str | None = None  # destination of a move
    copy: IndexedFile | None = None
    kept: IndexedFile | None = None


@dataclass(frozen=True)
class StepResult:
    step: Step
    ok: bool
    message: str = ""


def plan(
    groups: Iterable[Group],
    action: ActionKind,
    destination: str | os.PathLike[str] | None = None,
    *,
    include_edited: bool = False,
) -> list[Step]:
    """The steps that `action` would take: one per duplicate, never the best copy. Safe by
    default: of a verified group, only copies that lose nothing (identical, re-encoded, resized:
    `Group.selected`); rotated, cropped and edited copies too with `include_edited`."""
    if action not in ACTIONS:
        raise LookalikeError(f"unknown action {action!r}; choose one of {', '.join(ACTIONS)}")
    if action == "move" and destination is None:
        raise LookalikeError("move needs a destination folder")
    folder = os.fspath(destination) if destination is not None else ""
    steps: list[Step] = []
    for number, group in enumerate(groups, start=1):
        kept = IndexedFile.of(group.best)
        for member in group.selected(include_edited):
            if member.key == group.best.key:
                continue
            copy = IndexedFile.of(member)
            target = None
            if action == "move":
                target = os.path.join(folder, f"group-{number:05d}", os.path.basename(copy.path))
            steps.append(Step(action, copy.path, kept.path, target, copy, kept))
    return steps


def refusal(step: Step) -> str | None:
    """Why the step may not touch its files, judged from the index alone (no file is read)."""
    if step.copy is None or not step.copy.from_disk:
        return "not indexed from disk by `lookalike index add` (an id, not a file): left alone"
    if step.kept is None or not step.kept.from_disk:
        return f"its best copy {step.keep} was not indexed from disk: left alone"
    return None


def describe(step: Step) -> str:
    if step.action == "move":
        return f"move {step.path} -> {step.target}"
    if step.action == "delete":
        return f"delete {step.path} (keeping {step.keep})"
    return f"hardlink {step.path} -> {step.keep}"


def execute(steps: Iterable[Step], log_path: str | os.PathLike[str]) -> Iterator[StepResult]:
    """Carry out the steps, logging each outcome as a JSON line; a failed step does not stop the rest."""
    with open(log_path, "a", encoding="utf-8") as log:
        for step in steps:
            result = _run(step)
            record = {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "action": step.action,
                "path": step.path,
                "keep": step.keep,
                "target": step.target,
                "ok": result.ok,
            }
            if result.message:
                record["message"] = result.message
            log.write(json.dumps(record) + "\n")  # ASCII escapes: any name fits the log
            log.flush()
            yield result


def _run(step: Step) -> StepResult:
    refused = refusal(step)
    if refused is not None:
        return StepResult(step, False, refused)
    assert step.copy is not None and step.kept is not None
    try:
        if not os.path.lexists(step.path):
            return StepResult(step, False, "file no longer exists")
        if not os.path.exists(step.keep):
            return StepResult(step, False, f"best copy {step.keep} is missing; leaving the duplicate alone")
        if os.path.realpath(step.path) == os.path.realpath(step.keep):
            return StepResult(step, False, "same file as the best copy")
        for indexed, role in ((step.copy, "file"), (step.kept, "best copy")):
            changed = changed_since_indexed(indexed)
            if changed is not None:
                return StepResult(step, False, f"the {role} {indexed.path} {changed}: left alone")
        if step.action == "delete":
            os.remove(step.path)
        elif step.action == "move":
            assert step.target is not None
            target = _free_name(Path(step.target))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(step.path, target)
            return StepResult(step, True, f"moved to {target}")
        else:
            _replace_with_hardlink(step.path, step.keep)
        return StepResult(step, True)
    except OSError as exc:
        return StepResult(step, False, exc.strerror or str(exc))


def changed_since_indexed(indexed: IndexedFile) -> str | None:
    """None if the file on disk is still a regular file with the size and sha256 the index stored;
    else how it differs."""
    if indexed.byte_size is None or indexed.sha256 is None:
        return "has no stored size and sha256 to check"
    info = os.lstat(indexed.path)
    if not stat.S_ISREG(info.st_mode):
        return "is no longer a regular file"
    if info.st_size != indexed.byte_size:
        return f"changed since it was indexed ({info.st_size} bytes, not {indexed.byte_size})"
    digest = hashlib.sha256()
    with open(indexed.path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != indexed.sha256:
        return "changed since it was indexed (its sha256 differs)"
    return None


def _free_name(target: Path) -> Path:
    """`target`, or `target` with a counter, so a move never overwrites a file."""
    candidate = target
    counter = 1
    while candidate.exists():
        candidate = target.with_name(f"{target.stem}-{counter}{target.suffix}")
        counter += 1
    return candidate


def _replace_with_hardlink(path: str, keep: str) -> None:
    """Atomically replace `path` by a hard link to `keep` (same file system only)."""
    temporary = f"{path}.lookalike-link"
    os.link(keep, temporary)
    try:
        os.replace(temporary, path)
    except OSError:
        os.remove(temporary)
        raise
