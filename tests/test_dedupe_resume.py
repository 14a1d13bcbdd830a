"""`lookalike dupes --index`: a long duplicate search keeps a journal in the cache folder, so a run
interrupted (Ctrl-C, a crash) resumes where it stopped and answers as a run never interrupted."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner, Result

from conftest import COMMITTED_PHOTOS
from lookalike.cli.app import app
from lookalike.dedupe import pairs

runner = CliRunner()


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of five photos, a half-size copy of the first and a mirrored copy of the second."""
    folder = tmp_path_factory.mktemp("resume")
    for photo in COMMITTED_PHOTOS[:5]:
        shutil.copy(photo, folder / photo.name)
    with Image.open(COMMITTED_PHOTOS[0]) as image:
        first = image.convert("RGB")
    first.resize((first.width // 2, first.height // 2)).save(folder / "small-copy.jpg", quality=85)
    with Image.open(COMMITTED_PHOTOS[1]) as image:
        image.convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "mirrored.jpg")
    database = folder / "photos.db"
    result = invoke("index", "add", str(folder), "--index", str(database), "--no-progress")
    assert result.exit_code == 0, result.output
    return database


def _groups(output: str) -> list[list[str]]:
    found = [json.loads(line) for line in output.splitlines()]
    return sorted(sorted(Path(m["key"]).name for m in group["members"]) for group in found)


def _journals() -> list[Path]:
    folder = Path(os.environ["LOOKALIKE_CACHE_DIR"]) / "dupes-journals"
    return sorted(folder.glob("*.journal")) if folder.exists() else []


def _count_batches(monkeypatch: pytest.MonkeyPatch, interrupt_at: int | None = None) -> list[int]:
    """Count the batches the search judges from now on; with `interrupt_at`, Ctrl-C at that one."""
    judged = pairs.judge_batch  # type: ignore[attr-defined]
    calls: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == interrupt_at:
            raise KeyboardInterrupt
        return judged(*args, **kwargs)

    monkeypatch.setattr(pairs, "judge_batch", counted)
    return calls


def test_an_interrupted_duplicate_search_resumes_and_answers_the_same(
    indexed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pairs, "BATCH", 2)  # seven images: four batches
    whole = invoke("dupes", "--index", str(indexed), "--json", "--no-progress")
    assert whole.exit_code == 0, whole.output
    expected = _groups(whole.stdout)
    assert [COMMITTED_PHOTOS[0].name, "small-copy.jpg"] in expected
    assert sorted([COMMITTED_PHOTOS[1].name, "mirrored.jpg"]) in expected
    assert _journals() == []  # a finished search leaves no journal behind

    with monkeypatch.context() as patch:
        _count_batches(patch, interrupt_at=3)
        stopped = invoke("dupes", "--index", str(indexed), "--json", "--no-progress")
    assert stopped.exit_code == 130
    assert "resumes the search" in stopped.stderr
    assert len(_journals()) == 1

    calls = _count_batches(monkeypatch)
    resumed = invoke("dupes", "--index", str(indexed), "--json", "--no-progress")
    assert resumed.exit_code == 0, resumed.output
    assert len(calls) == 2  # the two batches finished before the interruption were not searched again
    assert _groups(resumed.stdout) == expected
    assert _journals() == []


def test_a_journal_of_an_index_that_changed_since_is_not_used(
    indexed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "copy.db"
    shutil.copy(indexed, database)
    monkeypatch.setattr(pairs, "BATCH", 2)
    with monkeypatch.context() as patch:
        _count_batches(patch, interrupt_at=2)
        assert invoke("dupes", "--index", str(database), "--json", "--no-progress").exit_code == 130
    assert len(_journals()) == 1
    removed = invoke("index", "remove", str(indexed.parent / "mirrored.jpg"), "--index", str(database))
    assert removed.exit_code == 0, removed.output
    after = invoke("dupes", "--index", str(database), "--json", "--no-progress")
    assert after.exit_code == 0, after.output
    names = {name for group in _groups(after.stdout) for name in group}
    assert "mirrored.jpg" not in names  # the half-done search of the old index was not replayed
    assert [COMMITTED_PHOTOS[0].name, "small-copy.jpg"] in _groups(after.stdout)
