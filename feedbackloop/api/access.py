"""Who may call which route: API keys with scopes, declared on every route.

Every route declares exactly one of:
- `require_scope(Scope.X)`: an API key whose scope covers X (`admin` covers everything; `read` and `ingest` only
  themselves), sent as `Authorization: Bearer <key>`; ingestion also takes Segment's Basic `<writeKey>:` and a
  `writeKey` / `api_key` in the body (those routes call `authorize` with the body's key once they have read it);
- `public_route()`: no key (health);
- `signed_route(kind)`: the handler verifies a signature itself (Slack, GitHub, deploy hook); keys are not checked.

No key, an unknown key or a revoked key answers 401 (with `WWW-Authenticate: Bearer`); a valid key of too small a
scope answers 403 naming the scope needed. Keys listed in FEEDBACKLOOP_WRITE_KEYS are ingest keys. With
FEEDBACKLOOP_AUTH=off every key-scoped route is open (local demo use; logged loudly at startup); signed routes keep
requiring their signatures. A key is never logged or echoed: only its public id.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.middleware.cors import CORSMiddleware
from fastapi.params import Depends as DependsParam
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.exc import SQLAlchemyError

from feedbackloop.settings import Settings
from store.database import Database
from store.repositories import api_keys
from tools.events.segment import PayloadError

log = logging.getLogger("feedbackloop.access")

ACCESS_ATTRIBUTE = "feedbackloop_access"
TOUCH_INTERVAL = timedelta(minutes=1)  # last_used_at is written at most this often per key
_IDENTITY_STATE = "feedbackloop_identity"
_SIGNED_STATE = "feedbackloop_signed_route"


class Scope(StrEnum):
    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"

    def covers(self, needed: Scope) -> bool:
        """`admin` may do everything; `read` and `ingest` only what they name (read does not ingest)."""
        return self is Scope.ADMIN or self is needed


@dataclass(frozen=True, slots=True)
class ApiIdentity:
    """Who a request authenticated as: a stored key, a configured write key, or nobody with auth off."""

    key_id: str
    scope: Scope
    source: Literal["api_key", "write_key", "auth_off"]


@dataclass(frozen=True, slots=True)
class AccessRule:
    """What a route declares; the dependency callable carries it as `feedbackloop_access`."""

    kind: Literal["scope", "public", "signed"]
    scope: Scope | None = None
    signed_by: str | None = None
    body_key: bool = False

    def describe(self) -> str:
        if self.kind == "scope":
            return f"{self.scope} key"
        return "public" if self.kind == "public" else f"signed ({self.signed_by})"


class AccessError(PayloadError):
    """401 (no usable key) or 403 (key of too small a scope), rendered as `{"code", "message"}`."""

    def __init__(self, code: str, message: str, *, status: int, challenge: str) -> None:
        super().__init__(code, message, status=status)
        self.challenge = challenge


# ---- route declarations -------------------------------------------------------------------------------------


def require_scope(scope: Scope, *, body_key: bool = False) -> DependsParam:
    """The route needs a key whose scope covers `scope`.

    `body_key=True` (ingestion): a request without an Authorization header may carry its key in the body, so the
    dependency leaves it to the handler, which must call `authorize(request, scope, body_key)` after reading it.
    """

    def check_scope(request: Request) -> ApiIdentity | None:
        if body_key and not request.headers.get("authorization") and _settings(request).auth == "on":
            return None  # the handler authorizes with the body's key
        return authorize(request, scope)

    return _marked(check_scope, AccessRule("scope", scope=scope, body_key=body_key))


def public_route() -> DependsParam:
    """The route takes no key (health and readiness)."""

    def public(request: Request) -> None:
        return None

    return _marked(public, AccessRule("public"))


def signed_route(kind: str) -> DependsParam:
    """The handler verifies a `kind` signature itself (never skipped, even with auth off); keys are not checked."""
    if not kind:
        raise ValueError("signed_route: kind must name the signature (e.g. 'slack', 'github', 'deploy')")

    def signed(request: Request) -> None:
        # Marks the request, so `authorize` (a signed handler's key alternative) never opens it with auth off.
        setattr(request.state, _SIGNED_STATE, kind)

    return _marked(signed, AccessRule("signed", signed_by=kind))


def _marked(call: Callable[[Request], Any], rule: AccessRule) -> DependsParam:
    setattr(call, ACCESS_ATTRIBUTE, rule)
    return Depends(call)


@dataclass(frozen=True, slots=True)
class DeclaredRoute:
    """One route of an app as served (router prefix and router-level dependencies applied) with its access."""

    path: str
    methods: frozenset[str]
    name: str
    rules: tuple[AccessRule, ...]
    is_api_route: bool


def route_access(route: Any) -> list[AccessRule]:
    """Every access declaration of a served route (its own, its router's, nested dependencies'); a sound route
    has exactly one. `route` is an APIRoute or a fastapi.routing.RouteContext."""

    def walk(dependant: Dependant) -> Iterator[AccessRule]:
        for dependency in dependant.dependencies:
            rule = getattr(dependency.call, ACCESS_ATTRIBUTE, None)
            if isinstance(rule, AccessRule):
                yield rule
            yield from walk(dependency)

    dependant = getattr(route, "dependant", None)
    return list(walk(dependant)) if isinstance(dependant, Dependant) else []


def declared_routes(app: FastAPI) -> list[DeclaredRoute]:
    """Every route the app serves, included routers flattened, with what each declares."""
    routes = []
    for context in iter_route_contexts(app.routes):
        is_api_route = isinstance(context.original_route, APIRoute)
        routes.append(
            DeclaredRoute(
                path=str(context.path_format or context.path or ""),
                methods=frozenset(context.methods or ()),
                name=str(context.name or ""),
                rules=tuple(route_access(context)) if is_api_route else (),
                is_api_route=is_api_route,
            )
        )
    return routes


# ---- the check ------------------------------------------------------------------------------------------------


def authorize(request: Request, scope: Scope, body_key: str | None = None) -> ApiIdentity:
    """The identity of a request allowed `scope`, or AccessError 401/403. A key in the Authorization header wins
    over `body_key` (Segment's `writeKey`, PostHog's `api_key`). With auth off every request passes, except on a
    signed route, where this is the alternative to the signature and needs a real key. Blocking (one indexed
    read): call it from a thread (sync dependency, run_in_threadpool) in async code."""
    settings = _settings(request)
    if settings.auth == "off" and getattr(request.state, _SIGNED_STATE, None) is None:
        return ApiIdentity("auth-off", Scope.ADMIN, "auth_off")  # signed routes take a real key even so
    earlier = getattr(request.state, _IDENTITY_STATE, None)
    if isinstance(earlier, ApiIdentity) and earlier.scope.covers(scope):
        return earlier
    header = request.headers.get("authorization", "")
    presented = _presented_key(header, body_key)
    if presented is None:
        raise _missing_key(request, scope)
    if header.strip().lower().startswith("basic") and _cross_site_write(request, settings):
        raise AccessError(
            "forbidden",
            "a browser request from another site cannot use the Basic credentials a browser keeps; send "
            "'Authorization: Bearer <key>', or list the site in FEEDBACKLOOP_CORS_ORIGINS",
            status=403,
            challenge='Bearer realm="feedbackloop"',
        )
    identity = _identify(request, presented)
    if not identity.scope.covers(scope):
        log.info("refused %s %s: key %s has scope %s, needs %s",
                 request.method, request.url.path, identity.key_id, identity.scope, scope)  # fmt: skip
        raise AccessError(
            "forbidden",
            f"this route needs an API key of scope '{scope}'{'' if scope is Scope.ADMIN else ' (or admin)'}; "
            f"key {identity.key_id} has scope '{identity.scope}'",
            status=403,
            challenge=f'Bearer error="insufficient_scope", scope="{scope}"',
        )
    setattr(request.state, _IDENTITY_STATE, identity)
    return identity


def _cross_site_write(request: Request, settings: Settings) -> bool:
    """A state-changing request another site's page made a browser send. Browsers cache the Basic credentials a
    user typed for the dashboard and attach them to any request to this host, so such a request must not count as
    that user's (CSRF). A server-side client (Segment's) sends neither Origin nor Sec-Fetch-Site; a browser SDK's
    site is listed in FEEDBACKLOOP_CORS_ORIGINS."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return False
    origin = request.headers.get("origin")
    if origin is not None and origin in settings.cors_origins:
        return False
    if origin is not None and origin != _own_origin(request):
        return True
    return request.headers.get("sec-fetch-site", "") in ("cross-site", "same-site")


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


BROWSER_CHALLENGE = 'Basic realm="feedbackloop: enter an API key as the user name", charset="UTF-8"'


def _presented_key(header: str, body_key: str | None) -> str | None:
    """The key of `Authorization: Bearer <key>` or Basic `<key>:` (Segment), else the body's; '' = unreadable."""
    if not header.strip():
        return body_key or None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        user, _, password = decoded.partition(":")
        return user or password  # Segment sends `<writeKey>:`; some clients put the key as the password
    return ""


def _identify(request: Request, presented: str) -> ApiIdentity:
    if not presented:
        raise _invalid(request, "the Authorization header is not 'Bearer <key>' or Basic '<writeKey>:'")
    settings = _settings(request)
    for index, configured in enumerate(settings.write_keys, start=1):
        if hmac.compare_digest(presented.encode(), configured.get_secret_value().encode()):
            return ApiIdentity(f"write-key-{index}", Scope.INGEST, "write_key")
    database = _database(request)
    with database.read() as connection:
        record = api_keys.find_by_key(connection, presented)
    if record is None:
        log.info("refused %s %s: unknown key (id %s)",
                 request.method, request.url.path, api_keys.key_id_of(presented) or "not ours")  # fmt: skip
        raise _invalid(request, "the API key is not valid")
    if record.revoked:
        log.info("refused %s %s: key %s is revoked", request.method, request.url.path, record.id)
        raise _invalid(request, f"the API key {record.id} was revoked")
    _usage(request).touch(database, record.id, record.last_used_at)
    return ApiIdentity(record.id, Scope(record.scope), "api_key")


def _missing_key(request: Request, scope: Scope) -> AccessError:
    message = f"an API key of scope '{scope}' is required: send 'Authorization: Bearer <key>'"
    if scope is Scope.INGEST:
        message += " (or Segment's Basic '<writeKey>:', or 'writeKey' / 'api_key' in the body)"
    if not _settings(request).write_keys and _no_keys_exist(_database(request)):
        message += f"; no API key exists yet: create one with `feedbackloop keys create --scope {scope}`"
    if _from_browser(request):
        message += "; in a browser, enter the key as the user name when asked"
        return AccessError("unauthorized", message, status=401, challenge=BROWSER_CHALLENGE)
    return AccessError("unauthorized", message, status=401, challenge='Bearer realm="feedbackloop"')


def _invalid(request: Request, message: str) -> AccessError:
    challenge = (
        BROWSER_CHALLENGE if _from_browser(request) else 'Bearer realm="feedbackloop", error="invalid_token"'
    )
    return AccessError("unauthorized", message, status=401, challenge=challenge)


def _from_browser(request: Request) -> bool:
    """A browser opening a page (the dashboard, an HTML report): it cannot send a Bearer header, but it asks for
    Basic credentials when challenged, and Basic `<key>:` is accepted everywhere."""
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


def _no_keys_exist(database: Database) -> bool:
    with database.read() as connection:
        return api_keys.count_active(connection) == 0


class KeyUsage:
    """Writes last_used_at at most once per TOUCH_INTERVAL per key and process, so ingestion stays read-only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._touched: dict[str, float] = {}

    def touch(self, database: Database, key_id: str, last_used_at: datetime | None) -> None:
        now = datetime.now(UTC)
        if last_used_at is not None and now - last_used_at < TOUCH_INTERVAL:
            return  # another request (or instance) recorded it lately
        monotonic = time.monotonic()
        with self._lock:
            if monotonic - self._touched.get(key_id, -1e9) < TOUCH_INTERVAL.total_seconds():
                return
            self._touched[key_id] = monotonic
        try:
            with database.write() as connection:
                api_keys.touch(connection, key_id, now, min_interval=TOUCH_INTERVAL)
        except SQLAlchemyError as error:  # a busy database must not refuse a valid key
            log.warning("could not record the use of key %s: %s", key_id, type(error).__name__)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.feedbackloop.settings
    return settings


def _database(request: Request) -> Database:
    database: Database = request.app.state.feedbackloop.database
    return database


def _usage(request: Request) -> KeyUsage:
    usage = getattr(request.app.state, "feedbackloop_key_usage", None)
    if not isinstance(usage, KeyUsage):
        usage = KeyUsage()
        request.app.state.feedbackloop_key_usage = usage
    return usage


# ---- the app ----------------------------------------------------------------------------------------------------


def install_access(app: FastAPI, settings: Settings) -> None:
    """The 401/403 rendering, CORS for browser SDKs, and the startup warning when auth is off."""
    app.state.feedbackloop_key_usage = KeyUsage()

    @app.exception_handler(AccessError)
    async def _access_error(_request: Request, error: AccessError) -> JSONResponse:
        return JSONResponse(
            {"code": error.code, "message": error.message},
            status_code=error.status,
            headers={"WWW-Authenticate": error.challenge},
        )

    if settings.cors_origins:
        # Keys travel in the Authorization header, not cookies: no credentials mode, so a wildcard stays safe.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=False,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Content-Encoding"],
            max_age=600,
        )
    _document_access(app)
    if settings.auth == "on" and not settings.write_keys and _no_keys_exist(app.state.feedbackloop.database):
        log.warning(
            "no API key exists yet: every route but /healthz answers 401. Create one with `feedbackloop keys "
            "create --scope ingest|read|admin` (shown once), or set FEEDBACKLOOP_AUTH=off for a local demo."
        )
    if settings.auth == "off":
        log.warning(
            "FEEDBACKLOOP_AUTH=off: EVERY API ROUTE IS OPEN WITHOUT A KEY (ingest, read and admin). Local demo use "
            "only; signed routes still check their signatures. Create keys with `feedbackloop keys create --scope "
            "ingest|read|admin` and unset FEEDBACKLOOP_AUTH."
        )


def _document_access(app: FastAPI) -> None:
    """OpenAPI names each operation's access: `security` (Bearer; Basic too for ingestion) and
    `x-feedbackloop-access` (the scope, `public`, or the signature the handler checks)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes["ApiKey"] = {"type": "http", "scheme": "bearer", "description": "`feedbackloop keys create`"}
        schemes["WriteKey"] = {"type": "http", "scheme": "basic", "description": "Segment's `<writeKey>:`"}
        for route in declared_routes(app):
            if len(route.rules) != 1:
                continue
            rule = route.rules[0]
            for method in route.methods:
                operation = schema.get("paths", {}).get(route.path, {}).get(method.lower())
                if operation is None:
                    continue
                operation["x-feedbackloop-access"] = rule.describe()
                if rule.kind == "scope":
                    basic: list[dict[str, list[str]]] = (
                        [{"WriteKey": []}] if rule.scope is Scope.INGEST else []
                    )
                    operation["security"] = [{"ApiKey": []}, *basic]
                else:
                    operation["security"] = []
                _document_refusals(operation.setdefault("responses", {}), rule)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_REFUSAL_BODY = {
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    }
}


def _document_refusals(responses: dict[str, Any], rule: AccessRule) -> None:
    """The refusals every operation of `rule` can answer, where the route does not describe them itself: a
    client generated from the OpenAPI (and the schema fuzzer) must find each status it can receive."""
    refusals: dict[str, str] = {}
    if rule.kind == "scope":
        refusals["401"] = "no API key, or an unknown, revoked or unreadable one (WWW-Authenticate says which)"
        refusals["403"] = f"a valid API key whose scope does not cover '{rule.scope}'"
    elif rule.kind == "signed":
        refusals["401"] = f"the {rule.signed_by} signature is missing, stale or does not verify"
        refusals["503"] = f"the {rule.signed_by} signing secret is not configured"
    for status, description in refusals.items():
        documented = responses.setdefault(status, {"description": description, "content": _REFUSAL_BODY})
        if rule.kind == "scope" and status == "401":
            challenge = {
                "description": "Bearer (Basic for a browser opening a page)",
                "required": True,
                "schema": {"type": "string", "pattern": "^(Bearer|Basic) "},
            }
            documented.setdefault("headers", {})["WWW-Authenticate"] = challenge
