"""Banks of known hashes, and checking uploads against them."""

from __future__ import annotations

import io

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from lookalike.algorithms import parse_spec
from lookalike.errors import LookalikeError
from lookalike.exchange import item_from_record, parse_hash_list
from lookalike.hash import Hash
from lookalike.index.base import IndexItem
from lookalike.server.banks import Bank, BankCheck
from lookalike.server.errors import ApiError
from lookalike.server.parameters import (
    StrictOptions,
    form_options,
    json_options,
    refuse_query_string,
    request_body,
)
from lookalike.server.state import hash_json
from lookalike.server.uploads import parse_json, read_form, read_json, read_upload

router = APIRouter(prefix="/v1", tags=["banks"], dependencies=[Depends(refuse_query_string)])


class BankRequest(StrictOptions):
    """A bank to create; thresholds default to the algorithm's (PDQ: distance 31, quality 50)."""

    name: str = Field(min_length=1, max_length=64, examples=["known-bad"])
    algorithm: str = Field(default="pdq", max_length=32)
    max_distance: int | None = Field(default=None, ge=0, le=4096)
    min_quality: int | None = Field(default=-1, ge=-1, le=100, description="-1: the algorithm's default")
    dihedral: bool = True
    description: str = Field(default="", max_length=500)


def bank_json(request: Request, bank: Bank) -> dict[str, object]:
    return {**bank.as_json(), "hashes": request.app.state.service.banks.size(bank.name)}


@router.post(
    "/banks",
    summary="Create a bank (key needed)",
    status_code=201,
    openapi_extra=request_body(json=BankRequest),
)
async def create_bank(request: Request) -> dict[str, object]:
    # Parsed within bounds, not by FastAPI's unbounded parser.
    body = json_options(await read_json(request), BankRequest, "POST /v1/banks")
    banks = request.app.state.service.banks
    try:
        bank = banks.create(
            body.name, body.algorithm, body.max_distance, body.min_quality, body.dihedral, body.description
        )
    except LookalikeError as exc:
        raise ApiError(422, "bad_bank", str(exc)) from None
    return bank_json(request, bank)


@router.get("/banks", summary="List banks")
def list_banks(request: Request) -> dict[str, object]:
    return {"banks": [bank_json(request, bank) for bank in request.app.state.service.banks.all()]}


@router.get("/banks/{name}", summary="One bank")
def get_bank(request: Request, name: str) -> dict[str, object]:
    return bank_json(request, request.app.state.service.banks.get(name))


@router.delete("/banks/{name}", summary="Delete a bank and its hashes (key needed)")
def delete_bank(request: Request, name: str) -> dict[str, object]:
    request.app.state.service.banks.delete(name)
    return {"name": name, "deleted": True}


@router.post(
    "/banks/{name}/hashes",
    summary="Import hashes: PDQ-style hex lines (`hex [label]`) or lookalike JSON lines (key needed)",
    openapi_extra={
        "requestBody": {
            "content": {
                "text/plain": {
                    "schema": {"type": "string"},
                    "example": "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22 case-17\n",
                },
                "application/x-ndjson": {"schema": {"type": "string"}},
            }
        }
    },
)
async def import_hashes(request: Request, name: str) -> dict[str, object]:
    state = request.app.state.service
    bank = state.banks.get(name)
    body = await request.body()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(422, "bad_encoding", "hash lists must be UTF-8 text") from None
    content_type = request.headers.get("content-type", "")
    try:
        items = _items(text, bank, json_lines="json" in content_type or text.lstrip().startswith("{"))
    except LookalikeError as exc:
        raise ApiError(422, "bad_hash_list", str(exc)) from None
    report = await run_in_threadpool(lambda: state.banks.add(name, items))
    return {"bank": name, "added": report.added, "updated": report.updated, "unchanged": report.unchanged}


def _items(text: str, bank: Bank, json_lines: bool) -> list[IndexItem]:
    if not json_lines:
        return list(
            parse_hash_list(
                io.StringIO(text), algorithm=bank.algorithm, key_prefix=bank.name, source=bank.name
            )
        )
    nbits = {bank.algorithm: parse_spec(bank.algorithm).nbits}
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        record = parse_json(line, f"line {number}")
        if not isinstance(record, dict):
            raise LookalikeError(f"line {number}: not a JSON object")
        try:
            item = item_from_record(record, nbits)
        except (LookalikeError, ValueError, TypeError, AttributeError) as exc:
            raise LookalikeError(f"line {number}: {exc}") from None
        if bank.algorithm in item.hashes:
            items.append(
                IndexItem(item.key, {bank.algorithm: item.hashes[bank.algorithm]}, metadata=item.metadata)
            )
    return items


class CheckOptions(StrictOptions):
    """An upload is checked against every bank: the form holds the `file` only."""


@router.post("/check", summary="Which banks an upload matches", openapi_extra=request_body(CheckOptions))
async def check(request: Request) -> JSONResponse:
    state = request.app.state.service
    file, _ = form_options(await read_form(request), CheckOptions, "POST /v1/check")
    data = await read_upload(file, state.config.max_upload_bytes)
    banks = state.banks.all()
    names = sorted({bank.algorithm for bank in banks}) or ["pdq"]
    upload = await run_in_threadpool(lambda: state.hash_upload(data, names, dihedral=True))
    hashes = {name: value for name, value in upload.result.items() if isinstance(value, Hash)}
    results = await run_in_threadpool(lambda: state.banks.check(hashes, banks))
    return JSONResponse(
        {
            "matched": any(result.matches for result in results),
            "banks": [check_json(result) for result in results],
            "hashes": hash_json(dict(hashes)),
            "quality": {name: value.quality for name, value in hashes.items() if value.quality is not None},
            "sha256": upload.sha256,
        }
    )


def check_json(result: BankCheck) -> dict[str, object]:
    return {
        "bank": result.bank.name,
        "matched": bool(result.matches),
        "rule": result.bank.rule,
        "matches": [
            {"id": m.key, "distance": m.distance, "variant": m.variant} for m in result.matches[:100]
        ],
        **({"skipped": result.skipped} if result.skipped else {}),
    }
