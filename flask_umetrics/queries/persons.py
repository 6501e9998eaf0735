"""The persons behind a number: a report's person-id set turned into a paginated list.

Each report exposes the persons behind one of its numbers as SQL of the event store that
returns ``person_id`` (one row per person) and ``at`` (the moment they qualified, µs, or NULL):
a subquery built from the report's own query, so the list and the number cannot disagree. This
module counts that set, cuts a page from it in the event store (ordered by person id), and
reads the page's persons — properties, first distinct ids — from the SQL metadata database,
whichever store holds the events.

With ``sample``, the set is the sampled persons (the report's number is scaled up; the list is
not).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.sql import Select

from ..db.tables import persons
from ..events.validation import from_micros
from ..state import current_state, resolve_scope
from .connection import metadata_connection, report_connection
from .people import check_page, first_distinct_ids

if TYPE_CHECKING:
    from ..engines.clickhouse.expressions import Params


@dataclass(frozen=True)
class PersonSource:
    """The person-id set behind a number: SQL for the SQL engine, or ClickHouse SQL and its
    bound parameters. Either returns ``person_id, at``. ``metadata``: the SQL reads only the
    SQL metadata database (a segment's members), so it runs there whatever the event store."""

    query: Select[Any] | None = None
    clickhouse_sql: str | None = None
    clickhouse_params: Params | None = None
    metadata: bool = False

    @classmethod
    def sql(cls, query: Select[Any]) -> PersonSource:
        return cls(query=query)

    @classmethod
    def metadata_sql(cls, query: Select[Any]) -> PersonSource:
        return cls(query=query, metadata=True)

    @classmethod
    def clickhouse(cls, sql: str, params: Params) -> PersonSource:
        return cls(clickhouse_sql=sql, clickhouse_params=params)


@dataclass(frozen=True)
class PersonBehind:
    id: int
    distinct_ids: list[str]
    properties: dict[str, Any]
    created_at: str | None
    is_identified: bool
    qualified_at: str | None


@dataclass(frozen=True)
class PersonsList:
    persons: list[PersonBehind]
    total: int
    limit: int
    offset: int


def _page(source: PersonSource, limit: int, offset: int) -> tuple[int, list[tuple[int, Any]]]:
    """The set's size and one page of ``(person_id, at)``, by person id, from the event store."""
    if source.query is not None:
        rows = source.query.subquery("behind")
        with metadata_connection() if source.metadata else report_connection() as connection:
            total = connection.execute(select(func.count()).select_from(rows)).scalar_one()
            page = connection.execute(
                select(rows.c.person_id, rows.c.at)
                .order_by(rows.c.person_id)
                .limit(limit)
                .offset(offset)
            ).all()
        return int(total), [(int(r[0]), r[1]) for r in page]
    from ..engines.clickhouse.runner import rows as clickhouse_rows

    assert source.clickhouse_sql is not None and source.clickhouse_params is not None
    sql, params = source.clickhouse_sql, source.clickhouse_params
    total = clickhouse_rows(f"SELECT count() FROM ({sql})", params)[0][0]
    cut = (
        f"SELECT person_id, at FROM ({sql}) ORDER BY person_id "
        f"LIMIT {params.bind(limit, 'UInt64')} OFFSET {params.bind(offset, 'UInt64')}"
    )
    return int(total), [(int(r[0]), r[1]) for r in clickhouse_rows(cut, params)]


def persons_behind(
    source: PersonSource, *, scope_id: str | None = None, limit: int = 50, offset: int = 0
) -> PersonsList:
    """One page of the persons of ``source``, with their properties and first distinct ids."""
    check_page(limit, offset)
    scope = resolve_scope(scope_id)
    total, page = _page(source, limit, offset)
    ids = [person_id for person_id, _ in page]
    with current_state().engine.connect() as connection:
        found = {
            row.id: row
            for row in connection.execute(
                select(persons).where(persons.c.scope_id == scope, persons.c.id.in_(ids))
            )
        }
        known = first_distinct_ids(connection, scope, ids)
    listed = []
    for person_id, at in page:
        row = found.get(person_id)
        listed.append(
            PersonBehind(
                id=person_id,
                distinct_ids=known.get(person_id, []),
                properties=(row.properties or {}) if row is not None else {},
                created_at=row.created_at.isoformat() if row is not None else None,
                is_identified=bool(row.is_identified) if row is not None else False,
                qualified_at=from_micros(int(at)).isoformat() if at is not None else None,
            )
        )
    return PersonsList(listed, total, limit, offset)


CSV_COLUMNS = ("id", "distinct_ids", "qualified_at", "created_at", "is_identified", "properties")


def persons_csv(result: PersonsList) -> str:
    """The page as CSV: distinct ids joined by spaces, properties as JSON."""
    import csv
    import io
    import json

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for p in result.persons:
        writer.writerow(
            [
                p.id,
                csv_safe(" ".join(p.distinct_ids)),
                p.qualified_at or "",
                p.created_at or "",
                "true" if p.is_identified else "false",
                csv_safe(json.dumps(p.properties, sort_keys=True, ensure_ascii=False)),
            ]
        )
    return out.getvalue()


#: Cells starting with these are formulas to a spreadsheet (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(text: str) -> str:
    """Text for a CSV cell: one a spreadsheet would run as a formula gets a leading quote
    (distinct ids, property values and breakdown names come from browsers)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text
