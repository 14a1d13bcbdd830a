"""Reverse search (an upload or hashes in, ranked matches out) and duplicate groups."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi import Query as QueryString
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from lookalike.algorithms import parse_spec
from lookalike.dedupe.describe import describe_groups
from lookalike.errors import LookalikeError
from lookalike.hash import Hash
from lookalike.local.features import LocalWanted
from lookalike.lookup import (
    Found,
    Query,
    display_name,
    nearest_not_matching,
    search_algorithms,
    search_queries,
    with_query_algorithms,
)
from lookalike.matcher import DEFAULT_PRESET, Matcher
from lookalike.server.errors import ApiError
from lookalike.server.parameters import (
    StrictOptions,
    form_options,
    json_options,
    refuse_query_string,
    request_body,
)
from lookalike.server.routes_images import thumbnail_url
from lookalike.server.uploads import read_form, read_json, read_upload

router = APIRouter(prefix="/v1", tags=["search"])


class SearchOptions(StrictOptions):
    """What a search returns: the `k` nearest images, every image within `max_distance`, or the
    images a matcher `preset` (or rule) accepts."""

    k: int = Field(default=10, ge=1, le=1000, description="How many nearest images.")
    max_distance: int | None = Field(
        default=None, ge=0, le=4096, description="Every image within this distance instead of the k nearest."
    )
    preset: str | None = Field(
        default=None,
        max_length=200,
        description="A matcher preset (exact-duplicate, near-duplicate, similar) or rule instead.",
    )


class UploadSearch(SearchOptions):
    """Form fields beside the uploaded `file`."""

    hashes: str | None = Field(
        default=None,
        max_length=500,
        description="Algorithms to compare, comma-separated; the first ranks (default: the index's).",
    )
    dihedral: bool = Field(
        default=False, description="Search rotated and flipped copies too (always, with a preset)."
    )


class HexSearch(SearchOptions):
    """A JSON body: hex hashes to search for, and the options."""

    hashes: dict[str, str] = Field(
        max_length=16,
        description="Algorithm -> hex hash.",
        examples=[{"pdq": "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"}],
    )


@router.post(
    "/search",
    summary="Ranked matches for an upload or hex hashes",
    openapi_extra=request_body(UploadSearch, HexSearch),
    dependencies=[Depends(refuse_query_string)],
)
async def search(request: Request) -> dict[str, object]:
    """With a `preset`, `matches` are the images it accepts and `nearest` up to `k` closest ones
    it does not (what the page shows collapsed); otherwise `matches` are the `k` nearest images,
    or every one within `max_distance`, and `nearest` is empty."""
    state = request.app.state.service
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        file, form = form_options(await read_form(request), UploadSearch, "POST /v1/search")
        check_search_options(form)
        data = await read_upload(file, state.config.max_upload_bytes)
        # Presets are tuned with the upload's variants (rotations, flips, crops) in play.
        dihedral = form.dihedral or form.preset is not None
        algorithms = state.query_algorithms(form.hashes)
        # rules verify partial copies by their local features (a search's, with the finer set)
        with_local: LocalWanted = "query" if form.preset is not None else False
        processed = await run_in_threadpool(
            lambda: state.hash_upload(data, algorithms, dihedral=dihedral, local=with_local)
        )
        result = processed.result
        query = Query(
            "upload",
            {n: v for n, v in result.items() if isinstance(v, Hash)},
            local=(result.local, result.local_mirrored) if result.local is not None else None,
            size=(result.width, result.height),
            regions=result.regions,
        )
        options: SearchOptions = form
    elif content_type.startswith("application/json"):
        hex_search = json_options(await read_json(request), HexSearch, "POST /v1/search")
        check_search_options(hex_search)
        query = Query("hashes", parse_hex_hashes(hex_search.hashes))
        options, dihedral = hex_search, False
    else:
        raise ApiError(
            415, "unsupported_media_type", "send multipart/form-data with 'file', or JSON with 'hashes'"
        )
    names_text = options.hashes if isinstance(options, UploadSearch) else None

    def run() -> tuple[list[Found], list[Found]]:
        with state.locked_index() as index:
            stored = index.algorithm_bits()
            if not stored:
                return [], []
            names = with_query_algorithms(search_algorithms(names_text, stored), [query], stored)
            found = search_queries(
                index, [query], names, options.k, options.max_distance, options.preset, dihedral
            )
            if options.preset is None:
                return found[0], []
            return found[0], nearest_not_matching(index, [query], options.preset, options.k, found)[0]

    try:
        # A hex query costs about a millisecond of index work: run it inline rather than pay for a
        # thread hop; an upload's decoding already happened in a thread above.
        found, nearest = run() if query.text == "hashes" else await run_in_threadpool(run)
    except LookalikeError as exc:
        raise ApiError(422, "bad_query", str(exc)) from None
    if query.error:
        raise ApiError(422, "bad_query", query.error)
    return {
        "matches": [match_json(request, item) for item in found],
        "nearest": [match_json(request, item) for item in nearest],
    }


def check_search_options(options: SearchOptions) -> None:
    """Refuse contradictory options and a bad rule before any work (the client's error)."""
    if options.preset is not None and options.max_distance is not None:
        raise ApiError(422, "bad_field", "use one of max_distance and preset")
    if options.preset is not None:
        Matcher.parse(options.preset)


def parse_hex_hashes(value: dict[str, str]) -> dict[str, Hash]:
    if not value:
        raise ApiError(422, "bad_field", 'hashes must be an object like {"pdq": "<64 hex digits>"}')
    parsed = {}
    for name, text in value.items():
        try:
            spec = parse_spec(name)
        except LookalikeError as exc:
            raise ApiError(422, "bad_hash", str(exc)) from None
        parsed[spec.key] = Hash.from_hex(text, spec.nbits)
    return parsed


def match_json(request: Request, item: Found) -> dict[str, object]:
    return {
        "id": item.key,
        "name": item.name,
        "distances": dict(item.distances),
        "agreed": list(item.agreed),
        "thumbnail": thumbnail_url(request, item.key),
        **({"where": dict(item.where)} if item.where else {}),
        **({"verified": item.verified} if item.verified is not None else {}),
    }


class DuplicatesOptions(StrictOptions):
    """Query parameters of a duplicate search: a preset (or rule), or one hash and a radius."""

    preset: str | None = Field(
        default=None, max_length=200, description="A matcher preset or rule (default near-duplicate)."
    )
    algorithm: str | None = Field(default=None, max_length=32, description="One hash to compare instead.")
    max_distance: int | None = Field(default=None, ge=0, le=4096, description="With algorithm: the radius.")
    strict: bool = Field(default=False, description="Every member matches its group's centre.")
    limit: int = Field(default=100, ge=1, le=10_000, description="How many groups to return.")


@router.get("/duplicates", summary="Groups of near-duplicates in the index")
def duplicates(request: Request, options: Annotated[DuplicatesOptions, QueryString()]) -> dict[str, object]:
    algorithm, max_distance, strict = options.algorithm, options.max_distance, options.strict
    if (algorithm is None) != (max_distance is None):
        raise ApiError(422, "bad_field", "give algorithm and max_distance together, or a preset")
    if algorithm is not None and options.preset is not None:
        raise ApiError(422, "bad_field", "use one of preset and algorithm + max_distance")
    rule = None if algorithm is not None else Matcher.parse(options.preset or DEFAULT_PRESET)
    service = request.app.state.service
    with service.locked_index() as index:
        if rule is not None:
            groups = index.duplicates(matcher=rule, strict=strict)
        else:
            groups = index.duplicates(parse_spec(algorithm or "").key, max_distance or 0, strict=strict)
    # Tiers and relations as `lookalike dupes` gives them. The service reads files indexed from
    # disk only when told it may (--thumbnails-from-paths); else the index alone says which
    # members are identical files and the rest are unverified.
    groups = describe_groups(groups, read_files=service.config.thumbnails_from_paths)
    return {
        "groups": [
            {
                "tier": group.tier,
                "members": [
                    {
                        "id": entry.key,
                        "name": display_name(entry),
                        "best": position == 0,
                        "width": entry.width,
                        "height": entry.height,
                        "bytes": entry.byte_size,
                        "thumbnail": thumbnail_url(request, entry.key),
                        "relation": (
                            relation.as_json()
                            if position and (relation := group.relations.get(entry.key)) is not None
                            else None
                        ),
                    }
                    for position, entry in enumerate(group.members)
                ],
                "similar": [
                    {
                        "id": entry.key,
                        "name": display_name(entry),
                        "thumbnail": thumbnail_url(request, entry.key),
                    }
                    for entry in group.similar
                ],
            }
            for group in groups[: options.limit]
        ],
        "total_groups": len(groups),
    }
