"""What every report shares: scope, half-open range, time zone, filters, segment, sampling."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo

from sqlalchemy.sql import ColumnElement, Select, Subquery

from ..db.tables import events
from ..errors import ValidationError
from ..events.validation import to_micros
from ..state import current_state, resolve_scope
from ..validation import as_utc
from .buckets import Buckets, floor_to, next_start
from .filters import PropertyFilter
from .segments import Segment, get_segment
from .sql import in_sample

DEFAULT_DAYS = 30
#: A report with several series (breakdowns) or a table (retention) may hold this many times
#: ``UMETRICS_MAX_REPORT_BUCKETS`` numbers in all.
CELLS_PER_BUCKET = 20


#: A count in a report: an exact ``int``, or a ``float`` estimate when the report was sampled
#: (and for credited fractions). Kept as a union so the JSON of an exact count has no ``.0``.
Count: TypeAlias = int | float


@dataclass(frozen=True)
class ReportContext:
    """A report's common inputs, validated. Build with :func:`report_context`."""

    scope_id: str
    zone: ZoneInfo
    date_from: datetime
    date_to: datetime
    filters: tuple[PropertyFilter, ...] = ()
    sample: float | None = None
    segment: Segment | None = None
    #: ``UMETRICS_MAX_REPORT_BUCKETS``: most buckets in one series.
    max_buckets: int = 5000

    @property
    def from_us(self) -> int:
        return to_micros(self.date_from)

    @property
    def to_us(self) -> int:
        return to_micros(self.date_to)

    def in_range(self) -> list[ColumnElement[bool]]:
        """``date_from <= ts < date_to`` on ``umetrics_events``."""
        return [events.c.ts >= self.from_us, events.c.ts < self.to_us]

    def event_filters(self) -> list[ColumnElement[bool]]:
        return [f.condition(events.c.properties) for f in self.filters]

    def sampled(self, person_id: ColumnElement[Any]) -> list[ColumnElement[bool]]:
        """Conditions keeping only the persons of the report: its segment and its sample."""
        conditions = [] if self.segment is None else [self.segment.condition(person_id)]
        if self.sample is not None:
            conditions.append(in_sample(person_id, self.sample))
        return conditions

    def rows(self, query: Select[Any], name: str = "rows") -> Subquery:
        """``query`` (with a ``person_id`` column) limited to the sample, as a subquery."""
        return query.where(*self.sampled(query.selected_columns.person_id)).subquery(name)

    def buckets(
        self,
        interval: str,
        *,
        field: str = "interval",
        date_from: datetime | None = None,
        extra: int = 0,
        week_start: int = 0,
    ) -> Buckets:
        """The calendar buckets of the range (from ``date_from`` when given), at most
        ``max_buckets`` of them: more raise a ``ValidationError`` naming ``field``."""
        return Buckets.covering(
            self.date_from if date_from is None else date_from,
            self.date_to,
            interval,
            self.zone,
            extra=extra,
            limit=self.max_buckets,
            field=field,
            week_start=week_start,
        )

    def check_cells(self, cells: int, field: str, what: str) -> None:
        """Refuse a report of more than ``CELLS_PER_BUCKET * max_buckets`` numbers (trends
        breakdowns, retention tables) before it is computed."""
        maximum = CELLS_PER_BUCKET * self.max_buckets
        if cells > maximum:
            raise ValidationError(
                field,
                f"the report would hold {cells} {what}, more than {maximum}; "
                "shorten the range or use a coarser interval",
            )

    def scale(self, count: float) -> Count:
        """Scale a sampled count back up (``1 / sample``); unsampled, a whole count is an
        ``int``, so the JSON says ``7``, not ``7.0``."""
        if self.sample is None:
            return int(count) if float(count).is_integer() else count
        return count / self.sample


def report_context(
    *,
    scope_id: str | None = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    filters: list[PropertyFilter] | list[dict[str, Any]] | None = None,
    sample: float | None = None,
    segment: str | Segment | None = None,
) -> ReportContext:
    """Validate the common inputs; the default range is the last 30 days up to tomorrow's
    midnight in ``UMETRICS_TIMEZONE`` (so today is included)."""
    settings = current_state().settings
    zone = ZoneInfo(settings.timezone)
    if date_to is None:
        now = datetime.now(zone)
        date_to = next_start(floor_to(now, "day", zone), "day", zone)
    date_to = as_utc(date_to, "date_to")
    if date_from is None:
        try:
            date_from = floor_to(date_to - timedelta(days=DEFAULT_DAYS), "day", zone)
        except OverflowError as exc:  # a date_to in the first days of year 1
            raise ValidationError("date_to", "is out of range") from exc
    date_from = as_utc(date_from, "date_from")
    if date_from >= date_to:
        raise ValidationError("date_from", "must be before date_to")
    max_days = settings["UMETRICS_MAX_REPORT_DAYS"]
    if date_to - date_from > timedelta(days=max_days):
        raise ValidationError(
            "date_from",
            f"the range covers more than {max_days} days (UMETRICS_MAX_REPORT_DAYS)",
        )
    if sample is not None and not 0 < sample <= 1:
        raise ValidationError("sample", "must be in (0, 1]")
    parsed = tuple(
        f if isinstance(f, PropertyFilter) else PropertyFilter.model_validate(f)
        for f in (filters or [])
    )
    scope = resolve_scope(scope_id)
    if isinstance(segment, str):
        found = get_segment(segment, scope_id=scope)
        if found is None:
            raise ValidationError("segment", f"no segment {segment!r} in scope {scope!r}")
        segment = found
    return ReportContext(
        segment=segment,
        scope_id=scope,
        zone=zone,
        date_from=date_from,
        date_to=date_to,
        filters=parsed,
        sample=None if sample in (None, 1, 1.0) else sample,
        max_buckets=settings["UMETRICS_MAX_REPORT_BUCKETS"],
    )
