"""What the app holds for its lifetime: settings, the database, the ingestor."""

from __future__ import annotations

from dataclasses import dataclass

from feedbackloop.settings import Settings
from store.database import Database
from tools.events.ingest import EventIngestor


@dataclass
class AppState:
    settings: Settings
    database: Database
    ingestor: EventIngestor
