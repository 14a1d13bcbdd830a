"""Shared fixtures: real photographs committed under tests/fixtures and shipped in scikit-image."""

from __future__ import annotations

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
