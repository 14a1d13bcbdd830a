"""The HTTP service: every endpoint, keys, limits, hostile input; errors are JSON, never a trace."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from PIL import Image

import lookalike
from conftest import COMMITTED_PHOTOS
from lookalike.server import ServerConfig, create_app
from tests_support import serving

KEY = "test-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
JPEGS = [p for p in COMMITTED_PHOTOS if p.suffix == ".jpg"]


def config(tmp_path: Path, **changes: object) -> ServerConfig:
    values: dict[str, object] = {"index_url": f"sqlite:///{tmp_path / 'index.db'}", "api_keys": (KEY,)}
    values.update(changes)
    return ServerConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(base_url="http://localhost", app=create_app(config(tmp_path))) as test_client:
        yield test_client


def upload(path: Path | bytes, name: str = "image.jpg") -> dict[str, tuple[str, bytes, str]]:
    data = path if isinstance(path, bytes) else path.read_bytes()
    return {"file": (name, data, "application/octet-stream")}


def planted_copy(path: Path) -> bytes:
    image = Image.open(path).convert("RGB")
    buffer = io.BytesIO()
    image.resize((image.width * 2 // 3, image.height * 2 // 3)).save(buffer, "JPEG", quality=55)
    return buffer.getvalue()


def add_gallery(client: TestClient, paths: list[Path]) -> None:
    for path in paths:
        response = client.post("/v1/images", files=upload(path), data={"id": path.name}, headers=AUTH)
        assert response.status_code == 201, response.text


def test_hash_endpoint_gives_the_library_hashes(client: TestClient) -> None:
    response = client.post("/v1/hash", files=upload(JPEGS[0]))
    assert response.status_code == 200
    body = response.json()
    expected = lookalike.hash_image(JPEGS[0].read_bytes(), ["phash", "pdq", "colorhash"])
    for name in ("phash", "pdq", "colorhash"):
        assert body["hashes"][name] == str(expected[name])
    assert body["pdq_quality"] == expected["pdq"].quality and body["flags"] == []
    assert body["width"] == expected.width


def test_upload_finds_its_planted_copy_first(client: TestClient) -> None:
    add_gallery(client, JPEGS[:6])
    response = client.post("/v1/search", files=upload(planted_copy(JPEGS[2])), data={"k": "3"})
    assert response.status_code == 200
    matches = response.json()["matches"]
    assert matches[0]["id"] == JPEGS[2].name and len(matches) == 3
    assert "phash" in matches[0]["agreed"] and matches[0]["distances"]["phash"] <= 4
    thumbnail = client.get(matches[0]["thumbnail"])
    assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/jpeg"


def test_search_by_hex_and_preset(client: TestClient) -> None:
    add_gallery(client, JPEGS[:4])
    pdq = str(lookalike.hash_file(JPEGS[1], ["pdq"])["pdq"])
    response = client.post("/v1/search", json={"hashes": {"pdq": pdq}, "max_distance": 20})
    assert response.status_code == 200 and response.json()["matches"][0]["id"] == JPEGS[1].name
    response = client.post(
        "/v1/search", files=upload(planted_copy(JPEGS[3])), data={"preset": "near-duplicate"}
    )
    assert [m["id"] for m in response.json()["matches"]] == [JPEGS[3].name]


def test_same_bytes_twice_is_one_image_and_delete_removes_it(client: TestClient) -> None:
    add_gallery(client, JPEGS[:1])
    again = client.post("/v1/images", files=upload(JPEGS[0]), data={"id": "other-id"}, headers=AUTH)
    assert again.json() == {"id": "other-id", "status": "duplicate", "existing_id": JPEGS[0].name}
    assert client.get("/healthz").json()["entries"] == 1
    assert client.delete(f"/v1/images/{JPEGS[0].name}", headers=AUTH).json()["deleted"] is True
    assert client.delete(f"/v1/images/{JPEGS[0].name}", headers=AUTH).status_code == 404


def test_image_id_defaults_to_sha256_and_metadata_is_kept(client: TestClient) -> None:
    response = client.post(
        "/v1/images", files=upload(JPEGS[0]), data={"metadata": '{"owner": "ana"}'}, headers=AUTH
    )
    image_id = response.json()["id"]
    assert len(image_id) == 64 and response.json()["sha256"] == image_id
    # The upload's file name is kept as its display name; the id stays the sha256.
    assert client.get(f"/v1/images/{image_id}").json()["metadata"] == {"name": "image.jpg", "owner": "ana"}


def test_writes_need_the_key_compared_exactly(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-key-0123456789"}, {"Authorization": KEY},
                    {"Authorization": f"Bearer {KEY}x"}, {"Authorization": f"Basic {KEY}"}):  # fmt: skip
        response = client.post("/v1/images", files=upload(JPEGS[0]), headers=headers)
        assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
        assert client.delete("/v1/images/x", headers=headers).status_code == 401
        assert client.post("/v1/banks", json={"name": "b"}, headers=headers).status_code == 401


def test_reads_can_be_closed(tmp_path: Path) -> None:
    with TestClient(
        base_url="http://localhost", app=create_app(config(tmp_path, public_reads=False))
    ) as closed:
        assert closed.post("/v1/search", files=upload(JPEGS[0])).status_code == 401
        assert closed.get("/v1/duplicates").status_code == 401
        assert closed.post("/v1/search", files=upload(JPEGS[0]), headers=AUTH).status_code == 200
        assert closed.get("/healthz").status_code == 200


def test_oversized_uploads_are_refused(tmp_path: Path) -> None:
    with TestClient(
        base_url="http://localhost",
        app=create_app(config(tmp_path, max_upload_bytes=200_000, max_json_bytes=200_000)),
    ) as small:
        big = b"\xff\xd8\xff" + os.urandom(400_000)
        response = small.post("/v1/search", files=upload(big))
        assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while streaming
            for _ in range(100):
                yield b"x" * 10_000

        assert small.post("/v1/banks", json={"name": "b"}, headers=AUTH).status_code == 201
        response = small.post("/v1/banks/b/hashes", content=chunks(), headers=AUTH)
        assert response.status_code == 413


def test_huge_json_body_is_refused(client: TestClient) -> None:
    body = json.dumps({"hashes": {"phash": "0" * 16}, "pad": "x" * (30 << 20)})
    response = client.post("/v1/search", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_types_are_sniffed_from_bytes_not_headers(client: TestClient) -> None:
    html = client.post(
        "/v1/search", files={"file": ("cat.jpg", b"<html><script>x</script></html>", "image/jpeg")}
    )
    assert html.status_code == 415
    png = io.BytesIO()
    Image.open(JPEGS[0]).save(png, "PNG")
    disguised = client.post("/v1/hash", files={"file": ("notes.txt", png.getvalue(), "text/plain")})
    assert disguised.status_code == 200
    odd = client.post("/v1/search", content=b"hello", headers={"Content-Type": "application/x-whatever"})
    assert odd.status_code == 415


@pytest.mark.parametrize(
    "hashes",
    [{"pdq": "abc"}, {"pdq": "z" * 64}, {"phash": "0" * 17}, {"nosuch": "00"}, {}, {"pdq": 12}, "ff"],
)
def test_malformed_hashes_are_422(client: TestClient, hashes: object) -> None:
    add_gallery(client, JPEGS[:1])
    response = client.post("/v1/search", json={"hashes": hashes})
    assert response.status_code == 422 and "error" in response.json()


HOSTILE = [
    "/etc/passwd",
    "'; DROP TABLE entries; --",
    'a"b\\c',
    "C:\\Windows\\win.ini",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_path_and_sql_like_strings_are_plain_data(client: TestClient, text: str, tmp_path: Path) -> None:
    response = client.post(
        "/v1/images",
        files=upload(JPEGS[0]),
        data={"id": text, "metadata": json.dumps({"n": text})},
        headers=AUTH,
    )
    assert response.status_code == 201 and response.json()["id"] == text
    stored = client.get("/v1/images/" + quote(text, safe=""))
    assert stored.status_code == 200 and stored.json()["id"] == text  # the id is data, never a path
    assert client.get("/healthz").json()["entries"] == 1
    assert client.post("/v1/banks", json={"name": text}, headers=AUTH).status_code == 422
    response = client.post("/v1/search", files=upload(JPEGS[0]), data={"preset": text})
    assert response.status_code in (400, 422)
    assert not (tmp_path / "etc").exists()


def test_ids_with_dot_segments_are_refused(client: TestClient) -> None:
    for text in ("../../etc/passwd", "a/./b", ".."):
        response = client.post("/v1/images", files=upload(JPEGS[0]), data={"id": text}, headers=AUTH)
        assert response.status_code == 422 and response.json()["error"]["code"] == "bad_id"


def test_banks_import_check_and_rules(client: TestClient) -> None:
    created = client.post("/v1/banks", json={"name": "known-bad", "description": "test"}, headers=AUTH)
    assert created.status_code == 201 and created.json()["rule"] == "pdq <= 31 with quality >= 50"
    assert client.post("/v1/banks", json={"name": "known-bad"}, headers=AUTH).status_code == 409
    bad = lookalike.hash_file(JPEGS[2], ["pdq"])["pdq"]
    other = lookalike.hash_file(JPEGS[3], ["pdq"])["pdq"]
    text = f"# a list\n{bad} case-1\n{other}\n"
    imported = client.post(
        "/v1/banks/known-bad/hashes", content=text, headers={**AUTH, "Content-Type": "text/plain"}
    )
    assert imported.json()["added"] == 2
    jsonl = json.dumps(
        {"key": "case-3", "hashes": {"pdq": str(lookalike.hash_file(JPEGS[4], ["pdq"])["pdq"])}}
    )
    client.post(
        "/v1/banks/known-bad/hashes", content=jsonl, headers={**AUTH, "Content-Type": "application/x-ndjson"}
    )
    assert client.get("/v1/banks/known-bad").json()["hashes"] == 3
    verdict = client.post("/v1/check", files=upload(planted_copy(JPEGS[2]))).json()
    assert verdict["matched"] is True
    assert verdict["banks"][0]["matches"][0]["id"] == "case-1"
    assert verdict["banks"][0]["rule"] == "pdq <= 31 with quality >= 50"
    flipped = io.BytesIO()
    Image.open(JPEGS[2]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(flipped, "JPEG")
    assert client.post("/v1/check", files=upload(flipped.getvalue())).json()["matched"] is True  # dihedral
    clean = client.post("/v1/check", files=upload(JPEGS[5])).json()
    assert clean["matched"] is False
    broken = client.post(
        "/v1/banks/known-bad/hashes", content="xyz\n", headers={**AUTH, "Content-Type": "text/plain"}
    )
    assert broken.status_code == 422
    assert client.delete("/v1/banks/known-bad", headers=AUTH).status_code == 200
    assert client.get("/v1/banks").json()["banks"] == []


def test_duplicates_groups_best_first(client: TestClient) -> None:
    add_gallery(client, JPEGS[:3])
    client.post("/v1/images", files=upload(planted_copy(JPEGS[1])), data={"id": "copy"}, headers=AUTH)
    groups = client.get("/v1/duplicates").json()["groups"]
    assert [[m["id"] for m in g["members"]] for g in groups] == [[JPEGS[1].name, "copy"]]
    assert groups[0]["members"][0]["best"] is True


def test_health_metrics_docs_and_page(client: TestClient) -> None:
    client.post("/v1/hash", files=upload(JPEGS[0]))
    metrics = client.get("/metrics").text
    assert 'lookalike_requests_total{method="POST",route="/v1/hash",status="200"} 1.0' in metrics
    assert "lookalike_request_seconds_bucket" in metrics and "lookalike_index_entries 0.0" in metrics
    assert client.get("/docs").status_code == 200
    assert "/v1/check" in client.get("/openapi.json").json()["paths"]
    page = client.get("/")
    assert page.status_code == 200 and "lookalike" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_unknown_routes_and_methods_are_json(client: TestClient) -> None:
    assert client.get("/nope").json()["error"]["code"] == "not_found"
    assert client.put("/v1/search").status_code == 401  # anything not a known read needs the key
    assert client.put("/v1/search", headers=AUTH).json()["error"]["code"] == "method_not_allowed"


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[int]:
    """A real uvicorn server on loopback, for what the test client cannot do (stalled sockets)."""
    with serving(create_app(config(tmp_path, body_timeout_seconds=1.0))) as (_, port):
        yield port


def test_a_stalled_body_times_out_with_408(live_server: int) -> None:
    with socket.create_connection(("127.0.0.1", live_server), timeout=10) as connection:
        connection.sendall(
            b"POST /v1/hash HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 100000\r\n\r\n--b\r\n"
        )
        started = time.time()
        reply = ""
        while "request_timeout" not in reply and time.time() - started < 8:
            chunk = connection.recv(4096)  # the headers and the body may come in separate reads
            if not chunk:
                break
            reply += chunk.decode(errors="replace")
    assert reply.startswith("HTTP/1.1 408") and time.time() - started < 8
    assert "request_timeout" in reply


def test_preset_search_returns_matches_and_the_nearest_that_do_not_match(client: TestClient) -> None:
    add_gallery(client, JPEGS[:6])
    body = client.post(
        "/v1/search", files=upload(planted_copy(JPEGS[2])), data={"preset": "near-duplicate", "k": "3"}
    ).json()
    assert [m["id"] for m in body["matches"]] == [JPEGS[2].name]
    rule = lookalike.Matcher.preset("near-duplicate")
    held = [c for c in rule.conditions if body["matches"][0]["distances"][c.algorithms[0]] <= c.max_distance]
    assert held and body["matches"][0]["agreed"] == list(dict.fromkeys(c.algorithms[0] for c in held))
    assert len(body["nearest"]) == 3 and JPEGS[2].name not in {m["id"] for m in body["nearest"]}
    assert all(m["agreed"] == [] for m in body["nearest"])  # unrelated photos: no condition holds
    plain = client.post("/v1/search", files=upload(planted_copy(JPEGS[2])), data={"k": "3"}).json()
    assert len(plain["matches"]) == 3 and plain["nearest"] == []  # without a rule, nothing to separate


@pytest.mark.parametrize(
    ("filename", "shown"),
    [
        ("holiday.jpg", "holiday.jpg"),
        ("../../etc/passwd", "passwd"),
        ("C:\\photos\\cat\x1b[2J.jpg", "cat[2J.jpg"),
    ],
)
def test_uploads_keep_their_file_name_for_display_and_an_opaque_id(
    client: TestClient, filename: str, shown: str
) -> None:
    added = client.post("/v1/images", files={"file": (filename, JPEGS[1].read_bytes())}, headers=AUTH).json()
    assert added["id"] == hashlib.sha256(JPEGS[1].read_bytes()).hexdigest() and added["name"] == shown
    assert client.get(f"/v1/images/{added['id']}").json()["metadata"] == {"name": shown}
    client.post("/v1/images", files=upload(planted_copy(JPEGS[1])), data={"id": "copy"}, headers=AUTH)
    found = client.post("/v1/search", files=upload(JPEGS[1]), data={"preset": "near-duplicate"}).json()
    assert {(m["id"], m["name"]) for m in found["matches"]} == {(added["id"], shown), ("copy", "image.jpg")}
    members = client.get("/v1/duplicates").json()["groups"][0]["members"]
    assert {member["name"] for member in members} == {shown, "image.jpg"}


def test_a_name_given_in_metadata_wins_over_the_file_name(client: TestClient) -> None:
    added = client.post(
        "/v1/images",
        files=upload(JPEGS[0], "IMG_0001.jpg"),
        data={"metadata": '{"name": "Ana"}'},
        headers=AUTH,
    )
    assert added.json()["name"] == "Ana"


def test_a_rule_on_hashes_the_index_lacks_is_a_clear_422(client: TestClient) -> None:
    add_gallery(client, JPEGS[:2])
    pdq = str(lookalike.hash_file(JPEGS[0], ["pdq"])["pdq"])
    whash = str(lookalike.hash_file(JPEGS[0], ["whash_db4"])["whash_db4"])
    response = client.post("/v1/search", json={"hashes": {"whash_db4": whash}, "preset": "whash_db4 <= 20"})
    assert response.status_code == 422 and "holds no whash_db4 hashes" in response.json()["error"]["message"]
    both = {"hashes": {"pdq": pdq, "whash_db4": whash}, "preset": "whash_db4 <= 20 or pdq <= 31"}
    assert [m["id"] for m in client.post("/v1/search", json=both).json()["matches"]] == [JPEGS[0].name]


def test_an_empty_bank_matches_nothing(client: TestClient) -> None:
    assert client.post("/v1/banks", json={"name": "empty"}, headers=AUTH).status_code == 201
    verdict = client.post("/v1/check", files=upload(JPEGS[0]))
    assert verdict.status_code == 200 and verdict.json()["banks"] == [
        {"bank": "empty", "matched": False, "rule": "pdq <= 31 with quality >= 50", "matches": []}
    ]


def test_duplicates_group_an_upload_with_its_mirrored_copy_as_search_does(client: TestClient) -> None:
    """The issue's case: /v1/search matched a mirrored copy, /v1/duplicates did not group it."""
    add_gallery(client, JPEGS[:4])
    mirrored = io.BytesIO()
    Image.open(JPEGS[1]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirrored, "JPEG", quality=90)
    client.post("/v1/images", files=upload(mirrored.getvalue()), data={"id": "mirrored"}, headers=AUTH)
    found = client.post("/v1/search", files=upload(mirrored.getvalue()), data={"preset": "near-duplicate"})
    assert {m["id"] for m in found.json()["matches"]} == {"mirrored", JPEGS[1].name}
    groups = client.get("/v1/duplicates", params={"preset": "near-duplicate"}).json()["groups"]
    assert [{m["id"] for m in group["members"]} for group in groups] == [{"mirrored", JPEGS[1].name}]
