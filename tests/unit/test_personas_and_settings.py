"""Persona registry, settings masking and the public User type."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from feedbackloop.settings import Settings, mask_url_password
from tools.personas import UNASSIGNED, PersonaConfigError, load_registry, parse_registry
from tools.users import User, as_user


def test_default_registry_has_the_four_personas() -> None:
    registry = load_registry()
    assert registry.keys == ("solo_podcaster", "podcast_network", "agency", "brand_sponsor")


def test_persona_resolution_explicit_then_rules_then_unassigned() -> None:
    registry = load_registry()
    assert registry.resolve({"persona": "Agency"}) == "agency"
    assert registry.resolve({"persona": "pirate", "account_type": "network"}) == "podcast_network"
    assert registry.resolve({"account_type": "unknown"}) == UNASSIGNED
    assert registry.determine({}) is None


def test_registry_from_yaml_with_list_conditions(tmp_path: Path) -> None:
    path = tmp_path / "personas.yaml"
    path.write_text(
        "personas:\n  - key: smb\n  - key: enterprise\n"
        "rules:\n  - persona: enterprise\n    when: {seats: [100, 500]}\n",
        encoding="utf-8",
    )
    registry = load_registry(path)
    assert registry.resolve({"seats": 500}) == "enterprise"
    assert registry.resolve({"seats": 3}) == UNASSIGNED


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "'personas'"),
        ({"personas": [{"name": "no key"}]}, "personas[0].key"),
        ({"personas": [{"key": "a"}, {"key": "a"}]}, "personas[1].key"),
        ({"personas": [{"key": "unassigned"}]}, "personas[0].key"),
        ({"personas": [{"key": "a"}], "rules": [{"persona": "b", "when": {"x": 1}}]}, "rules[0].persona"),
        ({"personas": [{"key": "a"}], "rules": [{"persona": "a"}]}, "rules[0].when"),
    ],
)
def test_bad_registries_name_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(PersonaConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_registry(data)


def test_unreadable_registry_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PersonaConfigError, match="cannot be read"):
        load_registry(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("personas = [", encoding="utf-8")
    with pytest.raises(PersonaConfigError, match="not valid toml"):
        load_registry(broken)


def test_settings_mask_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDBACKLOOP_DATABASE_URL", "postgresql+psycopg://app:hunter2@db:5432/fl")
    monkeypatch.setenv("FEEDBACKLOOP_WRITE_KEYS", "k1, k2")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    settings = Settings()
    shown = settings.masked()
    assert "hunter2" not in str(shown) and "sk-secret" not in str(shown) and "k1" not in str(shown)
    assert shown["database_url"] == "postgresql+psycopg://app:****@db:5432/fl"
    assert shown["llm_api_key"] == "****"
    assert [key.get_secret_value() for key in settings.write_keys] == ["k1", "k2"]


def test_invalid_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDBACKLOOP_GROSS_MARGIN", "1.5")
    with pytest.raises(ValueError, match="gross_margin"):
        Settings()


def test_mask_url_password_leaves_urls_without_password() -> None:
    assert mask_url_password("sqlite:///./x.db") == "sqlite:///./x.db"
    assert mask_url_password("postgresql://postgres@127.0.0.1/test") == "postgresql://postgres@127.0.0.1/test"


def test_user_accepts_the_seed_shape_and_bare_ids() -> None:
    user = User(user_id="u1", persona_segment="agency", traits={"plan": "pro"})
    assert as_user(user) is user
    assert as_user("u2") == User(user_id="u2")
    with pytest.raises(ValueError, match="user_id"):
        User(user_id=" ")
    with pytest.raises(TypeError):
        as_user(42)  # type: ignore[arg-type]


def test_multi_worker_socket_is_bound_as_tcp_so_workers_disable_nagle() -> None:
    from feedbackloop.serving import TcpNoDelayConfig

    config = TcpNoDelayConfig(
        "feedbackloop.api.app:create_app", factory=True, host="127.0.0.1", port=0, workers=2
    )
    sock = config.bind_socket()
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.getsockname()[0] == "127.0.0.1"
    finally:
        sock.close()
