"""What the survey and escalation routers share: reading JSON bodies into a domain's input error, 422 for bad
query and path parameters, and mapping the domain's errors to HTTP once (input 422, state conflict 409,
unknown 404), with the offending field named in every answer."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from feedbackloop.api.body import read_limited_body
from feedbackloop.api.experiment_bodies import field_path
from feedbackloop.api.state import AppState
from tools.events.normalize import FieldError
from tools.events.segment import check_json_values, decode_json

Body = TypeVar("Body", bound=BaseModel)
InputError = Callable[[str, str], Exception]  # (field, message) → the domain's input error


def storable(payload: Any, input_error: InputError) -> Any:
    """Refuse what a database cannot store (NUL characters, lone surrogates, |x| > 1e15, deep nesting) before
    the service sees it: PostgreSQL rejects NUL in text, and a refusal must name the field, not be a 500."""
    try:
        check_json_values(payload, "body")
    except FieldError as error:
        raise input_error(error.field.removeprefix("body."), error.message) from None
    return payload


async def read_json(request: Request, input_error: InputError, *, empty: Any = None) -> Any:
    """The JSON body (limited to `max_batch_bytes`), or `empty` when there is none and `empty` is given."""
    state: AppState = request.app.state.feedbackloop
    raw = await read_limited_body(request, state.settings.max_batch_bytes)
    if empty is not None and not raw.strip():
        return empty
    return storable(decode_json(raw), input_error)


async def read_model(
    request: Request, model: type[Body], input_error: InputError, *, empty_means_defaults: bool = False
) -> Body:
    """The body validated by `model`; the first bad field becomes the domain's input error (HTTP 422)."""
    payload = await read_json(request, input_error, empty={} if empty_means_defaults else None)
    try:
        return model.model_validate(payload, strict=True)
    except ValidationError as error:
        first = error.errors()[0]
        raise input_error(field_path(first["loc"]), first["msg"]) from None


def parameter_route(input_error: InputError) -> type[APIRoute]:
    """A route class whose invalid query or path parameters are the domain's input error (a 422 naming the
    parameter, like its bodies) instead of the app-wide 400."""

    class DomainRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def route(request: Request) -> Response:
                try:
                    return await handler(request)
                except RequestValidationError as error:
                    first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
                    location = tuple(first["loc"])[1:]  # drop "query" / "path"
                    raise input_error(field_path(location), str(first["msg"])) from None

            return route

    return DomainRoute


def install_domain_errors(
    app: FastAPI,
    *,
    domain: str,
    input_error: type[Exception],
    state_error: type[Exception],
    not_found: type[Exception],
) -> None:
    """input_error → 422 `invalid_{domain}_request`, state_error (a subclass) → 409 `{domain}_state_conflict`,
    not_found → 404 `{kind}_not_found`. The errors carry `field` (input) and `kind` (not found)."""

    def answer(code: str, error: Exception, status: int) -> JSONResponse:
        field = getattr(error, "field", None)
        return JSONResponse({"code": code, "field": field, "message": str(error)}, status_code=status)

    async def _not_found(_request: Request, error: Exception) -> JSONResponse:
        kind = getattr(error, "kind", domain)
        return JSONResponse({"code": f"{kind}_not_found", "message": str(error)}, status_code=404)

    async def _invalid(_request: Request, error: Exception) -> JSONResponse:
        if isinstance(error, state_error):
            return answer(f"{domain}_state_conflict", error, 409)
        return answer(f"invalid_{domain}_request", error, 422)

    app.add_exception_handler(not_found, _not_found)
    app.add_exception_handler(input_error, _invalid)
