"""Reverse search (an upload or hashes in, ranked matches out) and duplicate groups."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from lookalike.algorithms import parse_spec
from lookalike.errors import LookalikeError
from lookalike.hash import Hash
from lookalike.lookup import Found, Query, search_algorithms, search_queries
from lookalike.matcher import Matcher
from lookalike.server.errors import ApiError
from lookalike.server.routes_images import thumbnail_url
from lookalike.server.uploads import bool_field, int_field, read_form, read_json, read_upload, text_field

router = APIRouter(prefix="/v1", tags=["search"])

SEARCH_BODY = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "k": {"type": "integer"},
                        "max_distance": {"type": "integer"},
                        "preset": {"type": "string"},
                        "hashes": {"type": "string"},
                        "dihedral": {"type": "boolean"},
                    },
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "hashes": {"type": "object", "additionalProperties": {"type": "string"}},
                        "k": {"type": "integer"},
                        "max_distance": {"type": "integer"},
                        "preset": {"type": "string"},
                    },
                    "example": {
                        "hashes": {"pdq": "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"}
                    },
                }
            },
        }
    }
}


@router.post("/search", summary="Ranked matches for an upload or hex hashes", openapi_extra=SEARCH_BODY)
async def search(request: Request) -> dict[str, object]:
    state = request.app.state.service
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await read_form(request)
        fields: dict[str, Any] = {k: v for k, v in form.items() if k != "file"}
        upload = form.get("file")
        file = upload if not isinstance(upload, str) else None
        data = await read_upload(file, state.config.max_upload_bytes)
        # Presets are tuned with the upload's variants (rotations, flips, crops) in play.
        dihedral = bool_field(fields.get("dihedral"), "dihedral") or bool(fields.get("preset"))
        processed = await run_in_threadpool(lambda: state.hash_upload(data, None, dihedral=dihedral))
        query = Query("upload", {n: v for n, v in processed.result.items() if isinstance(v, Hash)})
    elif content_type.startswith("application/json"):
        fields = await read_json(request)
        if not isinstance(fields, dict):
            raise ApiError(422, "bad_json", "send a JSON object")
        query = Query("hashes", parse_hex_hashes(fields.get("hashes")))
        dihedral = False
    else:
        raise ApiError(
            415, "unsupported_media_type", "send multipart/form-data with 'file', or JSON with 'hashes'"
        )
    k = int_field(fields.get("k"), "k", 1, 1000) or 10
    max_distance = int_field(fields.get("max_distance"), "max_distance", 0, 4096)
    preset = text_field(fields.get("preset"), "preset", 200)
    names_text = (
        text_field(fields.get("hashes"), "hashes", 500) if isinstance(fields.get("hashes"), str) else None
    )
    if preset is not None and max_distance is not None:
        raise ApiError(422, "bad_field", "use one of max_distance and preset")
    if preset is not None:
        Matcher.parse(preset)  # a bad rule is the client's error, reported before searching

    def run() -> list[Found]:
        with state.locked_index() as index:
            stored = index.algorithm_bits()
            if not stored:
                return []
            names = search_algorithms(names_text, stored) if names_text else _names_for(query, stored)
            return search_queries(index, [query], names, k, max_distance, preset, dihedral)[0]

    try:
        # A hex query costs about a millisecond of index work: run it inline rather than pay for a
        # thread hop; an upload's decoding already happened in a thread above.
        found = run() if query.text == "hashes" else await run_in_threadpool(run)
    except LookalikeError as exc:
        raise ApiError(422, "bad_query", str(exc)) from None
    if query.error:
        raise ApiError(422, "bad_query", query.error)
    return {"matches": [match_json(request, item) for item in found]}


def _names_for(query: Query, stored: dict[str, int]) -> list[str]:
    names = search_algorithms(None, stored)
    usable = [name for name in names if name in query.hashes]
    return usable or [name for name in query.hashes if name in stored] or names


def parse_hex_hashes(value: object) -> dict[str, Hash]:
    if not isinstance(value, dict) or not value:
        raise ApiError(422, "bad_field", 'hashes must be an object like {"pdq": "<64 hex digits>"}')
    if len(value) > 16:
        raise ApiError(422, "bad_field", "at most 16 hashes per query")
    parsed = {}
    for name, text in value.items():
        if not isinstance(name, str) or not isinstance(text, str):
            raise ApiError(422, "bad_field", "hash names and values must be strings")
        try:
            spec = parse_spec(name)
        except LookalikeError as exc:
            raise ApiError(422, "bad_hash", str(exc)) from None
        parsed[spec.key] = Hash.from_hex(text, spec.nbits)
    return parsed


def match_json(request: Request, item: Found) -> dict[str, object]:
    agreed = []
    for name, distance in item.distances.items():
        try:
            if distance <= parse_spec(name).max_distance:
                agreed.append(name)
        except LookalikeError:
            continue  # a combined condition ("ahash + colorhash") is not an algorithm
    return {
        "id": item.key,
        "distances": dict(item.distances),
        "agreed": agreed,
        "thumbnail": thumbnail_url(request, item.key),
    }


@router.get("/duplicates", summary="Groups of near-duplicates in the index")
def duplicates(
    request: Request,
    preset: str | None = None,
    algorithm: str | None = None,
    max_distance: int | None = None,
    strict: bool = False,
    limit: int = 100,
) -> dict[str, object]:
    if (algorithm is None) != (max_distance is None):
        raise ApiError(422, "bad_field", "give algorithm and max_distance together, or a preset")
    if max_distance is not None and not 0 <= max_distance <= 256:
        raise ApiError(422, "bad_field", "max_distance must be within 0..256")
    rule = None if algorithm is not None else Matcher.parse(preset or "near-duplicate")
    with request.app.state.service.locked_index() as index:
        if rule is not None:
            groups = index.duplicates("", 0, strict=strict, matcher=rule)
        else:
            groups = index.duplicates(parse_spec(algorithm or "").key, max_distance or 0, strict=strict)
    return {
        "groups": [
            {
                "members": [
                    {
                        "id": entry.key,
                        "best": position == 0,
                        "width": entry.width,
                        "height": entry.height,
                        "bytes": entry.byte_size,
                        "thumbnail": thumbnail_url(request, entry.key),
                    }
                    for position, entry in enumerate(group.members)
                ]
            }
            for group in groups[: max(1, min(limit, 10_000))]
        ],
        "total_groups": len(groups),
    }
