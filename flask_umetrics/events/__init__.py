"""Event tracking: ingestion, identity, buffering."""

from .identity import identify, set_person_properties
from .ingest import IngestResult, ingest_events
from .tracking import flush, track

__all__ = ["IngestResult", "flush", "identify", "ingest_events", "set_person_properties", "track"]
