"""HTTP options: each endpoint takes its options in one documented place (a GET's query string, a
POST's body), honours every one it documents and refuses every other with 422."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from conftest import COMMITTED_PHOTOS
from lookalike.server import ServerConfig, create_app

KEY = "parameters-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
JPEGS = [p for p in COMMITTED_PHOTOS if p.suffix == ".jpg"]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("parameters")
    app = create_app(ServerConfig(index_url=f"sqlite:///{folder / 'index.db'}", api_keys=(KEY,)))
    with TestClient(app, base_url="http://localhost") as test_client:
        for path in JPEGS[:4]:
            added = test_client.post(
                "/v1/images",
                files={"file": (path.name, path.read_bytes())},
                data={"id": path.name},
                headers=AUTH,
            )
            assert added.status_code == 201, added.text
        copy = io.BytesIO()
        Image.open(JPEGS[1]).convert("RGB").resize((300, 200)).save(copy, "JPEG", quality=70)
        added = test_client.post(
            "/v1/images", files={"file": copy.getvalue()}, data={"id": "copy"}, headers=AUTH
        )
        assert added.status_code == 201, added.text
        assert test_client.post("/v1/banks", json={"name": "known"}, headers=AUTH).status_code == 201
        yield test_client


def image() -> dict[str, tuple[str, bytes]]:
    return {"file": ("photo.jpg", JPEGS[2].read_bytes())}


def operations(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, OpenAPI operation) of every /v1 endpoint."""
    paths = client.get("/openapi.json", headers=AUTH).json()["paths"]
    return [
        (method.upper(), path, operation)
        for path, methods in paths.items()
        if path.startswith("/v1/")
        for method, operation in methods.items()
    ]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "known", path)


def error_code(response: Any) -> str | None:
    body = response.json()
    return body["error"]["code"] if isinstance(body, dict) and "error" in body else None


def test_every_endpoint_refuses_a_query_parameter_it_does_not_document(client: TestClient) -> None:
    found = operations(client)
    assert len(found) >= 12
    for method, path, _ in found:
        response = client.request(method, concrete(path) + "?nosuch=1", headers=AUTH)
        assert response.status_code == 422, (method, path, response.text)
        assert error_code(response) == "unknown_parameter" and "nosuch" in response.text, (method, path)


def test_search_options_sent_as_query_parameters_are_refused_not_ignored(client: TestClient) -> None:
    """The issue's case: `preset` in the query string of POST /v1/search was silently dropped."""
    response = client.post("/v1/search?preset=near-duplicate", files=image())
    assert response.status_code == 422 and error_code(response) == "unknown_parameter"
    assert "'preset'" in response.json()["error"]["message"] and "body" in response.json()["error"]["message"]


def test_every_documented_body_field_is_accepted_and_any_other_refused(client: TestClient) -> None:
    """The OpenAPI schema is the contract: each field it documents for a body reaches the endpoint
    (the answer may judge its value, never call it unknown), and an undocumented one is refused."""
    checked = 0
    for method, path, operation in operations(client):
        content = operation.get("requestBody", {}).get("content", {})
        for media, spec in content.items():
            properties = spec["schema"].get("properties", {})
            for name, schema in [*properties.items(), ("nosuch", {"type": "string"})]:
                if media == "multipart/form-data":
                    if name == "file":
                        continue
                    response = client.request(
                        method, concrete(path), files=image(), data={name: sample(schema)}, headers=AUTH
                    )
                elif media == "application/json":
                    response = client.request(
                        method, concrete(path), json={name: sample(schema)}, headers=AUTH
                    )
                else:
                    continue
                if name == "nosuch":
                    assert response.status_code == 422 and error_code(response) == "unknown_parameter", (
                        path,
                        media,
                    )
                else:
                    assert error_code(response) != "unknown_parameter", (path, media, name, response.text)
                checked += 1
    assert checked >= 20


def sample(schema: dict[str, Any]) -> object:
    kinds = {option.get("type") for option in schema.get("anyOf", [schema])}
    if "integer" in kinds:
        return "1"
    if "boolean" in kinds:
        return "true"
    if "object" in kinds:
        return {}
    return "x"


def test_documented_options_are_in_one_place_each(client: TestClient) -> None:
    documented = {(method, path): operation for method, path, operation in operations(client)}
    duplicates = documented[("GET", "/v1/duplicates")]
    assert {p["name"] for p in duplicates["parameters"] if p["in"] == "query"} == {
        "preset", "algorithm", "max_distance", "strict", "limit",
    }  # fmt: skip
    search = documented[("POST", "/v1/search")]["requestBody"]["content"]
    assert set(search["multipart/form-data"]["schema"]["properties"]) == {
        "file", "k", "max_distance", "preset", "hashes", "dihedral",
    }  # fmt: skip
    assert set(search["application/json"]["schema"]["properties"]) == {
        "hashes",
        "k",
        "max_distance",
        "preset",
    }
    for (method, path), operation in documented.items():
        if method != "GET":  # a POST's or DELETE's options are in its body, never its query string
            assert not [p for p in operation.get("parameters", []) if p["in"] == "query"], (method, path)


def test_options_are_honoured_where_documented(client: TestClient) -> None:
    two = client.post("/v1/search", files=image(), data={"k": "2"}).json()["matches"]
    assert len(two) == 2
    pdq = client.post("/v1/hash", files=image(), data={"hashes": "pdq"}).json()["hashes"]
    assert set(pdq) == {"pdq"}
    one = client.post("/v1/search", json={"hashes": pdq, "k": 1}).json()["matches"]
    assert [m["id"] for m in one] == [JPEGS[2].name]
    groups = client.get("/v1/duplicates", params={"preset": "near-duplicate", "limit": 1}).json()
    assert groups["total_groups"] == 1 and [m["id"] for m in groups["groups"][0]["members"]] == [
        JPEGS[1].name,
        "copy",
    ]
    by_phash = client.get("/v1/duplicates", params={"algorithm": "phash", "max_distance": 4}).json()
    assert [[m["id"] for m in group["members"]] for group in by_phash["groups"]] == [[JPEGS[1].name, "copy"]]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"k": "0"}, "k"),
        ({"k": "ten"}, "k"),
        ({"dihedral": "maybe"}, "dihedral"),
        ({"max_distance": "-1"}, "max_distance"),
    ],
)
def test_bad_values_are_422_naming_the_field(
    client: TestClient, fields: dict[str, str], problem: str
) -> None:
    response = client.post("/v1/search", files=image(), data=fields)
    assert response.status_code == 422 and error_code(response) == "bad_field"
    assert response.json()["error"]["message"].startswith(problem)


def test_bad_query_values_and_repeated_fields_are_422(client: TestClient) -> None:
    response = client.get("/v1/duplicates", params={"limit": "0"})
    assert response.status_code == 422 and error_code(response) == "bad_field"
    twice = client.post(
        "/v1/search",
        files=[("file", ("a.jpg", JPEGS[0].read_bytes())), ("k", (None, "1")), ("k", (None, "2"))],
    )
    assert twice.status_code == 422 and error_code(twice) == "bad_field"


def test_options_keep_the_key_rules(tmp_path: Path) -> None:
    """A write with a refused parameter and no key is refused for the key first (before the body)."""
    app = create_app(ServerConfig(index_url=f"sqlite:///{tmp_path / 'index.db'}", api_keys=(KEY,)))
    with TestClient(app, base_url="http://localhost") as fresh:
        response = fresh.post("/v1/images?nosuch=1", files=image(), data={"nosuch": "1"})
        assert response.status_code == 401


@pytest.mark.parametrize("path", ["/v1/hash", "/v1/images", "/v1/search", "/v1/check"])
def test_every_upload_form_holds_one_file_and_few_fields(client: TestClient, path: str) -> None:
    photo = JPEGS[0].read_bytes()
    two_files = client.post(
        path, files=[("file", ("a.jpg", photo)), ("file", ("b.jpg", photo))], headers=AUTH
    )
    assert two_files.status_code in (400, 422) and error_code(two_files) in (
        "bad_multipart",
        "unknown_parameter",
    )
    other_file = client.post(
        path, files=[("file", ("a.jpg", photo)), ("extra", ("b.jpg", photo))], headers=AUTH
    )
    assert other_file.status_code in (400, 422)
    many = client.post(path, files=image(), data={f"field{n}": "x" for n in range(40)}, headers=AUTH)
    assert many.status_code in (400, 422) and error_code(many) in ("bad_multipart", "unknown_parameter")
