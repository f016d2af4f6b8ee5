"""Persona registry: which segments exist and how a user's traits map to one.

Loaded from TOML or YAML (`[[personas]]` with key/name/description, `[[rules]]` with persona and `when`, a table
of trait → value or list of accepted values). Rules are checked in file order; the first match wins.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from store.models import UNASSIGNED_PERSONA

UNASSIGNED = UNASSIGNED_PERSONA
DEFAULT_REGISTRY_FILE = Path(__file__).with_name("personas_default.toml")


class PersonaConfigError(ValueError):
    """The persona file is unreadable or inconsistent; the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class Persona:
    key: str
    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class PersonaRule:
    persona: str
    when: Mapping[str, tuple[Any, ...]]

    def matches(self, traits: Mapping[str, Any]) -> bool:
        return all(key in traits and traits[key] in accepted for key, accepted in self.when.items())


@dataclass(frozen=True, slots=True)
class PersonaRegistry:
    personas: tuple[Persona, ...]
    rules: tuple[PersonaRule, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.personas)

    def resolve(self, traits: Mapping[str, Any]) -> str:
        """The persona these traits place a user in; `unassigned` when nothing says."""
        return self.determine(traits) or UNASSIGNED

    def determine(self, traits: Mapping[str, Any]) -> str | None:
        """Like resolve, but None when neither the `persona` trait nor any rule decides."""
        explicit = traits.get("persona")
        if isinstance(explicit, str) and explicit.strip().lower() in self.keys:
            return explicit.strip().lower()
        for rule in self.rules:
            if rule.matches(traits):
                return rule.persona
        return None


def load_registry(path: Path | None = None) -> PersonaRegistry:
    """Read a registry file (TOML or YAML by extension); None loads the four defaults."""
    source = path or DEFAULT_REGISTRY_FILE
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise PersonaConfigError(f"personas file {source}: cannot be read ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text) if source.suffix in (".yaml", ".yml") else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise PersonaConfigError(f"personas file {source}: not valid {source.suffix[1:]} ({exc})") from exc
    return parse_registry(data or {}, source=str(source))


def parse_registry(data: Mapping[str, Any], *, source: str = "<data>") -> PersonaRegistry:
    raw_personas = data.get("personas")
    if not isinstance(raw_personas, list) or not raw_personas:
        raise PersonaConfigError(f"personas file {source}: 'personas' must be a non-empty list")
    personas: list[Persona] = []
    for index, item in enumerate(raw_personas):
        key = item.get("key") if isinstance(item, Mapping) else None
        if not isinstance(key, str) or not key.strip():
            raise PersonaConfigError(
                f"personas file {source}: personas[{index}].key must be a non-empty string"
            )
        if key == UNASSIGNED or key in (p.key for p in personas):
            raise PersonaConfigError(
                f"personas file {source}: personas[{index}].key {key!r} is reserved or repeated"
            )
        personas.append(
            Persona(key=key, name=str(item.get("name", key)), description=str(item.get("description", "")))
        )
    known = {p.key for p in personas}
    rules: list[PersonaRule] = []
    for index, item in enumerate(data.get("rules") or []):
        persona = item.get("persona") if isinstance(item, Mapping) else None
        when = item.get("when") if isinstance(item, Mapping) else None
        if persona not in known:
            raise PersonaConfigError(
                f"personas file {source}: rules[{index}].persona {persona!r} is not one of {sorted(known)}"
            )
        if not isinstance(when, Mapping) or not when:
            raise PersonaConfigError(f"personas file {source}: rules[{index}].when must be a non-empty table")
        accepted = {str(k): tuple(v) if isinstance(v, list) else (v,) for k, v in when.items()}
        rules.append(PersonaRule(persona=str(persona), when=accepted))
    return PersonaRegistry(personas=tuple(personas), rules=tuple(rules))
