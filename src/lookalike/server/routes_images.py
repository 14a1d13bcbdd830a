"""Hashing uploads, and storing or removing images in the index."""

from __future__ import annotations

import os
import unicodedata
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor

from lookalike.discover import key_path
from lookalike.errors import ImageError
from lookalike.exchange import entry_record
from lookalike.hash import Hash
from lookalike.index.base import FROM_API, FROM_FILE, IndexItem
from lookalike.quality import flagged_names
from lookalike.server.errors import ApiError
from lookalike.server.parameters import StrictOptions, form_options, refuse_query_string, request_body
from lookalike.server.state import hash_json, qualities
from lookalike.server.thumbnails import make_thumbnail
from lookalike.server.uploads import parse_json, read_form, read_upload


class AnyIdConvertor(Convertor[str]):
    """A path parameter holding any id, newlines included (Starlette's `path` stops at them)."""

    regex = "(?s:.+)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return quote(value, safe="")


register_url_convertor("any_id", AnyIdConvertor())
router = APIRouter(prefix="/v1", tags=["images"])

MAX_ID_LENGTH = 512
MAX_METADATA_BYTES = 16 * 1024
MAX_NAME_LENGTH = 255


class HashOptions(StrictOptions):
    """Form fields beside the uploaded `file`."""

    hashes: str | None = Field(
        default=None, max_length=1000, description="Comma-separated algorithms (default: all served)."
    )


@router.post(
    "/hash",
    summary="Hash an uploaded image",
    openapi_extra=request_body(HashOptions),
    dependencies=[Depends(refuse_query_string)],
)
async def hash_upload(request: Request) -> dict[str, object]:
    state = request.app.state.service
    file, options = form_options(await read_form(request), HashOptions, "POST /v1/hash")
    data = await read_upload(file, state.config.max_upload_bytes)
    names = [n.strip() for n in (options.hashes or "").split(",") if n.strip()] or None
    upload = await run_in_threadpool(lambda: state.hash_upload(data, names, dihedral=False))
    result = upload.result
    values = {name: value for name, value in result.items()}
    return {
        "sha256": upload.sha256,
        "bytes": upload.byte_size,
        "width": result.width,
        "height": result.height,
        "format": result.format,
        "hashes": hash_json(values),
        "quality": qualities(values),
        **({"pdq_quality": values["pdq"].quality} if isinstance(values.get("pdq"), Hash) else {}),
        "flags": sorted(flagged_names(values)),
    }


class AddOptions(StrictOptions):
    """Form fields beside the uploaded `file`."""

    id: str | None = Field(default=None, description="Your id for the image (default: its sha256).")
    metadata: str | None = Field(
        default=None,
        description="A JSON object stored with the image; its `name` (shown by the web page) defaults "
        "to the uploaded file's name.",
    )


@router.post(
    "/images",
    summary="Store an image's hashes under an id (key needed)",
    openapi_extra=request_body(AddOptions),
    dependencies=[Depends(refuse_query_string)],
)
async def add_image(request: Request) -> JSONResponse:
    state = request.app.state.service
    file, options = form_options(await read_form(request), AddOptions, "POST /v1/images")
    data = await read_upload(file, state.config.max_upload_bytes)
    image_id = check_id(options.id)
    extra = with_display_name(parse_metadata(options.metadata), file.filename if file else None)
    algorithms = state.add_algorithms()
    upload = await run_in_threadpool(
        lambda: state.hash_upload(data, algorithms, dihedral=True, thumbnail=True, local=True)
    )
    key = image_id or upload.sha256
    item = IndexItem(
        key=key,
        hashes={name: value for name, value in upload.result.items() if isinstance(value, Hash)},
        sha256=upload.sha256,
        byte_size=upload.byte_size,
        width=upload.result.width,
        height=upload.result.height,
        metadata=extra,
        origin=FROM_API,  # an id from a client names no file: `dupes --action` leaves it alone
        local=upload.result.local,
        local_mirrored=upload.result.local_mirrored,
        regions=upload.result.regions,
    )
    with state.locked_index() as index:
        report = index.add([item])
    if report.same_bytes:
        existing = report.same_bytes[0][1]
        return JSONResponse({"id": key, "status": "duplicate", "existing_id": existing}, status_code=200)
    if upload.thumbnail is not None:
        state.thumbnails.put(key, upload.thumbnail)
    status = "added" if report.added else "updated" if report.updated else "unchanged"
    return JSONResponse(
        {
            "id": key,
            "name": (extra or {}).get("name"),
            "status": status,
            "sha256": upload.sha256,
            "hashes": hash_json(dict(item.hashes)),
        },
        status_code=201 if report.added else 200,
    )


@router.delete(
    "/images/{image_id:any_id}",
    summary="Remove an image (key needed)",
    dependencies=[Depends(refuse_query_string)],
)
def delete_image(request: Request, image_id: str) -> dict[str, object]:
    state = request.app.state.service
    with state.locked_index() as index:
        removed = index.remove([image_id])
    if not removed:
        raise ApiError(404, "not_found", "no image with that id")
    state.thumbnails.delete(image_id)
    return {"id": image_id, "deleted": True}


@router.get(
    "/thumbnails/{image_id:any_id}",
    summary="A small JPEG preview",
    response_class=Response,
    dependencies=[Depends(refuse_query_string)],
)
def thumbnail(request: Request, image_id: str) -> Response:
    state = request.app.state.service
    jpeg = state.thumbnails.get(image_id)
    if jpeg is None and state.config.thumbnails_from_paths:
        jpeg = _thumbnail_of_indexed_file(request, image_id)
    if jpeg is None:
        raise ApiError(404, "not_found", "no thumbnail for that id")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})


@router.get(
    "/images/{image_id:any_id}",
    summary="An image's stored hashes and facts",
    dependencies=[Depends(refuse_query_string)],
)
def get_image(request: Request, image_id: str) -> dict[str, object]:
    with request.app.state.service.locked_index() as index:
        entry = index.get(image_id)
    if entry is None:
        raise ApiError(404, "not_found", "no image with that id")
    record = entry_record(entry)
    record["id"] = record.pop("key")
    return record


def thumbnail_url(request: Request, image_id: str) -> str:
    """The thumbnail's URL, relative to this server (never built from the client's Host header)."""
    return f"{request.scope.get('root_path', '')}/v1/thumbnails/{quote(image_id, safe='')}"


def _thumbnail_of_indexed_file(request: Request, image_id: str) -> bytes | None:
    """Only for entries `index add` made from a file (opt-in): an id a client chose, such as a
    path to a private image, is never opened."""
    with request.app.state.service.locked_index() as index:
        entry = index.get(image_id)
    if entry is None or entry.origin != FROM_FILE:
        return None
    path = key_path(entry.key)
    if not os.path.isfile(path):
        return None
    from lookalike.decode import decode

    try:
        decoded = decode(path, draft_min_side=512, limits=request.app.state.service.limits)
    except ImageError:
        return None
    return make_thumbnail(decoded.image)


def check_id(value: str | None) -> str | None:
    """An id a client may store: 1-512 characters, no control characters (they cannot be sent back
    in a URL, or printed safely) and no `.` or `..` segment (clients rewrite URLs holding one)."""
    if value is None:
        return None
    segments = value.split("/")
    if (
        not value.strip()
        or len(value) > MAX_ID_LENGTH
        or any(unicodedata.category(character) == "Cc" for character in value)
        or any(segment in (".", "..") for segment in segments)
    ):
        raise ApiError(
            422,
            "bad_id",
            f"ids are 1-{MAX_ID_LENGTH} characters, without control characters or ./.. segments",
        )
    return value


def with_display_name(metadata: dict[str, object] | None, filename: str | None) -> dict[str, object] | None:
    """Metadata with the upload's file name as its `name` (what people know the image by; the id
    stays the client's, or the sha256), unless the client's metadata names it already."""
    name = upload_name(filename)
    if name is None or (metadata is not None and "name" in metadata):
        return metadata
    return {"name": name, **(metadata or {})}


def upload_name(filename: str | None) -> str | None:
    """A file name as clients send it, reduced to something safe to show: no folders, no control
    characters, at most `MAX_NAME_LENGTH` characters; None if nothing is left."""
    if not filename:
        return None
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    shown = "".join(c for c in base if unicodedata.category(c) != "Cc").strip()[:MAX_NAME_LENGTH]
    return shown or None


def parse_metadata(text: str | None) -> dict[str, object] | None:
    if not text:
        return None
    if len(text.encode()) > MAX_METADATA_BYTES:
        raise ApiError(413, "metadata_too_large", f"metadata is limited to {MAX_METADATA_BYTES} bytes")
    value = parse_json(text, "metadata")
    if not isinstance(value, dict):
        raise ApiError(422, "bad_metadata", "metadata must be a JSON object")
    return value
