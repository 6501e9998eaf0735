"""The ClickHouse schema: its DDL, a versioned list of migrations, and ``upgrade``.

ClickHouse has no Alembic, so the project keeps its own version table,
``umetrics_clickhouse_versions`` (one row per applied migration). Every statement is idempotent
(``IF NOT EXISTS``), so an upgrade interrupted half-way is finished by running it again. With
``UMETRICS_CLICKHOUSE_CLUSTER`` every table is created ``ON CLUSTER`` with a replicated engine;
events go to ``umetrics_events_local`` on each shard behind a Distributed ``umetrics_events``,
while the person tables are small and fully replicated to every node (as PostHog keeps them).
Store code always names ``umetrics_events``: locally that is the MergeTree itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

VERSION_TABLE = "umetrics_clickhouse_versions"
EVENTS = "umetrics_events"
#: The table holding the event rows: ``EVENTS`` itself, or its shard-local table on a cluster.
EVENTS_LOCAL = "umetrics_events_local"
DISTINCT_IDS = "umetrics_person_distinct_ids"
#: The distinct ids whose person changed after events were stored with the old one (merges);
#: see :func:`_events_person_id` and ``overrides.py``.
OVERRIDES = "umetrics_person_overrides"
PERSONS = "umetrics_persons"
BACKFILL_PROGRESS = "umetrics_backfill_progress"

#: Blocks whose insert deduplication tokens a non-replicated table remembers (replicated tables
#: remember ``replicated_deduplication_window`` blocks, 1000 by default).
DEDUPLICATION_WINDOW = 1000


@dataclass(frozen=True)
class Layout:
    """How tables are created: on one server (or chdb), or on a cluster."""

    cluster: str | None = None

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER {quote(self.cluster)}" if self.cluster else ""

    @property
    def events_table(self) -> str:
        """The MergeTree that stores events (its local part on a cluster)."""
        return EVENTS_LOCAL if self.cluster else EVENTS

    def sharded_engine(self, engine: str, *arguments: str) -> str:
        """``engine`` for a table split across shards (each shard replicated)."""
        if not self.cluster:
            return f"{engine}({', '.join(arguments)})"
        path = "'/clickhouse/tables/{shard}/{database}/{table}'"
        replica = "'{replica}'"
        return f"Replicated{engine}({', '.join([path, replica, *arguments])})"

    def copied_engine(self, engine: str, *arguments: str) -> str:
        """``engine`` for a table every node holds whole (one replica per node)."""
        if not self.cluster:
            return f"{engine}({', '.join(arguments)})"
        path = "'/clickhouse/tables/noshard/{database}/{table}'"
        replica = "'{replica}-{shard}'"
        return f"Replicated{engine}({', '.join([path, replica, *arguments])})"


def quote(identifier: str | None) -> str:
    return "`" + str(identifier).replace("\\", "\\\\").replace("`", "\\`") + "`"


def _version_table(layout: Layout) -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE}{layout.on_cluster} (\n"
        "    version UInt32,\n"
        "    description String,\n"
        "    applied_at DateTime64(6, 'UTC') DEFAULT now64(6)\n"
        f") ENGINE = {layout.copied_engine('MergeTree')}\n"
        "ORDER BY version"
    ]


def _distinct_id_map(layout: Layout, table: str) -> str:
    """A versioned distinct id -> person table (the map, and its overrides since version 4)."""
    return (
        f"CREATE TABLE IF NOT EXISTS {table}{layout.on_cluster} (\n"
        "    scope_id LowCardinality(String),\n"
        "    distinct_id String,\n"
        "    person_id Int64,\n"
        "    is_deleted UInt8,\n"
        "    version UInt64\n"
        f") ENGINE = {layout.copied_engine('ReplacingMergeTree', 'version')}\n"
        "ORDER BY (scope_id, distinct_id)"
    )


def _initial_tables(layout: Layout) -> list[str]:
    """Version 1: events, the versioned distinct-id -> person map, and the persons mirror."""
    dedup = (
        "" if layout.cluster else f"non_replicated_deduplication_window = {DEDUPLICATION_WINDOW}"
    )
    events = (
        f"CREATE TABLE IF NOT EXISTS {layout.events_table}{layout.on_cluster} (\n"
        "    scope_id LowCardinality(String),\n"
        "    uuid String,\n"
        "    event LowCardinality(String),\n"
        "    distinct_id String,\n"
        # Microseconds since the epoch, UTC: the exact integers of umetrics_events.ts in SQL.
        "    ts DateTime64(6, 'UTC'),\n"
        "    session_id Nullable(String),\n"
        "    active Bool,\n"
        "    properties String CODEC(ZSTD(3)),\n"
        # The ingestion sequence: ties of ts are broken by it, as SQL breaks them by events.id.
        "    seq UInt64,\n"
        "    inserted_at DateTime64(6, 'UTC') DEFAULT now64(6),\n"
        "    INDEX uuid_bloom uuid TYPE bloom_filter(0.001) GRANULARITY 1\n"
        f") ENGINE = {layout.sharded_engine('MergeTree')}\n"
        "PARTITION BY toYYYYMM(ts)\n"
        "ORDER BY (scope_id, toDate(ts), event, cityHash64(distinct_id), ts, seq)"
        + (f"\nSETTINGS {dedup}" if dedup else "")
    )
    statements = [events]
    if layout.cluster:
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {EVENTS}{layout.on_cluster} AS {EVENTS_LOCAL}\n"
            f"ENGINE = Distributed({quote(layout.cluster)}, currentDatabase(), {EVENTS_LOCAL}, "
            "cityHash64(distinct_id))"
        )
    statements.append(_distinct_id_map(layout, DISTINCT_IDS))
    statements.append(
        f"CREATE TABLE IF NOT EXISTS {PERSONS}{layout.on_cluster} (\n"
        "    scope_id LowCardinality(String),\n"
        "    id Int64,\n"
        "    properties String CODEC(ZSTD(3)),\n"
        "    is_identified Bool,\n"
        "    created_at DateTime64(6, 'UTC'),\n"
        "    is_deleted UInt8,\n"
        "    version UInt64\n"
        f") ENGINE = {layout.copied_engine('ReplacingMergeTree', 'version')}\n"
        "ORDER BY (scope_id, id)"
    )
    return statements


def _backfill_progress(layout: Layout) -> list[str]:
    """Version 2: how far ``flask umetrics clickhouse backfill`` has copied each SQL table (the
    highest SQL row id done); kept next to the rows it describes, so wiping ClickHouse wipes it."""
    return [
        f"CREATE TABLE IF NOT EXISTS {BACKFILL_PROGRESS}{layout.on_cluster} (\n"
        "    source LowCardinality(String),\n"
        "    last_id Int64,\n"
        "    copied UInt64,\n"
        "    skipped UInt64,\n"
        "    updated_at DateTime64(6, 'UTC') DEFAULT now64(6)\n"
        f") ENGINE = {layout.copied_engine('ReplacingMergeTree', 'last_id')}\n"
        "ORDER BY source"
    ]


#: The events projection that event-filtered reads (funnels) use: the table's sort key puts the
#: day before the event name, so at about one granule per day a filter on a few event names
#: prunes nothing; sorted by event first, it reads only the granules of those names.
EVENTS_BY_EVENT = "events_by_event"


def _events_by_event(layout: Layout) -> list[str]:
    """Version 3: ``EVENTS_BY_EVENT``, the columns a funnel reads sorted by (scope, event, ts).

    Lightweight deletes (privacy, retention) refuse a table with a projection unless told what
    to do with it: ``rebuild`` rewrites the touched parts' projection, so it never shows a
    deleted row. Parts written before this version get the projection from a background
    mutation; until then reads use the table itself for them (same rows, only slower)."""
    table = f"{layout.events_table}{layout.on_cluster}"
    return [
        f"ALTER TABLE {table} MODIFY SETTING lightweight_mutation_projection_mode = 'rebuild'",
        f"ALTER TABLE {table} ADD PROJECTION IF NOT EXISTS {EVENTS_BY_EVENT} "
        "(SELECT scope_id, event, ts, seq, distinct_id ORDER BY (scope_id, event, ts, seq))",
        f"ALTER TABLE {table} MATERIALIZE PROJECTION {EVENTS_BY_EVENT}",
    ]


def _events_person_id(layout: Layout) -> list[str]:
    """Version 4: each event carries the person its distinct id had when it was stored
    (``person_id``), so reports read it without joining the distinct-id map; a distinct id
    whose person changes later (a merge) gets a row in ``OVERRIDES``, and reports take the map
    join while any override is left (``expressions.person_events``) until
    ``flask umetrics clickhouse squash`` rewrites those events and removes the overrides
    (PostHog's ``person_overrides`` pattern). Events stored before this version carry 0: every
    distinct id of the map is copied into ``OVERRIDES``, so they are read through the map until
    the first squash. The event-sorted projection is rebuilt to hold ``person_id``."""
    table = f"{layout.events_table}{layout.on_cluster}"
    add_column = "ADD COLUMN IF NOT EXISTS person_id Int64 DEFAULT 0 AFTER distinct_id"
    statements = [f"ALTER TABLE {table} {add_column}"]
    if layout.cluster:
        statements.append(f"ALTER TABLE {EVENTS}{layout.on_cluster} {add_column}")
    statements += [
        _distinct_id_map(layout, OVERRIDES),
        f"INSERT INTO {OVERRIDES} (scope_id, distinct_id, person_id, is_deleted, version) "
        f"SELECT scope_id, distinct_id, person_id, is_deleted, version FROM {DISTINCT_IDS}",
        f"ALTER TABLE {table} DROP PROJECTION IF EXISTS {EVENTS_BY_EVENT}",
        f"ALTER TABLE {table} ADD PROJECTION IF NOT EXISTS {EVENTS_BY_EVENT} "
        "(SELECT scope_id, event, ts, seq, distinct_id, person_id "
        "ORDER BY (scope_id, event, ts, seq))",
        f"ALTER TABLE {table} MATERIALIZE PROJECTION {EVENTS_BY_EVENT}",
    ]
    return statements


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: Callable[[Layout], list[str]]


#: Append only: a released migration is never edited, a change is a new version.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "events, person distinct ids, persons", _initial_tables),
    Migration(2, "backfill progress", _backfill_progress),
    Migration(3, "events projection sorted by event", _events_by_event),
    Migration(4, "events carry person_id; person overrides", _events_person_id),
)
HEAD = MIGRATIONS[-1].version


def _record(migration: Migration) -> str:
    description = migration.description.replace("\\", "\\\\").replace("'", "\\'")
    return (
        f"INSERT INTO {VERSION_TABLE} (version, description) "
        f"VALUES ({migration.version}, '{description}')"
    )


def ddl(cluster: str | None = None, after: int = 0) -> list[str]:
    """Every statement that brings a schema at version ``after`` to ``HEAD``, in order
    (including the version table and its rows), for ``db sql --dialect clickhouse``."""
    layout = Layout(cluster)
    statements = _version_table(layout)
    for migration in MIGRATIONS:
        if migration.version > after:
            statements += migration.statements(layout)
            statements.append(_record(migration))
    return statements


def ddl_script(cluster: str | None = None) -> str:
    """:func:`ddl` as a script, one statement per ``;``."""
    return "".join(f"{statement};\n\n" for statement in ddl(cluster))


def current_version(client: Client) -> int:
    """The version the ClickHouse schema is at (0 before the first upgrade)."""
    if not client.query(f"EXISTS TABLE {VERSION_TABLE}").result_rows[0][0]:
        return 0
    return int(client.query(f"SELECT max(version) FROM {VERSION_TABLE}").result_rows[0][0])


def upgrade(client: Client, cluster: str | None = None) -> tuple[int, int]:
    """Apply every migration newer than the schema's version; ``(before, after)``."""
    layout = Layout(cluster)
    for statement in _version_table(layout):
        client.command(statement)
    before = current_version(client)
    for migration in MIGRATIONS:
        if migration.version <= before:
            continue
        for statement in migration.statements(layout):
            client.command(statement)
        client.command(_record(migration))
    return before, current_version(client)
