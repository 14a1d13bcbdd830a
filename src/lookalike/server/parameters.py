"""Each endpoint's options, declared once and read from the one place the endpoint takes them.

A GET takes its options in the query string (a pydantic model with `Query()`); a POST takes them in
its body: form fields beside a multipart upload, or the keys of a JSON object. The same models
document the options in the OpenAPI schema. A parameter the endpoint does not declare, wherever it
was sent (a POST's query string included), is refused with 422 `unknown_parameter`: nothing a
client sends is silently ignored. Values are checked by the models (types, ranges, lengths);
a wrong one is a 422 `bad_field` naming it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NoReturn, TypeVar

from fastapi import Request
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.datastructures import FormData, UploadFile

from lookalike.server.errors import ApiError, validation_problems

Options = TypeVar("Options", bound=BaseModel)
FILE_FIELD = "file"


class StrictOptions(BaseModel):
    """Options of one endpoint: unknown names are refused, never dropped."""

    model_config = ConfigDict(extra="forbid")


def refuse_query_string(request: Request) -> None:
    """A dependency for the routes that take no query parameters (a POST's options are in its body)."""
    names = list(dict.fromkeys(request.query_params.keys()))
    if names:
        place = "in the body" if request.method == "POST" else "nowhere"
        raise ApiError(
            422,
            "unknown_parameter",
            f"{request.method} {request.url.path} takes no query parameter ({_listed(names)}); "
            f"its options go {place} (see /docs)",
        )


def form_options(form: FormData, model: type[Options], endpoint: str) -> tuple[UploadFile | None, Options]:
    """The upload (field `file`) and the options of a multipart form; an empty field counts as
    not sent (HTML forms send every field)."""
    upload = form.get(FILE_FIELD)
    values: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in form.multi_items():
        if name == FILE_FIELD:
            continue
        if not isinstance(value, str):
            raise ApiError(
                422, "unknown_parameter", f"{endpoint} takes one file, in the field '{FILE_FIELD}'"
            )
        if name in seen:
            raise ApiError(422, "bad_field", f"{name[:64]!r} is given twice")
        seen.add(name)
        if value != "":
            values[name] = value
    unknown = [name for name in values if name not in model.model_fields]
    if unknown:
        _refuse(unknown, model, endpoint, extra=(FILE_FIELD,))
    return (upload if isinstance(upload, UploadFile) else None), validated(model, values)


def json_options(value: Any, model: type[Options], endpoint: str) -> Options:
    """The options of a JSON body (an object)."""
    if not isinstance(value, dict):
        raise ApiError(422, "bad_json", "send a JSON object")
    unknown = [name for name in value if name not in model.model_fields]
    if unknown:
        _refuse(unknown, model, endpoint)
    return validated(model, value)


def validated(model: type[Options], values: Mapping[str, Any]) -> Options:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ApiError(422, "bad_field", validation_problems(exc.errors())) from None


def _refuse(unknown: list[str], model: type[BaseModel], endpoint: str, extra: Iterable[str] = ()) -> NoReturn:
    known = [*extra, *model.model_fields]
    raise ApiError(
        422,
        "unknown_parameter",
        f"{endpoint} has no parameter {_listed(unknown)} (it takes: {', '.join(known)})",
    )


def _listed(names: list[str]) -> str:
    return ", ".join(repr(name[:64]) for name in names[:5])


def request_body(
    form: type[BaseModel] | None = None, json: type[BaseModel] | None = None, *, file: str = "The image"
) -> dict[str, Any]:
    """The `openapi_extra` documenting a body: a multipart upload with `form`'s fields, and/or
    a JSON object per `json`'s model."""
    content: dict[str, Any] = {}
    if form is not None:
        schema = form.model_json_schema()
        properties = {FILE_FIELD: {"type": "string", "format": "binary", "description": file}}
        content["multipart/form-data"] = {
            "schema": {
                "type": "object",
                "required": [FILE_FIELD],
                "properties": {**properties, **schema.get("properties", {})},
                "additionalProperties": False,
            }
        }
    if json is not None:
        content["application/json"] = {"schema": json.model_json_schema()}
    return {"requestBody": {"required": True, "content": content}}
