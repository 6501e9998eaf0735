"""The event export route: a CSV or JSONL download streamed batch by batch."""

from __future__ import annotations

from typing import Literal

from flask import Response
from pydantic import Field

from ..events.export import CONTENT_TYPES, export_events
from .models import ScopedModel
from .params import DateTimeParam
from .router import APICall
from .routes import router


class ExportQuery(ScopedModel):
    format: Literal["csv", "jsonl"] = Field("csv", description="CSV with a header, or JSON lines.")
    date_from: DateTimeParam | None = Field(None, description="Inclusive; default: the first.")
    date_to: DateTimeParam | None = Field(None, description="Exclusive; default: no end.")
    event: str | None = Field(None, max_length=200, description="Only this event.")


@router.route(
    "/export/events",
    summary="Stream the scope's events, oldest first, as CSV or JSONL",
    permission="metrics.view",
    tag="export",
    query=ExportQuery,
)
def export_events_download(call: APICall) -> Response:
    """The iterator needs no app context: it reads batch by batch on its own connections."""
    q = call.query
    chunks = export_events(
        call.scope_id, fmt=q.format, date_from=q.date_from, date_to=q.date_to, event=q.event
    )
    answer = Response(chunks, content_type=CONTENT_TYPES[q.format])
    filename = f"events-{call.scope_id}.{q.format}"
    answer.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return answer
