"""The service against a hostile client: each test replays an attack from the security audit
(issue 16, findings 3-7, 9 and 10) and asserts that it no longer works.

Tests that need real sockets (slow clients, raw requests, URLs the test client would rewrite) run
a real uvicorn server with the protocol settings `lookalike serve` uses.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import lookalike
from conftest import COMMITTED_PHOTOS
from lookalike.errors import LookalikeError
from lookalike.index import IndexItem, open_index
from lookalike.index.base import FROM_API
from lookalike.server import ServerConfig, create_app
from lookalike.server.config import default_hosts, read_keys
from lookalike.server.protocol import GuardedH11Protocol
from tests_support import serving

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


# ----- finding 2: ids sent over HTTP became file paths ------------------------------------------
def test_thumbnails_from_paths_open_only_files_the_command_line_indexed(tmp_path: Path) -> None:
    index_url = f"sqlite:///{tmp_path / 'index.db'}"
    private = tmp_path / "private.jpg"
    mine = tmp_path / "mine.jpg"
    for path, photo in ((private, JPEGS[3]), (mine, JPEGS[4])):
        path.write_bytes(photo.read_bytes())
    with open_index(index_url) as index:
        index.add_files([mine], hashes=["phash"], workers=1)
        phash = dict(lookalike.hash_file(private, ["phash"]))
        index.add([IndexItem(str(private), phash, origin=FROM_API)])  # a client's id, no upload kept
    app = create_app(config(tmp_path, thumbnails_from_paths=True))
    with TestClient(app, base_url="http://localhost") as client:
        assert client.get("/v1/thumbnails/" + quote(str(mine), safe="")).status_code == 200
        assert client.get("/v1/thumbnails/" + quote(str(private), safe="")).status_code == 404


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


# ----- finding 4: key files -----------------------------------------------------------------------
def test_key_files_take_comments_only_at_line_start_and_refuse_files_without_keys(tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("# the service's keys\n   # an indented comment, not a key\nkey-one-0123456789abcdef\n\n")
    assert read_keys(None, [keys]) == ("key-one-0123456789abcdef",)
    for text in ("", "\n\n", "# only a comment\n  # and another\n"):
        keys.write_text(text)
        with pytest.raises(LookalikeError, match="no API key in the file"):
            read_keys(None, [keys])


def test_file_and_environment_keys_both_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("from-the-file-0123456789\n")
    monkeypatch.setenv("LOOKALIKE_API_KEY", "from-the-environment-0123")
    assert ServerConfig.from_environment(key_file=keys).api_keys == (
        "from-the-environment-0123",
        "from-the-file-0123456789",
    )


def test_serve_with_an_empty_key_file_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    empty = tmp_path / "keys.txt"
    empty.write_text("# no key yet\n")
    command = [sys.executable, "-m", "lookalike", "serve", "--api-key-file", str(empty), "--port", "9"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2
    assert "no API key in the file" in done.stderr and "Traceback" not in done.stderr


# ----- finding 5: --private-reads left health, metrics and docs open ------------------------------
def test_private_reads_leave_only_a_bare_healthz_open(tmp_path: Path) -> None:
    with TestClient(create_app(config(tmp_path, public_reads=False)), base_url="http://localhost") as closed:
        assert closed.get("/healthz").json() == {"status": "ok"}
        for path in ("/metrics", "/docs", "/openapi.json", "/v1/banks", "/v1/images/x", "/v1/thumbnails/x"):
            response = closed.get(path)
            assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized", path
        assert closed.get("/metrics", headers=AUTH).status_code == 200
        assert closed.get("/openapi.json", headers=AUTH).status_code == 200


# ----- finding 6: bodies were read before the key was checked; 20 MB JSON everywhere --------------
@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, int]]:
    with serving(create_app(config(tmp_path, body_timeout_seconds=2.0))) as (url, port):
        yield url, port


def raw_exchange(port: int, request: bytes, wait: float = 5.0) -> tuple[str, float]:
    """Send raw bytes and read one response (headers and Content-Length body) for at most `wait`
    seconds; returns (what came back, seconds until it was complete)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as connection:
        started = time.time()
        connection.sendall(request)
        reply = b""
        try:
            while time.time() - started < wait:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                reply += chunk
                head, found, body = reply.partition(b"\r\n\r\n")
                length = [line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")]
                if found and length and len(body) >= int(length[0].split(b":")[1]):
                    break
        except TimeoutError:
            pass
        return reply.decode("latin-1"), time.time() - started


def test_a_request_without_the_key_is_refused_before_its_body_is_read(live: tuple[str, int]) -> None:
    _, port = live
    head = (
        b"POST /v1/banks HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )  # no length to refuse up front, and no body sent: only the key check can answer
    reply, seconds = raw_exchange(port, head, wait=1.5)
    assert reply.startswith("HTTP/1.1 401") and '"unauthorized"' in reply and seconds < 1.5


@pytest.mark.parametrize("path", ["/v1/search", "/v1/banks"])
def test_json_bodies_get_the_small_limit(client: TestClient, path: str) -> None:
    body = json.dumps([{}] * 40_000)  # 160 KB
    response = client.post(path, content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"

    def streamed() -> Iterator[bytes]:
        yield b"[" + b"{}," * 40_000 + b"{}]"

    response = client.post(path, content=streamed(), headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 413


# ----- finding 7: 500s for hostile input ----------------------------------------------------------
HOSTILE_JSON = {
    "nested 20,000 deep": "[" * 20_000 + "]" * 20_000,
    "an integer of 5001 digits": '{"hashes": {"phash": "0000000000000000"}, "k": 1' + "0" * 5000 + "}",
    "a number out of range": '{"hashes": {"phash": "0000000000000000"}, "k": 1e999}',
}


@pytest.mark.parametrize("name", list(HOSTILE_JSON))
def test_hostile_json_bodies_are_4xx_never_500(client: TestClient, name: str) -> None:
    for path in ("/v1/search", "/v1/banks"):
        response = client.post(
            path, content=HOSTILE_JSON[name], headers={**AUTH, "Content-Type": "application/json"}
        )
        assert response.status_code in (400, 422) and response.json()["error"]["code"] == "bad_json", (
            path,
            name,
        )


@pytest.mark.parametrize(
    "metadata", ['{"n": 1' + "0" * 4400 + "}", '{"n": ' + "[" * 3000 + "]" * 3000 + "}"], ids=["long", "deep"]
)
def test_hostile_metadata_is_4xx_never_500(client: TestClient, metadata: str) -> None:
    response = client.post(
        "/v1/images", files=upload(JPEGS[0].read_bytes()), data={"metadata": metadata}, headers=AUTH
    )
    assert response.status_code == 422 and response.json()["error"]["code"] == "bad_json"
    client.post("/v1/banks", json={"name": "b"}, headers=AUTH)
    pdq = str(lookalike.hash_file(JPEGS[0], ["pdq"])["pdq"])
    line = f'{{"key": "k", "hashes": {{"pdq": "{pdq}"}}, "metadata": {metadata}}}\n'
    response = client.post(
        "/v1/banks/b/hashes", content=line, headers={**AUTH, "Content-Type": "application/x-ndjson"}
    )
    assert response.status_code == 422 and "line 1" in response.json()["error"]["message"]


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_images_of_any_size_can_be_added_with_a_thumbnail(client: TestClient, fmt: str) -> None:
    data = encoded(sixteen_bit(1200), fmt)
    response = client.post("/v1/images", files=upload(data), data={"id": f"sixteen-{fmt}"}, headers=AUTH)
    assert response.status_code == 201, response.text
    thumbnail = client.get(f"/v1/thumbnails/sixteen-{fmt}")
    assert thumbnail.status_code == 200 and Image.open(io.BytesIO(thumbnail.content)).size == (256, 256)


# ----- finding 9: ids and URLs --------------------------------------------------------------------
ODD_IDS = ["photos/cat.jpg/thumbnail", "100% cat?.jpg#1", "a b/c", "/abs/path.jpg", "café ☕"]


def test_every_stored_id_can_be_fetched_and_deleted_through_the_urls_the_service_gives(
    tmp_path: Path,
) -> None:
    index_url = f"sqlite:///{tmp_path / 'index.db'}"
    with open_index(index_url) as index:  # the command line may store any path, newlines included
        index.add([("line\nbreak.jpg", dict(lookalike.hash_file(JPEGS[1], ["phash"])))])
    with serving(create_app(config(tmp_path))) as (url, _), httpx.Client(base_url=url, headers=AUTH) as http:
        for number, image_id in enumerate(ODD_IDS):
            added = http.post(
                "/v1/images", files=upload(JPEGS[2 + number].read_bytes()), data={"id": image_id}
            )
            assert added.status_code == 201 and added.json()["id"] == image_id
        groups = http.get("/v1/duplicates", params={"algorithm": "phash", "max_distance": 64}).json()[
            "groups"
        ]
        members = {member["id"]: member for group in groups for member in group["members"]}
        assert set(members) == {*ODD_IDS, "line\nbreak.jpg"}
        for image_id in ODD_IDS:
            link = members[image_id]["thumbnail"]
            assert link.startswith("/v1/thumbnails/") and "?" not in link and "#" not in link
            preview = http.get(link)
            assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg", image_id
        for image_id in [*ODD_IDS, "line\nbreak.jpg"]:
            path = "/v1/images/" + quote(image_id, safe="")
            assert http.get(path).json()["id"] == image_id
            assert http.delete(path).json() == {"id": image_id, "deleted": True}
        assert http.get("/healthz").json()["entries"] == 0


def test_ids_with_control_characters_are_refused(client: TestClient) -> None:
    for image_id in ("line\nbreak", "carriage\rreturn", "escape\x1b[2J"):
        response = client.post(
            "/v1/images", files=upload(JPEGS[0].read_bytes()), data={"id": image_id}, headers=AUTH
        )
        assert response.status_code == 422 and response.json()["error"]["code"] == "bad_id"


def test_urls_never_copy_the_host_header_and_other_hosts_are_refused(client: TestClient) -> None:
    client.post("/v1/images", files=upload(JPEGS[0].read_bytes()), data={"id": "cat"}, headers=AUTH)
    found = client.post("/v1/search", files=upload(JPEGS[0].read_bytes())).json()["matches"][0]
    assert found["thumbnail"] == "/v1/thumbnails/cat"
    rebound = client.get("/v1/images/cat", headers={"Host": "attacker.example:8000"})
    assert rebound.status_code == 400 and rebound.json()["error"]["code"] == "bad_host"
    for host in ("localhost:8000", "127.0.0.1", "[::1]:8000", "LOCALHOST"):
        assert client.get("/v1/images/cat", headers={"Host": host}).status_code == 200, host


def test_allowed_hosts_default_to_loopback_names_only_when_bound_to_loopback() -> None:
    assert default_hosts("127.0.0.1") == ("localhost", "127.0.0.1", "::1")
    assert default_hosts("localhost") == ("localhost", "127.0.0.1", "::1")
    assert "::1" in default_hosts("::1")
    assert default_hosts("0.0.0.0") == ("*",)


# ----- finding 10: headers and slow clients -------------------------------------------------------
def test_every_response_carries_security_headers(client: TestClient) -> None:
    for method, path in (("GET", "/"), ("GET", "/docs"), ("GET", "/nope"), ("POST", "/v1/images")):
        headers = client.request(method, path).headers
        policy = headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, path
        assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"


def test_docs_load_swagger_ui_from_the_service_itself(client: TestClient) -> None:
    page = client.get("/docs").text
    assert "http://" not in page and "https://" not in page and "<script>" not in page
    for asset in (
        "/static/swagger/swagger-ui-bundle.js",
        "/static/swagger/swagger-ui.css",
        "/static/docs.js",
    ):
        assert asset in page and client.get(asset).status_code == 200


def test_a_body_trickled_byte_by_byte_is_cut_off_at_the_total_deadline(live: tuple[str, int]) -> None:
    _, port = live  # body deadline 2 s in total
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(
            b"POST /v1/hash HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 100000\r\n\r\n"
            b"--b\r\nContent-Disposition: form-data; name=file; filename=a\r\n\r\n"
        )
        started = time.time()
        reply = b""
        connection.settimeout(0.5)
        while time.time() - started < 8 and b"request_timeout" not in reply:
            try:
                connection.sendall(b"x")  # one byte every half second: no single gap is long
                reply += connection.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
    assert reply.startswith(b"HTTP/1.1 408") and 1.5 < time.time() - started < 5


def test_headers_that_never_finish_are_cut_off(
    live: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, port = live
    monkeypatch.setattr(GuardedH11Protocol, "header_timeout_seconds", 1.5)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        started = time.time()
        closed = False
        while time.time() - started < 8:
            try:
                connection.sendall(b"X-Slow: 1\r\n")  # a header line every half second, never the end
                time.sleep(0.5)
            except OSError:
                closed = True
                break
    assert closed and time.time() - started < 4


def test_malformed_requests_answer_in_the_json_error_shape(live: tuple[str, int]) -> None:
    _, port = live
    reply, _ = raw_exchange(port, b"GARBAGE\x01 / HTTP/1.1\r\n\r\n", wait=3)
    head, _, body = reply.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 400") and "application/json" in head
    assert json.loads(body) == {"error": {"code": "bad_request", "message": "malformed HTTP request"}}
