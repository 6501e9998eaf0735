"""Exporting a scope's events as CSV or JSONL, and importing such files back.

The export streams in keyset-paginated batches by ``(ts, id)``, each batch on its own short
connection, so an export of any size never holds every event (or a transaction) at once. The
import parses the same format and stores rows through the ordinary ingestion validation, so it
refuses exactly what ``POST /api/events`` refuses; the event ``uuid`` makes it idempotent.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Engine, and_, or_, select

from ..db.tables import events
from ..engines import require_sql_events
from ..errors import ValidationError
from ..state import current_state, resolve_scope
from .ingest import ingest_events
from .validation import from_micros, to_micros

Format = Literal["csv", "jsonl"]
FORMATS: tuple[str, ...] = ("csv", "jsonl")
#: The columns of both formats, in this order (CSV header; JSONL keys).
COLUMNS: tuple[str, ...] = (
    "uuid",
    "event",
    "distinct_id",
    "timestamp",
    "session_id",
    "active",
    "properties",
)
_REQUIRED_COLUMNS = frozenset({"event", "distinct_id"})
EXPORT_BATCH_SIZE = 5000
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


def format_timestamp(micros: int) -> str:
    """``2026-03-01T10:00:00.000000Z``: UTC, always with microseconds, so text sorts by time."""
    return from_micros(micros).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_record(row: Any) -> dict[str, Any]:
    """One stored event in the export shape (also used by the GDPR person export)."""
    return {
        "uuid": row.uuid,
        "event": row.event,
        "distinct_id": row.distinct_id,
        "timestamp": format_timestamp(row.ts),
        "session_id": row.session_id,
        "active": bool(row.active),
        "properties": _sorted_keys(row.properties or {}),
    }


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValidationError("format", "must be csv or jsonl")
    return fmt


def _sorted_keys(value: Any) -> Any:
    """Objects with their keys sorted, at every depth: PostgreSQL's JSONB reorders keys, and an
    export must not depend on the database."""
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _csv_lines(records: Iterable[dict[str, Any]], header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(COLUMNS)
    for record in records:
        writer.writerow(
            [
                record["uuid"] or "",
                record["event"],
                record["distinct_id"],
                record["timestamp"],
                record["session_id"] or "",
                "true" if record["active"] else "false",
                _json_text(record["properties"]),
            ]
        )
    return buffer.getvalue()


def _batches(
    engine: Engine,
    scope_id: str,
    from_us: int | None,
    to_us: int | None,
    event: str | None,
    batch_size: int,
) -> Iterator[list[dict[str, Any]]]:
    """Batches in ``(ts, id)`` order; each query starts after the last row of the previous one."""
    conditions = [events.c.scope_id == scope_id]
    if from_us is not None:
        conditions.append(events.c.ts >= from_us)
    if to_us is not None:
        conditions.append(events.c.ts < to_us)
    if event is not None:
        conditions.append(events.c.event == event)
    base = select(events).where(*conditions).order_by(events.c.ts, events.c.id).limit(batch_size)
    after: tuple[int, int] | None = None
    while True:
        query = base
        if after is not None:
            last_ts, last_id = after
            query = query.where(
                or_(events.c.ts > last_ts, and_(events.c.ts == last_ts, events.c.id > last_id))
            )
        with engine.connect() as connection:
            rows = connection.execute(query).all()
        if not rows:
            return
        yield [event_record(row) for row in rows]
        if len(rows) < batch_size:
            return
        after = (rows[-1].ts, rows[-1].id)


def export_events(
    scope_id: str | None = None,
    *,
    fmt: str = "csv",
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    event: str | None = None,
    batch_size: int = EXPORT_BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> Iterator[str]:
    """The scope's events, oldest first, as chunks of CSV (with a header) or JSONL text.

    Arguments are checked now (a bad one raises before anything is streamed); the returned
    iterator needs no app context, so a streaming response can consume it after the view
    returned. ``progress(rows_so_far)`` is called after each batch.
    """
    scope = resolve_scope(scope_id)
    require_sql_events("The event export")
    _check_format(fmt)
    if batch_size < 1:
        raise ValidationError("batch_size", "must be at least 1")
    from_us = None if date_from is None else to_micros(date_from)
    to_us = None if date_to is None else to_micros(date_to)
    if from_us is not None and to_us is not None and from_us >= to_us:
        raise ValidationError("date_from", "must be before date_to")
    engine = current_state().engine
    batches = _batches(engine, scope, from_us, to_us, event, batch_size)

    def chunks() -> Iterator[str]:
        total = 0
        if fmt == "csv":
            yield _csv_lines([], header=True)
        for batch in batches:
            if fmt == "csv":
                yield _csv_lines(batch, header=False)
            else:
                yield "".join(_json_text(record) + "\n" for record in batch)
            total += len(batch)
            if progress is not None:
                progress(total)

    return chunks()


# -- import ---------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """``read`` data rows seen; ``accepted`` stored now; ``duplicates`` already stored (same
    uuid); ``filtered`` dropped as bot traffic; ``rejected`` as ``(line number, error)``."""

    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    filtered: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "filtered": self.filtered,
            "rejected": [{"line": line, "error": error} for line, error in self.rejected],
        }


class _RowError(ValueError):
    """A line that cannot even be parsed into an event."""


def _csv_active(text: str) -> bool | str:
    lowered = text.strip().lower()
    if lowered in ("", "true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    return text  # left for the ingestion validation to refuse with its own message


def _csv_event(header: list[str], values: list[str]) -> dict[str, Any]:
    if len(values) != len(header):
        raise _RowError(f"row: expected {len(header)} fields, got {len(values)}")
    raw: dict[str, Any] = {}
    for name, value in zip(header, values, strict=True):
        if name == "active":
            raw[name] = _csv_active(value)
        elif name == "properties":
            if value.strip():
                try:
                    raw[name] = json.loads(value)
                except ValueError as exc:
                    raise _RowError(f"properties: not valid JSON ({exc})") from exc
        elif value != "":
            raw[name] = value
    return raw


def _check_header(values: list[str], line: int) -> list[str]:
    header = [name.strip() for name in values]
    unknown = set(header) - set(COLUMNS)
    missing = _REQUIRED_COLUMNS - set(header)
    if unknown or missing or len(set(header)) != len(header):
        raise ValidationError(
            "header",
            f"line {line}: CSV columns must be taken from {', '.join(COLUMNS)} "
            "(each at most once; event and distinct_id are required)",
        )
    return header


def _csv_rows(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | _RowError]]:
    """``(first line number of the record, event or error)``; a bad header fails the file."""
    reader = csv.reader(lines)
    header: list[str] | None = None
    previous_end = 0
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line, previous_end = previous_end + 1, reader.line_num
            yield line, _RowError(f"row: malformed CSV ({exc})")
            continue
        line, previous_end = previous_end + 1, reader.line_num
        if not values:
            continue
        if header is None:
            header = _check_header(values, line)
            continue
        try:
            yield line, _csv_event(header, values)
        except _RowError as error:
            yield line, error


def _jsonl_rows(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | _RowError]]:
    for line, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            raw = json.loads(text)
        except ValueError as exc:
            yield line, _RowError(f"row: not valid JSON ({exc})")
            continue
        if not isinstance(raw, dict):
            yield line, _RowError("row: must be a JSON object")
            continue
        yield line, raw


def _path_lines(path: os.PathLike[str]) -> Iterator[str]:
    with open(path, encoding="utf-8", newline="") as handle:
        yield from handle


def _open_lines(source: Iterable[str] | os.PathLike[str]) -> Iterable[str]:
    if isinstance(source, str):
        raise ValidationError(
            "source", "pass an open file, an iterable of lines or a pathlib.Path, not a str"
        )
    if isinstance(source, os.PathLike):
        return _path_lines(source)
    return source


def import_events(
    source: Iterable[str] | os.PathLike[str],
    *,
    fmt: str,
    scope_id: str | None = None,
    batch_size: int = 1000,
    progress: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Store the events of a CSV or JSONL export in ``scope_id``, ``batch_size`` rows per
    transaction; bad lines are reported with their line number and the rest are stored.

    ``source`` is an open text file (for CSV opened with ``newline=""``), any iterable of lines,
    or a ``pathlib.Path``. Timestamps of any age are accepted; re-importing a file stores
    nothing new (rows without a uuid get a fresh one, so those would be stored again).
    ``progress(report)`` is called after each batch.
    """
    scope = resolve_scope(scope_id)
    _check_format(fmt)
    if batch_size < 1:
        raise ValidationError("batch_size", "must be at least 1")
    lines = _open_lines(source)
    rows = _csv_rows(lines) if fmt == "csv" else _jsonl_rows(lines)
    report = ImportReport()
    pending: list[tuple[int, dict[str, Any]]] = []
    reported = -1

    def store() -> None:
        result = ingest_events([raw for _, raw in pending], scope_id=scope, any_age=True)
        report.accepted += result.accepted
        report.duplicates += result.duplicates
        report.filtered += result.filtered
        report.rejected.extend((pending[r["index"]][0], r["error"]) for r in result.rejected)
        report.rejected.sort()
        pending.clear()

    def tell() -> None:
        nonlocal reported
        if progress is not None and reported != report.read:
            reported = report.read
            progress(report)

    for line, parsed in rows:
        report.read += 1
        if isinstance(parsed, _RowError):
            report.rejected.append((line, str(parsed)))
        else:
            pending.append((line, parsed))
        if len(pending) >= batch_size:
            store()
            tell()
    if pending:
        store()
    tell()
    return report
