"""Every fenced code block of README.md runs as printed, so a README example cannot break silently.

Blocks are found by their fence; each language has a runner, and a block in a language without
one fails (add a runner here rather than leave a block unchecked):

- ```python: saved as example.py and run with `python example.py`: it must exit 0.
- ```console: each `$ command` runs in bash, one after another (what one command leaves, the next
  finds). It must exit 0, and where README shows output under it, the output (stdout and stderr
  together, as a terminal shows them) must match, after this normalisation:
    - the example home folder is shown as /home/me, so `~/Pictures` reads as README prints it;
    - progress bars (`  indexing ━━━━ 6/6 27.1 files/s 0:00:01 ETA 0:00:00`) are left out on both
      sides (they are redrawn while running, and rates and times vary); trailing spaces are ignored;
    - `...` stands for anything: on a line of its own for any number of lines, inside a line for
      any text (a temporary folder, say);
    - consecutive JSON lines compare in any order (parallel commands print as files finish).
  `make TARGET` runs the Makefile's recipe for TARGET with the test's environment already
  installed (`make demo` runs `lookalike demo --out demo-output`).
- ```sh: `make TARGET` lines are dry runs (`make -n TARGET` in the repository: the target exists
  and expands) and `python bench/NAME.py ...` lines run `--help` (benchmarks take minutes). Every
  other line runs in bash with `set -e`: `lookalike serve` starts in the background on a free
  loopback port (`localhost:8000` then points at it) and is stopped at the end, and curl fails on
  HTTP errors.

Every block runs in a fresh example folder holding the committed photos (tests/fixtures/photos:
photo00.webp ... photo34.png) plus photo01-small.jpg (photo01 at half size, JPEG quality 60),
photo01-mirrored.jpg (flipped left to right), upload.jpg (photo04 at 3/4 size, quality 70) and
known-bad.pdq.txt (a PDQ hash list holding photo04's hash); the example home's Pictures folder
holds photo01.jpg, photo01-small.jpg, photo01-mirrored.jpg, photo04.jpg, photo06.jpg, photo09.jpg.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

import lookalike
from conftest import COMMITTED_PHOTOS

REPOSITORY = Path(__file__).resolve().parent.parent
README = REPOSITORY / "README.md"
SHOWN_HOME = "/home/me"
PICTURES = [
    "photo01.jpg",
    "photo01-small.jpg",
    "photo01-mirrored.jpg",
    "photo04.jpg",
    "photo06.jpg",
    "photo09.jpg",
]
SECONDS_PER_COMMAND = 300


@dataclass(frozen=True)
class Block:
    language: str
    text: str
    line: int  # where the block starts in README.md, for the test id and failure messages

    @property
    def name(self) -> str:
        return f"{self.language or 'unlabelled'}-line-{self.line}"


def readme_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, with their language and first line."""
    blocks: list[Block] = []
    opened: tuple[str, int] | None = None
    body: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        fence = re.match(r"^```\s*([\w+-]*)\s*$", line)
        if fence is None:
            if opened is not None:
                body.append(line)
        elif opened is None:
            opened, body = (fence.group(1).lower(), number), []
        else:
            blocks.append(Block(opened[0], "\n".join(body) + "\n", opened[1]))
            opened = None
    assert opened is None, f"README.md line {opened[1]}: a code block is never closed"
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


# ----- the example folder ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    folder: Path
    home: Path
    env: dict[str, str]


@pytest.fixture
def example(tmp_path: Path) -> Example:
    folder = tmp_path / "example"
    home = tmp_path / "home"
    folder.mkdir()
    (home / "Pictures").mkdir(parents=True)
    for photo in COMMITTED_PHOTOS:
        shutil.copy(photo, folder / photo.name)
    with Image.open(folder / "photo01.jpg") as opened:
        photo01 = opened.convert("RGB")
    photo01.resize((photo01.width // 2, photo01.height // 2)).save(folder / "photo01-small.jpg", quality=60)
    photo01.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "photo01-mirrored.jpg", quality=90)
    with Image.open(folder / "photo04.jpg") as opened:
        photo04 = opened.convert("RGB")
    photo04.resize((photo04.width * 3 // 4, photo04.height * 3 // 4)).save(folder / "upload.jpg", quality=70)
    pdq = lookalike.hash_file(folder / "photo04.jpg", ["pdq"])["pdq"]
    (folder / "known-bad.pdq.txt").write_text(f"{pdq} photo04\n")
    for name in PICTURES:
        shutil.copy(folder / name, home / "Pictures" / name)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LOOKALIKE_", "COLUMNS"))}
    env.update(
        HOME=str(home),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",  # stdout and stderr interleave as on a terminal
        COLUMNS="80",
        LOOKALIKE_CACHE_DIR=os.environ["LOOKALIKE_CACHE_DIR"],  # the test's private cache
    )
    return Example(folder, home, env)


def _run(
    command: str | list[str], example: Example, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command] if isinstance(command, str) else command,
        cwd=cwd or example.folder,
        env=example.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=SECONDS_PER_COMMAND,
    )


# ----- python --------------------------------------------------------------------------------------------


def run_python(block: Block, example: Example) -> None:
    script = example.folder / "example.py"
    script.write_text(block.text)
    done = _run([sys.executable, str(script)], example)
    assert done.returncode == 0, f"README.md line {block.line}: python example.py failed:\n{done.stdout}"


# ----- console -------------------------------------------------------------------------------------------


@dataclass
class Step:
    command: str
    shown: list[str]  # the output README shows under the command (empty: not shown, not checked)


def console_steps(text: str) -> list[Step]:
    """`$ command` lines (a trailing backslash continues one) and the output shown under each."""
    steps: list[Step] = []
    for line in text.splitlines():
        if steps and steps[-1].command.endswith("\\") and not steps[-1].shown:
            steps[-1].command = steps[-1].command[:-1] + " " + line.strip()
        elif line.startswith("$ "):
            steps.append(Step(line[2:].strip(), []))
        elif steps:
            steps[-1].shown.append(line)
        elif line.strip():
            raise AssertionError(f"console output before any `$ command`: {line!r}")
    for step in steps:
        while step.shown and not step.shown[-1].strip():
            step.shown.pop()
    return steps


PROGRESS_BAR = re.compile(r"^\s*\w[\w ]*\s+[━╸╺]+.*\bETA\b")


def normalise(lines: list[str]) -> list[str]:
    """Trailing spaces and progress bars out; runs of JSON lines sorted (see the module docstring)."""
    kept = [line.rstrip() for line in lines if not PROGRESS_BAR.match(line)]
    while kept and not kept[-1]:
        kept.pop()
    result: list[str] = []
    run: list[str] = []
    for line in [*kept, ""]:
        if line.startswith("{"):
            run.append(line)
            continue
        result.extend(sorted(run))
        run = []
        result.append(line)
    return result[:-1]


def output_pattern(shown: list[str]) -> re.Pattern[str]:
    """A regular expression for the output README shows: `...` lines match any lines, `...` inside
    a line any text."""
    parts = []
    for line in shown:
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(".*?".join(re.escape(piece) for piece in line.split("...")) + r"\n")
    return re.compile("".join(parts))


def shown_output_matches(shown: list[str], actual: str) -> bool:
    expected = normalise(shown)
    text = "\n".join(normalise(actual.splitlines())) + "\n"
    return output_pattern(expected).fullmatch(text) is not None


def make_recipe(target: str) -> str:
    """The commands of a Makefile target, with the virtualenv's programs found on PATH."""
    makefile = (REPOSITORY / "Makefile").read_text()
    found = re.search(rf"^{re.escape(target)}:[^\n]*\n((?:\t[^\n]*\n)+)", makefile, re.MULTILINE)
    assert found is not None, f"the Makefile has no recipe for {target!r}"
    recipe = [line.strip().replace("$(BIN)/", "") for line in found.group(1).splitlines()]
    assert not any("$(" in line for line in recipe), f"make {target}: cannot run {recipe} outside make"
    return " && ".join(recipe)


def run_console(block: Block, example: Example) -> None:
    for step in console_steps(block.text):
        command = step.command
        make = re.match(r"^make\s+([\w-]+)\s*(?:#.*)?$", command)
        if make is not None:
            command = make_recipe(make.group(1))
        done = _run(command, example)
        output = done.stdout.replace(str(example.home), SHOWN_HOME)
        where = f"README.md line {block.line}: $ {step.command}"
        assert done.returncode == 0, f"{where}\nexited {done.returncode}:\n{output}"
        if step.shown:
            assert shown_output_matches(step.shown, output), (
                f"{where}\nREADME shows:\n" + "\n".join(step.shown) + f"\nbut it printed:\n{output}"
            )


# ----- sh ------------------------------------------------------------------------------------------------


def sh_commands(text: str) -> list[str]:
    """Command lines, backslash continuations joined, blank and comment lines left out."""
    commands: list[str] = []
    pending = ""
    for line in text.splitlines():
        pending += line.strip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        if pending and not pending.startswith("#"):
            commands.append(pending)
        pending = ""
    return commands


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sh_script(commands: list[str], port: int) -> str:
    """The block's runnable lines as one bash script (see the module docstring)."""
    lines = ["set -eo pipefail"]
    health = f"localhost:{port}/healthz"
    for command in commands:
        command = command.replace("localhost:8000", f"localhost:{port}")
        command = re.sub(r"^curl\b", "curl -sS --fail-with-body", command)
        if re.match(r"^lookalike\s+serve\b", command):
            lines += [
                f"{command} --port {port} > serve.log 2>&1 &",
                f"for _ in $(seq 300); do curl -so /dev/null {health} && break; sleep 0.1; done",
                f"curl -sS --fail {health} > /dev/null || {{ cat serve.log; exit 1; }}",
            ]
        else:
            lines.append(command)
    return "\n".join(lines) + "\n"


def run_sh(block: Block, example: Example) -> None:
    runnable = []
    for command in sh_commands(block.text):
        make = re.match(r"^make\s+([\w-]+)\s*(?:#.*)?$", command)
        bench = re.match(r"^python\s+(bench/\S+\.py)\b", command)
        if make is not None:
            done = _run(["make", "-n", "--no-print-directory", make.group(1)], example, cwd=REPOSITORY)
        elif bench is not None:
            done = _run([sys.executable, bench.group(1), "--help"], example, cwd=REPOSITORY)
        else:
            runnable.append(command)
            continue
        assert done.returncode == 0, f"README.md line {block.line}: {command}:\n{done.stdout}"
    if not runnable:
        return
    script = sh_script(runnable, _free_port())
    process = subprocess.Popen(
        ["bash", "-c", script],
        cwd=example.folder,
        env=example.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the server and its workers share this group, stopped below
    )
    try:
        output, _ = process.communicate(timeout=SECONDS_PER_COMMAND)
    finally:
        _stop_group(process.pid)
    assert process.returncode == 0, f"README.md line {block.line}: the block failed:\n{script}\n{output}"


def _stop_group(group: int) -> None:
    for sent in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(group, sent)
        except ProcessLookupError:
            return
        for _ in range(100):
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


RUNNERS = {"python": run_python, "console": run_console, "sh": run_sh}


# ----- the tests -----------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[block.name for block in BLOCKS])
def test_readme_block_runs_as_printed(block: Block, example: Example) -> None:
    runner = RUNNERS.get(block.language)
    assert runner is not None, (
        f"README.md line {block.line}: no runner for ```{block.language} blocks (tests/test_readme.py)"
    )
    runner(block, example)


def test_the_harness_finds_every_kind_of_block_readme_uses() -> None:
    assert {block.language for block in BLOCKS} >= {"python", "console", "sh"}


def test_shown_output_matching_normalises_only_what_the_docstring_says() -> None:
    printed = (
        '{"path": "b.jpg"}\n{"path": "a.jpg"}\n'
        "  indexing ━━━━━━━━━━ 2/2 26.5 files/s 0:00:01 ETA 0:00:00\n"
        "added 2, failed 0   \nreview page: /tmp/x/report.html\n"
    )
    json_lines = ['{"path": "a.jpg"}', '{"path": "b.jpg"}']
    assert shown_output_matches([*json_lines, "added 2, failed 0", "..."], printed)
    assert shown_output_matches(["...", "review page: .../report.html"], printed)
    assert not shown_output_matches([*json_lines, "added 3, failed 0", "..."], printed)
    assert not shown_output_matches(['{"path": "a.jpg"}'], printed)  # nothing left unshown
    table = "┏━━━━┳━━━┓\n┃ a  ┃ b ┃\n"
    assert not shown_output_matches(["┃ a  ┃ b ┃"], table)  # table borders are not progress bars
