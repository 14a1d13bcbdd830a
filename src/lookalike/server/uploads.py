"""Reading uploads and request fields: multipart `file`, JSON bodies, and their limits."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from starlette.datastructures import FormData, UploadFile

from lookalike.server.errors import ApiError

MAX_FIELDS = 32


async def read_upload(upload: UploadFile | None, limit: int) -> bytes:
    """The uploaded file's bytes, refusing more than `limit` (checked while reading)."""
    if upload is None:
        raise ApiError(422, "missing_file", "send the image as multipart form field 'file'")
    chunks: list[bytes] = []
    size = 0
    while chunk := await upload.read(1 << 16):
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", f"the upload exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    if not size:
        raise ApiError(422, "empty_file", "the uploaded file is empty")
    return b"".join(chunks)


async def read_form(request: Request) -> FormData:
    try:
        return await request.form(max_files=1, max_fields=MAX_FIELDS)
    except ApiError:
        raise
    except Exception as exc:  # malformed multipart bodies
        if type(exc).__name__ in ("BodyTooLarge", "BodyTimeout"):
            raise
        raise ApiError(400, "bad_multipart", f"cannot read the form: {exc}") from None


async def read_json(request: Request) -> Any:
    body = await request.body()
    try:
        return json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "bad_json", f"the body is not JSON: {exc}") from None


def text_field(value: object, name: str, max_length: int = 1000) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ApiError(422, "bad_field", f"{name} must be text")
    if len(value) > max_length or "\x00" in value:
        raise ApiError(422, "bad_field", f"{name} is too long or contains NUL")
    return value


def int_field(value: object, name: str, low: int, high: int) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(str(value))
    except ValueError:
        raise ApiError(422, "bad_field", f"{name} must be an integer") from None
    if not low <= number <= high:
        raise ApiError(422, "bad_field", f"{name} must be within {low}..{high}")
    return number


def bool_field(value: object, name: str) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ApiError(422, "bad_field", f"{name} must be true or false")
