"""Table-driven over every route create_app() serves (routers other work adds included): each declares exactly
one access, and each answers accordingly — no key 401, a key of a smaller scope 403, the right scope neither;
public routes open; signed routes refuse an unsigned request (401), or answer 503 naming their unset setting."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from feedbackloop.api.access import AccessRule, DeclaredRoute, Scope, declared_routes
from store.database import Database
from tests.access.support import Keys, bearer, keyed_client, make_keys

# The routes FastAPI adds itself (OpenAPI and its viewers): public, and not APIRoutes that could declare anything.
BUILT_IN_PATHS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
PATH_VALUES = {
    "key": "guided-onboarding", "survey_id": "support_incident", "display_id": "d1", "user_id": "ana",
    "rule_id": "error_spike", "escalation_id": "esc_x", "silence_id": "sil_x", "retro_id": "retro-000000000000",
    "category": "error_rate",
}  # fmt: skip
SMALLER_SCOPES = {
    Scope.INGEST: [Scope.READ],
    Scope.READ: [Scope.INGEST],
    Scope.ADMIN: [Scope.INGEST, Scope.READ],
}
SIGNED_SECRETS = {
    "slack_signing_secret": "slack-signing-secret-for-tests",
    "github_webhook_secret": "github-secret-for-tests",
    "deploy_hook_secret": "whsec_c2VjcmV0LWZvci10ZXN0cy0xMjM0NTY3ODkw",
}


@pytest.fixture
def keyed(database: Database) -> Iterator[tuple[TestClient, Keys]]:
    keys = make_keys(database)
    with keyed_client(database) as client:
        yield client, keys


def _url(route: DeclaredRoute) -> str:
    return re.sub(r"\{([^}:]+)(:[^}]*)?\}", lambda match: PATH_VALUES.get(match.group(1), "x1"), route.path)


def _requests(route: DeclaredRoute) -> Iterator[tuple[str, str]]:
    for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
        yield method, _url(route)


def _declared(client: TestClient) -> list[DeclaredRoute]:
    app = client.app
    assert hasattr(app, "routes")
    return declared_routes(app)  # type: ignore[arg-type]


def _rule(route: DeclaredRoute) -> AccessRule:
    assert len(route.rules) == 1, f"{sorted(route.methods)} {route.path} declares {len(route.rules)} accesses"
    return route.rules[0]


def test_every_route_declares_exactly_one_access(keyed: tuple[TestClient, Keys]) -> None:
    client, _keys = keyed
    routes = _declared(client)
    assert len(routes) > 40  # the table covers the whole app, not a sample
    undeclared = [f"{sorted(r.methods)} {r.path}: {[x.describe() for x in r.rules]}"
                  for r in routes if r.is_api_route and len(r.rules) != 1]  # fmt: skip
    assert undeclared == [], "each route needs one of require_scope / public_route / signed_route"
    foreign = [r.path for r in routes if not r.is_api_route and r.path not in BUILT_IN_PATHS]
    assert foreign == [], "routes that cannot declare an access (not APIRoutes)"
    documented = client.get("/openapi.json").json()["paths"]
    for route in routes:
        if route.is_api_route and route.path in documented:
            for method in route.methods - {"HEAD", "OPTIONS"}:
                operation = documented[route.path][method.lower()]
                assert operation["x-feedbackloop-access"] == _rule(route).describe(), (method, route.path)


def test_key_routes_answer_401_without_a_key_403_below_their_scope_and_pass_with_it(
    keyed: tuple[TestClient, Keys],
) -> None:
    client, keys = keyed
    checked = 0
    for route in _declared(client):
        if not route.is_api_route or _rule(route).kind != "scope":
            continue
        scope = _rule(route).scope
        assert scope is not None
        for method, url in _requests(route):
            where = f"{method} {url}"
            missing = client.request(method, url)
            assert missing.status_code == 401, (where, missing.text)
            assert missing.json()["code"] == "unauthorized" and missing.headers[
                "www-authenticate"
            ].startswith("Bearer"), where
            revoked = client.request(method, url, headers=bearer(keys.revoked))
            assert revoked.status_code == 401 and "revoked" in revoked.json()["message"], where
            for smaller in SMALLER_SCOPES[scope]:
                refused = client.request(method, url, headers=bearer(keys.of(smaller)))
                assert refused.status_code == 403, (where, smaller, refused.text)
                assert refused.json()["code"] == "forbidden" and f"'{scope}'" in refused.json()["message"], (
                    where
                )
            for allowed in {scope, Scope.ADMIN}:
                passed = client.request(method, url, headers=bearer(keys.of(allowed)))
                assert passed.status_code not in (401, 403), (where, allowed, passed.text)
            checked += 1
    assert checked > 40


def test_public_routes_are_open(keyed: tuple[TestClient, Keys]) -> None:
    client, _keys = keyed
    public = [route for route in _declared(client) if route.is_api_route and _rule(route).kind == "public"]
    assert any(route.path == "/healthz" for route in public)
    for route in public:
        for method, url in _requests(route):
            assert client.request(method, url).status_code not in (401, 403), (method, url)
    for path in BUILT_IN_PATHS - {"/docs/oauth2-redirect"}:
        assert client.get(path).status_code == 200, path


@pytest.mark.parametrize("auth", ["on", "off"])
def test_signed_routes_refuse_unsigned_requests(database: Database, auth: str) -> None:
    """Unsigned is 401 once the secret is set (auth off changes nothing); without it, 503 naming the setting."""
    with keyed_client(database, auth=auth) as client:
        signed = [
            route for route in _declared(client) if route.is_api_route and _rule(route).kind == "signed"
        ]
        for route in signed:
            for method, url in _requests(route):
                answer = client.request(method, url)
                if answer.status_code == 503:
                    assert re.search(r"(FEEDBACKLOOP_)?[A-Z_a-z]*_(SECRET|secret)", answer.text), (
                        method,
                        url,
                    )
                else:
                    assert answer.status_code == 401, (method, url, answer.text)
    with keyed_client(database, auth=auth, **SIGNED_SECRETS) as client:
        for route in signed:
            for method, url in _requests(route):
                answer = client.request(
                    method, url, headers={"Content-Type": "application/json"}, content=b"{}"
                )
                assert answer.status_code == 401, (method, url, answer.text)
