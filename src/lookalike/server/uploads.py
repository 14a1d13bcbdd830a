"""Reading uploads and request fields: multipart `file`, JSON bodies, and their limits."""

from __future__ import annotations

import json
import math
import re
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
    """The request's JSON body (`{}` when empty), parsed within the bounds of `parse_json`."""
    body = await request.body()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "bad_json", "the body is not UTF-8 JSON") from None
    return parse_json(text or "{}", "the body")


# JSON from clients is bounded so that parsing and storing it stay cheap and never fail inside:
# nesting (Python's parser recurses), integer digits (int() refuses over 4300), values in all.
MAX_JSON_DEPTH = 32
MAX_JSON_INTEGER_DIGITS = 20  # any int64 / uint64
MAX_JSON_VALUES = 10_000
_JSON_NESTING = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def parse_json(text: str, what: str) -> Any:
    """`text` parsed as JSON, or a 400 (not JSON) / 422 (too deep, an integer too long, a
    non-finite number, too many values) naming `what`."""
    if _nesting_depth(text) > MAX_JSON_DEPTH:
        raise ApiError(422, "bad_json", f"{what} is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(
            text, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constant
        )
    except json.JSONDecodeError as exc:
        raise ApiError(400, "bad_json", f"{what} is not JSON: {exc}") from None
    except ValueError as exc:
        raise ApiError(422, "bad_json", f"{what}: {exc}") from None
    if _count_values(value) > MAX_JSON_VALUES:
        raise ApiError(422, "bad_json", f"{what} holds more than {MAX_JSON_VALUES} values")
    return value


def _nesting_depth(text: str) -> int:
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return 0  # cannot be deeper: skip the scan
    depth = deepest = 0
    for token in _JSON_NESTING.findall(text):
        if token in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in ("]", "}"):
            depth -= 1
    return deepest


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_INTEGER_DIGITS:
        raise ValueError(f"an integer has more than {MAX_JSON_INTEGER_DIGITS} digits")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]} is out of range")
    return value


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not a JSON number")


def _count_values(value: Any) -> int:
    count, pending = 0, [value]
    while pending and count <= MAX_JSON_VALUES:
        item = pending.pop()
        count += 1
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return count
