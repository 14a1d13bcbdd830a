"""Where CLI output goes: results to stdout (text or one JSON object per line), the rest to stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from lookalike.algorithms import HashValue
from lookalike.hash import Hash

T = TypeVar("T")

stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def emit_json(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record, ensure_ascii=False, separators=(", ", ": ")) + "\n")


def emit_line(text: str) -> None:
    sys.stdout.write(text + "\n")


def report_error(message: str) -> None:
    """One line on stderr, never a traceback."""
    stderr.print(f"[red]error:[/red] {message}", markup=True, highlight=False)


def hash_text(value: HashValue) -> str:
    return str(value)


def quality_fields(hashes: dict[str, HashValue]) -> dict[str, int]:
    """`{"pdq_quality": 97}` for every hash that carries a quality score."""
    return {
        f"{name.split(':')[0]}_quality": value.quality
        for name, value in hashes.items()
        if isinstance(value, Hash) and value.quality is not None
    }


class FileRateColumn(TextColumn):
    """Files per second, from the task's own speed estimate."""

    def __init__(self) -> None:
        super().__init__("")

    def render(self, task: Any) -> Any:
        from rich.text import Text

        speed = task.finished_speed or task.speed
        return Text("-- files/s" if not speed else f"{speed:,.1f} files/s", style="progress.data.speed")


@contextmanager
def progress_bar(description: str, total: int | None, enabled: bool = True) -> Iterator[Progress]:
    """A Rich progress bar on stderr: count, files/s, elapsed and remaining time."""
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        FileRateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=stderr,
        transient=False,
        disable=not enabled,
        # Rich would route our stdout writes through the bar's console (stderr) while it runs,
        # so `lookalike hash photos/ > hashes.txt` lost its results; do so only when stdout is
        # the terminal the bar is drawn on.
        redirect_stdout=_is_terminal(sys.stdout),
        redirect_stderr=False,
    )
    with progress:
        progress.add_task(description, total=total)
        yield progress


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def advance(progress: Progress, items: Iterable[T]) -> Iterator[T]:
    task = progress.task_ids[0]
    for item in items:
        yield item
        progress.advance(task)
