"""Shared handles for the public Python API: one Database (engine + pool) per URL per process."""

from __future__ import annotations

import threading

from feedbackloop.settings import Settings, get_settings
from store.database import Database
from tools.personas import PersonaRegistry, load_registry

_lock = threading.Lock()
_databases: dict[str, Database] = {}


def database_for(database_url: str | None = None, settings: Settings | None = None) -> Database:
    """The process-wide Database for a URL (default: the configured one), schema upgraded on first use."""
    url = database_url or (settings or get_settings()).database_url
    with _lock:
        if url not in _databases:
            _databases[url] = Database(url)
        return _databases[url]


def personas_for(settings: Settings | None = None) -> PersonaRegistry:
    return load_registry((settings or get_settings()).personas_file)
