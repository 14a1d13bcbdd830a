"""Shared fixtures: real photographs committed under tests/fixtures and shipped in scikit-image."""

from __future__ import annotations

import faulthandler
import multiprocessing
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from clickhouse_cluster import Cluster, Unavailable

FIXTURES = Path(__file__).parent / "fixtures"
COMMITTED_PHOTOS = sorted(p for p in (FIXTURES / "photos").iterdir() if p.suffix in {".jpg", ".png", ".webp"})


def committed_rgb(path: Path, side: int) -> Image.Image:
    """A committed photo in RGB, scaled to at most `side` pixels on its long side."""
    with Image.open(path) as image:
        result = image.convert("RGB")
    result.thumbnail((side, side))
    return result


def skimage_images() -> list[Path]:
    """The images scikit-image's wheel ships (photos, textures, a few drawings)."""
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    return sorted(p for p in folder.iterdir() if p.suffix in {".png", ".jpg"})


def all_photos() -> list[Path]:
    return COMMITTED_PHOTOS + skimage_images()


@pytest.fixture(scope="session")
def photos() -> list[Path]:
    return all_photos()


@pytest.fixture(scope="session")
def photo() -> Path:
    return COMMITTED_PHOTOS[5]


@pytest.fixture(autouse=True)
def private_hash_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test (and every `lookalike` it runs) caches hashes in a temporary folder, not ~/.cache."""
    folder = tmp_path_factory.mktemp("lookalike-cache")
    monkeypatch.setenv("LOOKALIKE_CACHE_DIR", str(folder))
    return folder


@pytest.fixture(scope="session")
def clickhouse_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two clickhouse-server processes on loopback as a 2-shard cluster, stopped at the end
    (also when tests fail). Skipped, with the reason, only where no server can be installed."""
    try:
        cluster = Cluster.start(tmp_path_factory.mktemp("clickhouse-cluster"))
    except Unavailable as exc:
        pytest.skip(f"no ClickHouse server: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


EXIT_GRACE_SECONDS = 300


@pytest.fixture(scope="session", autouse=True)
def no_worker_outlives_the_suite() -> Iterator[None]:
    """Every hash_files run stops its worker processes: none is left when the suite ends."""
    yield
    left = [child for child in multiprocessing.active_children() if child.name == "lookalike-worker"]
    assert not left, f"worker processes still running after the suite: {left}"


def pytest_unconfigure(config: pytest.Config) -> None:
    """If the interpreter has not exited `EXIT_GRACE_SECONDS` after the suite, print every thread's
    stack and exit with an error: a hang at exit fails CI at once, saying where, not 90 min later."""
    faulthandler.dump_traceback_later(EXIT_GRACE_SECONDS, exit=True, file=sys.__stderr__)
