"""Where CLI output goes: results to stdout (text or one JSON object per line), the rest to stderr.

Everything printed passes `printable` (JSON: `json_text`): file names and ids come from disks and
clients, and an escape sequence in one (`ESC]0;...`, `ESC[2J`) must not reach the terminal.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from rich.console import Console
from rich.markup import escape
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

# What a terminal may act on: C0 and C1 controls, DEL, line and paragraph separators, the bidi
# controls that reorder what is shown, and surrogates (bytes of a name that is not UTF-8).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    character = match.group()
    if character in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[character]
    code = ord(character)
    if 0xDC80 <= code <= 0xDCFF:  # a byte of a name that is not UTF-8, as os.fsdecode keeps it
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every character a terminal could act on written as an escape (`\\n`, `\\x1b`)."""
    return _UNPRINTABLE.sub(_escape, text)


def json_text(record: dict[str, Any]) -> str:
    """One JSON line; the characters `printable` escapes are JSON `\\u` escapes (still valid JSON,
    and a name that is not UTF-8 comes back as the same bytes through `os.fsencode`)."""
    text = json.dumps(record, ensure_ascii=False, separators=(", ", ": "))
    return _UNPRINTABLE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def emit_json(record: dict[str, Any]) -> None:
    sys.stdout.write(json_text(record) + "\n")


def emit_line(text: str) -> None:
    sys.stdout.write(printable(text) + "\n")


def report_error(message: str) -> None:
    """One line on stderr, never a traceback."""
    stderr.print(f"[red]error:[/red] {escape(printable(message))}", markup=True, highlight=False)


def note(message: str) -> None:
    """A line of progress or summary on stderr, printed as text (names in it are escaped)."""
    stderr.print(printable(message), markup=False, highlight=False)


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
