"""Batch ingestion with partial acceptance: valid events are stored, bad ones named by index."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..db.types import utcnow
from ..errors import ValidationError
from ..state import current_state
from .filtered import record_filtered
from .user_agent import add_user_agent_properties
from .validation import Limits, normalize_event
from .writer import write_events

#: Crawlers and monitoring agents; matched case-insensitively against the user agent.
BOT_PATTERN = re.compile(
    r"bot\b|crawl|spider|slurp|bingpreview|facebookexternalhit|headlesschrome|lighthouse|"
    r"pingdom|uptimerobot|python-requests|curl/|wget/|go-http-client|httpclient|scrapy|"
    r"phantomjs|semrush|ahrefs|mj12|yandex|baiduspider|duckduckbot|applebot|petalbot",
    re.IGNORECASE,
)


def is_bot(user_agent: str | None) -> bool:
    return bool(user_agent) and BOT_PATTERN.search(user_agent or "") is not None


@dataclass
class IngestResult:
    """``accepted`` stored now, ``duplicates`` already stored, ``rejected`` by index, ``filtered``
    dropped on purpose (bots, Do-Not-Track)."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    filtered: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "filtered": self.filtered,
        }


def ingest_events(
    raw_events: Sequence[Any],
    *,
    scope_id: str,
    user_agent: str | None = None,
    do_not_track: bool = False,
    any_age: bool = False,
) -> IngestResult:
    """Validate each event, drop bot and Do-Not-Track traffic, store the rest in one batch."""
    state = current_state()
    settings = state.settings
    result = IngestResult()
    if do_not_track and settings["UMETRICS_RESPECT_DNT"]:
        result.filtered = len(raw_events)
        record_filtered(state.engine, scope_id, "dnt", result.filtered, settings.timezone)
        return result
    limits = Limits.from_settings(settings, any_age=any_age)
    now = utcnow()
    rows = []
    for index, raw in enumerate(raw_events):
        try:
            row = normalize_event(raw, scope_id, limits, now)
        except ValidationError as error:
            result.rejected.append({"index": index, "field": error.field, "error": str(error)})
            continue
        agent = user_agent or row["properties"].get("$user_agent")
        if settings["UMETRICS_FILTER_BOTS"] and isinstance(agent, str) and is_bot(agent):
            result.filtered += 1
            continue
        if row["active"] and isinstance(agent, str):  # not on $session_props and the like
            add_user_agent_properties(row["properties"], agent)
        rows.append(row)
    record_filtered(state.engine, scope_id, "bot", result.filtered, settings.timezone)
    written = write_events(state.engine, rows, state.event_store)
    result.accepted, result.duplicates = written.stored, written.duplicates
    return result
