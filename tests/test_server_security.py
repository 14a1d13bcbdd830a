"""The service against a hostile client: each test replays an attack from the security audit
(issue 16, findings 3-7, 9 and 10) and asserts that it no longer works.

Tests that need real sockets (slow clients, raw requests, URLs the test client would rewrite) run
a real uvicorn server with the protocol settings `lookalike serve` uses.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import lookalike
from conftest import COMMITTED_PHOTOS
from lookalike.server import ServerConfig, create_app

KEY = "security-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
JPEGS = [p for p in COMMITTED_PHOTOS if p.suffix == ".jpg"]


def config(tmp_path: Path, **changes: object) -> ServerConfig:
    values: dict[str, object] = {"index_url": f"sqlite:///{tmp_path / 'index.db'}", "api_keys": (KEY,)}
    values.update(changes)
    return ServerConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(config(tmp_path)), base_url="http://localhost") as test_client:
        yield test_client


def upload(data: bytes) -> dict[str, tuple[str, bytes, str]]:
    return {"file": ("image", data, "application/octet-stream")}


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def sixteen_bit(side: int) -> Image.Image:
    with Image.open(JPEGS[0]) as photo:
        gray = np.asarray(photo.convert("L").resize((side, side)), dtype=np.uint16)
    return Image.fromarray(gray * 257)


# ----- finding 3: deleting one bank deleted others ------------------------------------------------
def test_deleting_a_bank_leaves_banks_whose_names_start_like_it(tmp_path: Path) -> None:
    pdq = str(lookalike.hash_file(JPEGS[2], ["pdq"])["pdq"])
    names = ["x", "x.db", "x.db-backup", "X"]
    with TestClient(create_app(config(tmp_path)), base_url="http://localhost") as first:
        for name in names:
            assert first.post("/v1/banks", json={"name": name}, headers=AUTH).status_code == 201
            text_headers = {**AUTH, "Content-Type": "text/plain"}
            imported = first.post(f"/v1/banks/{name}/hashes", content=f"{pdq} {name}\n", headers=text_headers)
            assert imported.json()["added"] == 1
        assert first.delete("/v1/banks/x", headers=AUTH).status_code == 200
    with TestClient(create_app(config(tmp_path)), base_url="http://localhost") as restarted:
        sizes = {bank["name"]: bank["hashes"] for bank in restarted.get("/v1/banks").json()["banks"]}
        assert sizes == {"x.db": 1, "x.db-backup": 1, "X": 1}
        verdict = restarted.post("/v1/check", files=upload(JPEGS[2].read_bytes())).json()
        assert {bank["bank"] for bank in verdict["banks"] if bank["matched"]} == {"x.db", "x.db-backup", "X"}


def test_banks_made_with_the_old_file_names_keep_their_hashes(tmp_path: Path) -> None:
    pdq = str(lookalike.hash_file(JPEGS[2], ["pdq"])["pdq"])
    with TestClient(create_app(config(tmp_path)), base_url="http://localhost") as first:
        first.post("/v1/banks", json={"name": "old"}, headers=AUTH)
        first.post("/v1/banks/old/hashes", content=f"{pdq}\n", headers={**AUTH, "Content-Type": "text/plain"})
    banks = tmp_path / "index.db.server" / "banks"
    (banks / f"{b'old'.hex()}.db").rename(banks / "old.db")  # as a previous version named it
    with TestClient(create_app(config(tmp_path)), base_url="http://localhost") as restarted:
        assert restarted.get("/v1/banks/old").json()["hashes"] == 1
    assert not (banks / "old.db").exists()
