"""The umetrics tables: one ``MetaData``, every table prefixed ``umetrics_`` (docs/architecture.md).

Every change here ships as a new Alembic migration in ``db/migrations/versions``; a test checks that
the migrations produce exactly these tables.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from .types import BigIntId, JSONType, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: Append-only numeric readings per scope and metric (the stat store).
stat_readings = Table(
    "umetrics_stat_readings",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("scope_id", String(64), nullable=False),
    Column("metric_key", String(128), nullable=False),
    Column("value", Double, nullable=False),
    Column("captured_at", UTCDateTime, nullable=False),
    Column("source", String(32), nullable=False),
    Column("snapshot_id", BigIntId, ForeignKey("umetrics_snapshot_runs.id", ondelete="SET NULL")),
    Index(None, "scope_id", "metric_key", "captured_at", "id"),
    Index(None, "captured_at"),
)

#: One row per snapshot: all collectors of a scope run with one shared ``captured_at``.
snapshot_runs = Table(
    "umetrics_snapshot_runs",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("scope_id", String(64), nullable=False),
    Column("captured_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=False),
    Column("trigger", String(32), nullable=False),
    Column("collectors_ok", Integer, nullable=False),
    Column("collectors_failed", Integer, nullable=False),
    Index(None, "scope_id", "captured_at"),
)

#: One row per collector per snapshot: its value, or the error that stopped it.
collector_runs = Table(
    "umetrics_collector_runs",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column(
        "snapshot_id",
        BigIntId,
        ForeignKey("umetrics_snapshot_runs.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("scope_id", String(64), nullable=False),
    Column("collector_key", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("value", Double),
    Column("error", Text),
    Column("duration_ms", Double, nullable=False),
    Index(None, "snapshot_id"),
    Index(None, "scope_id", "collector_key", "id"),
)

#: Server-to-server credentials; only a SHA-256 of the key is stored.
api_keys = Table(
    "umetrics_api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("scope_id", String(64), nullable=False),
    Column("permission", String(32), nullable=False),
    Column("name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200)),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
    Index(None, "scope_id"),
)

#: Who changed what: configuration changes made through the API, CLI or dashboard.
audit_log = Table(
    "umetrics_audit_log",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("scope_id", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(200), nullable=False),
    Column("before", JSONType),
    Column("after", JSONType),
    Index(None, "scope_id", "at"),
)

#: Scheduler leadership leases (used where PostgreSQL advisory locks are not available).
scheduler_leases = Table(
    "umetrics_scheduler_leases",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

#: One row per (job, period): the claim that makes a job run once per period across processes.
job_runs = Table(
    "umetrics_job_runs",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("job_key", String(200), nullable=False),
    Column("period", String(40), nullable=False),
    Column("owner", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("lease_expires_at", UTCDateTime, nullable=False),
    Column("detail", JSONType),
    Column("error", Text),
    UniqueConstraint("job_key", "period"),
    Index(None, "started_at"),
)

#: Tracked events. ``ts`` is microseconds since the Unix epoch (UTC): integer arithmetic for
#: windows, gaps and calendar buckets is identical on SQLite and PostgreSQL.
events = Table(
    "umetrics_events",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("scope_id", String(64), nullable=False),
    Column("uuid", String(64)),
    Column("event", String(200), nullable=False),
    Column("distinct_id", String(200), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("session_id", String(200)),
    Column("active", Boolean, nullable=False),
    Column("properties", JSONType),
    UniqueConstraint("scope_id", "uuid"),
    Index(None, "scope_id", "ts"),
    Index(None, "scope_id", "event", "ts"),
    Index(None, "scope_id", "distinct_id", "ts"),
)

#: Events dropped on purpose at ingestion, counted per scope, calendar day (``YYYY-MM-DD`` in
#: ``UMETRICS_TIMEZONE``) and reason (``bot``, ``dnt``): the overview shows what was filtered.
filtered_events = Table(
    "umetrics_filtered_events",
    metadata,
    Column("scope_id", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("reason", String(16), primary_key=True),
    Column("events", BigInteger, nullable=False),
)

#: People: every distinct id belongs to exactly one person (via ``person_distinct_ids``).
persons = Table(
    "umetrics_persons",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("scope_id", String(64), nullable=False),
    Column("properties", JSONType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("is_identified", Boolean, nullable=False),
    Index(None, "scope_id", "created_at"),
)

#: Which person a distinct id belongs to. Merging persons re-points rows here, so every report
#: (which joins events through this table) counts past events under the merged person.
person_distinct_ids = Table(
    "umetrics_person_distinct_ids",
    metadata,
    Column("scope_id", String(64), primary_key=True),
    Column("distinct_id", String(200), primary_key=True),
    Column("person_id", BigIntId, nullable=False),
    Index(None, "person_id"),
)

#: Saved segments: ``dynamic`` ones filter on person properties, ``static`` ones list ids.
segments = Table(
    "umetrics_segments",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("scope_id", String(64), nullable=False),
    Column("key", String(100), nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("filters", JSONType),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("scope_id", "key"),
)

#: The distinct ids of a static segment (resolved to persons when a report runs).
segment_members = Table(
    "umetrics_segment_members",
    metadata,
    Column(
        "segment_id",
        BigIntId,
        ForeignKey("umetrics_segments.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("distinct_id", String(200), primary_key=True),
)

#: Feature flags and experiments per scope (docs/flags-experiments.md).
#: ``variants`` is a list of ``{"key", "weight", "name"}``; ``conditions`` a GrowthBook-style
#: condition on subject attributes; ``metrics`` the goal and guardrail metrics.
experiments = Table(
    "umetrics_experiments",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("scope_id", String(64), nullable=False),
    Column("key", String(100), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("variants", JSONType, nullable=False),
    Column("coverage", Double, nullable=False),
    Column("seed", String(200), nullable=False),
    Column("bucket_version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("shipped_variant", String(100)),
    Column("killed", Boolean, nullable=False),
    Column("conditions", JSONType),
    Column("namespace", JSONType),
    Column("metrics", JSONType, nullable=False),
    Column("start_at", UTCDateTime),
    Column("stop_at", UTCDateTime),
    Column("started_at", UTCDateTime),
    Column("stopped_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("revision", Integer, nullable=False),
    # Features with rules (issue 15); the defaults are what migration 0008 gave older rows.
    Column("value_type", String(16), nullable=False, server_default="string"),
    Column("hash_version", Integer, nullable=False, server_default="2"),
    Column("rules", JSONType, nullable=False, server_default='[{"type": "experiment", "id": ""}]'),
    Column("overrides", JSONType, nullable=False, server_default="[]"),
    UniqueConstraint("scope_id", "key"),
)

#: Sticky assignments of known subjects: one row per (scope, experiment, subject, bucket version).
assignments = Table(
    "umetrics_assignments",
    metadata,
    Column("scope_id", String(64), primary_key=True),
    Column("subject_id", String(200), primary_key=True),
    Column("experiment_key", String(100), primary_key=True),
    Column("bucket_version", Integer, primary_key=True),
    Column("variant", String(100), nullable=False),
    Column("source", String(16), nullable=False),
    Column("assigned_at", UTCDateTime, nullable=False),
)

#: First exposure of a subject to an experiment (logged only with consent). ``ts`` is
#: microseconds since the epoch, like ``umetrics_events.ts``, so results join on integers.
exposures = Table(
    "umetrics_exposures",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("scope_id", String(64), nullable=False),
    Column("experiment_key", String(100), nullable=False),
    Column("bucket_version", Integer, nullable=False),
    Column("subject_id", String(200), nullable=False),
    Column("variant", String(100), nullable=False),
    Column("ts", BigInteger, nullable=False),
    UniqueConstraint("scope_id", "experiment_key", "bucket_version", "subject_id"),
    Index(None, "scope_id", "subject_id"),
    Index(None, "ts"),
)

#: A counter per scope bumped on every flag change, so every worker process drops its cached
#: definitions within ``UMETRICS_FLAGS_REFRESH_SECONDS``.
flag_generations = Table(
    "umetrics_flag_generations",
    metadata,
    Column("scope_id", String(64), primary_key=True),
    Column("generation", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

#: One GA4 connection per scope. Credentials (service-account JSON or an OAuth refresh token)
#: and the Measurement Protocol secret are stored encrypted (AES-256-GCM, key id prefixed).
ga4_connections = Table(
    "umetrics_ga4_connections",
    metadata,
    Column("scope_id", String(64), primary_key=True),
    Column("auth_kind", String(16), nullable=False),
    Column("credentials_encrypted", Text, nullable=False),
    Column("principal", String(320)),
    Column("oauth_scopes", JSONType),
    Column("account_id", String(64)),
    Column("property_id", String(64)),
    Column("property_name", String(200)),
    Column("stream_id", String(64)),
    Column("measurement_id", String(32)),
    Column("mp_secret_encrypted", Text),
    # The property's reporting time zone and currency (GA4 cuts days in that zone).
    Column("time_zone", String(64)),
    Column("currency", String(3)),
    Column("connected_by", String(200), nullable=False),
    Column("connected_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("last_sync_at", UTCDateTime),
    Column("last_error", Text),
    # Measurement Protocol forwarding has handled every selected event up to this
    # ``umetrics_events.id`` (sent, or skipped on purpose); NULL = nothing forwarded yet.
    Column("mp_forwarded_through", BigInteger),
)

#: OAuth flows in progress: the PKCE code verifier stays on the server across the redirect.
ga4_oauth_flows = Table(
    "umetrics_ga4_oauth_flows",
    metadata,
    Column("state_id", String(64), primary_key=True),
    Column("scope_id", String(64), nullable=False),
    Column("code_verifier_encrypted", Text, nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("oauth_scopes", JSONType, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

#: GA4 report answers per (scope, report, parameters), served until ``expires_at`` and, when
#: Google answers with a quota error, served stale.
ga4_report_cache = Table(
    "umetrics_ga4_report_cache",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("scope_id", String(64), nullable=False),
    Column("report", String(64), nullable=False),
    Column("params_hash", String(64), nullable=False),
    Column("params", JSONType, nullable=False),
    Column("result", JSONType, nullable=False),
    Column("quota", JSONType),
    Column("fetched_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    UniqueConstraint("scope_id", "report", "params_hash"),
    Index(None, "fetched_at"),
)

#: Saved insights (docs/insights-dashboards.md): a report's kind and its parameters exactly as
#: its REST route takes them (``params``, checked by that route's query model on save).
insights = Table(
    "umetrics_insights",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("scope_id", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("params", JSONType, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "scope_id", "name"),
)

#: Dashboards: a named grid of insight tiles, with a date range (``date_range``, a relative
#: token, or ``date_from``/``date_to``) and filters that override every tile's when set.
dashboards = Table(
    "umetrics_dashboards",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("scope_id", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("date_range", String(32)),
    Column("date_from", UTCDateTime),
    Column("date_to", UTCDateTime),
    Column("filters", JSONType, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "scope_id", "name"),
)

#: The tiles of a dashboard, in ``position`` order; ``width`` in grid columns (of 12),
#: ``height`` in rows. Deleting an insight removes its tiles.
dashboard_tiles = Table(
    "umetrics_dashboard_tiles",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column(
        "dashboard_id",
        BigIntId,
        ForeignKey("umetrics_dashboards.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "insight_id",
        BigIntId,
        ForeignKey("umetrics_insights.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("position", Integer, nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Index(None, "dashboard_id", "position"),
    Index(None, "insight_id"),
)

#: Annotations (docs/annotations.md): a dated note per scope ("v2.3 released") that the
#: dashboard's time-series charts mark on their time axis. ``text`` is at most 400 characters.
#: (Not named ``annotations``: ``from __future__ import annotations`` binds that name.)
annotations_table = Table(
    "umetrics_annotations",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("scope_id", String(64), nullable=False),
    Column("occurs_at", UTCDateTime, nullable=False),
    Column("text", String(400), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "scope_id", "occurs_at"),
)
