"""Annotations on the dashboard's time-series charts: each of the scope's annotations inside a
chart's buckets becomes a marker ``admin.js`` draws as a vertical dashed line (its text in a
label and, on hover, a box with its time in the app's zone), and a line under the chart.

A marker's ``at`` is its place on the category axis: bucket index plus how far into the bucket
it happened (``2.5``: half-way through the third bucket), so a note at noon sits mid-day.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import has_request_context

from ..annotations import list_annotations
from ..queries.buckets import next_start
from ..state import current_state
from .access import current_scope
from .page import Chart


def mark_annotations(chart: Chart, starts: Sequence[str], interval: str) -> Chart:
    """Attach the annotations between the first bucket's start and the last one's end to
    ``chart``, whose labels are the buckets starting at ``starts`` (ISO, the report's zone)."""
    if not starts or not has_request_context():  # a chart built outside a page has no scope
        return chart
    zone = ZoneInfo(current_state().settings.timezone)
    bounds = [_aware(text, zone) for text in starts]
    bounds.append(next_start(bounds[-1], interval, zone))
    found = list_annotations(date_from=bounds[0], date_to=bounds[-1], scope_id=current_scope())
    marks = []
    for note in found:
        index = bisect_right(bounds, note.occurs_at) - 1
        begin, end = bounds[index], bounds[index + 1]
        part = (note.occurs_at - begin) / (end - begin)
        marks.append(
            {
                "id": note.id,
                "at": round(index + part, 4),
                "time": note.occurs_at.isoformat(),
                "text": note.text,
            }
        )
    chart.annotations = marks
    return chart


def _aware(text: str, zone: ZoneInfo) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)
