"""Acting on duplicate groups: move, delete or hard-link the copies that are not the best one.

Every action is planned first (a dry run prints the plan), never touches a group's best copy,
and, when carried out, appends one JSON line per step to a log so that what happened can be
reviewed or undone by hand.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from lookalike.dedupe.grouping import Group
from lookalike.errors import LookalikeError

ActionKind = Literal["move", "delete", "hardlink"]
ACTIONS: tuple[ActionKind, ...] = ("move", "delete", "hardlink")


@dataclass(frozen=True)
class Step:
    """One file operation: `path` is a duplicate, `keep` the group's best copy."""

    action: ActionKind
    path: str
    keep: str
    target: str | None = None  # destination of a move


@dataclass(frozen=True)
class StepResult:
    step: Step
    ok: bool
    message: str = ""


def plan(
    groups: Iterable[Group], action: ActionKind, destination: str | os.PathLike[str] | None = None
) -> list[Step]:
    """The steps that `action` would take: one per duplicate, never the best copy."""
    if action not in ACTIONS:
        raise LookalikeError(f"unknown action {action!r}; choose one of {', '.join(ACTIONS)}")
    if action == "move" and destination is None:
        raise LookalikeError("move needs a destination folder")
    folder = os.fspath(destination) if destination is not None else ""
    steps: list[Step] = []
    for number, group in enumerate(groups, start=1):
        keep = group.best.key
        for member in group.members[1:]:
            if member.key == keep:
                continue
            target = None
            if action == "move":
                target = os.path.join(folder, f"group-{number:05d}", os.path.basename(member.key))
            steps.append(Step(action, member.key, keep, target))
    return steps


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
            record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **asdict(step), "ok": result.ok}
            if result.message:
                record["message"] = result.message
            log.write(json.dumps(record) + "\n")
            log.flush()
            yield result


def _run(step: Step) -> StepResult:
    try:
        if not os.path.lexists(step.path):
            return StepResult(step, False, "file no longer exists")
        if not os.path.exists(step.keep):
            return StepResult(step, False, f"best copy {step.keep} is missing; leaving the duplicate alone")
        if os.path.realpath(step.path) == os.path.realpath(step.keep):
            return StepResult(step, False, "same file as the best copy")
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
