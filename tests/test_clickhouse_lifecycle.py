"""Privacy and lifecycle on the ClickHouse event store: event export and import, the person
export, retention pruning by partition drop plus a lightweight delete. The same data and the
same expected answers as the SQL stores' tests (tests/test_export_import.py,
tests/test_privacy.py), so the two stores are held to one standard."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask

from flask_umetrics import create_api_key, delete_person
from flask_umetrics.engines.clickhouse.client import get_client, parse_clickhouse_url
from flask_umetrics.events.export import export_events, import_events
from flask_umetrics.events.privacy import export_person
from flask_umetrics.pruning import prune

from . import test_export_import as sql_export
from . import test_privacy as sql_privacy
from .conftest import AppFactory, allow_all
from .events_data import at, load


def ch_rows(url: str, sql: str, **parameters: Any) -> list[tuple[Any, ...]]:
    client = get_client(parse_clickhouse_url(url))
    return [tuple(row) for row in client.query(sql, parameters=parameters).result_rows]


def ch_stored(url: str, scope_id: str) -> list[tuple[Any, ...]]:
    """Every stored column but seq, in (ts, seq) order, properties decoded."""
    rows = ch_rows(
        url,
        "SELECT uuid, event, distinct_id, toUnixTimestamp64Micro(ts), session_id, active, "
        "properties FROM umetrics_events WHERE scope_id = {s:String} ORDER BY ts, seq",
        s=scope_id,
    )
    return [(*row[:6], json.loads(row[6])) for row in rows]


@pytest.fixture
def app(make_clickhouse_app: AppFactory) -> Flask:
    from flask_umetrics import UMetrics

    extension = UMetrics()
    allow_all(extension)
    return make_clickhouse_app(extension)


@pytest.fixture
def source(app: Flask) -> Flask:
    load(app, sql_export.ROWS, scope_id="src")
    load(app, [("z", "view", "2026-03-01T10:00:00")], scope_id="elsewhere")
    return app


def export_text(app: Flask, **kwargs: Any) -> str:
    with app.app_context():
        chunks = export_events("src", **kwargs)
    return "".join(chunks)


# -- event export and import ------------------------------------------------------------------


def test_csv_export_from_clickhouse_is_the_sql_stores_text(source: Flask) -> None:
    lines = export_text(source, fmt="csv", event="view", date_to=at("2026-03-02")).splitlines()
    assert lines == [
        "uuid,event,distinct_id,timestamp,session_id,active,properties",
        'src-0-a-view-2026-03-01T10:00:00,view,a,2026-03-01T10:00:00.000000Z,s1,true,"{""path"":""/""}"',
        "src-1-b-view-2026-03-01T10:00:00,view,b,2026-03-01T10:00:00.000000Z,,true,"
        + '"{""nested"":{""list"":[1,2.5,null,true]},""text"":""comma, \\""quote\\""\\nnew line"",'
        + '""ü"":""ß""}"',
        "src-3-c-view-2026-03-01T23:59:59.999999,view,c,2026-03-01T23:59:59.999999Z,,true,{}",
    ]


def test_jsonl_export_pages_by_ts_and_seq_keeping_every_row_once(source: Flask) -> None:
    batches: list[int] = []
    text = export_text(source, fmt="jsonl", batch_size=2, progress=batches.append)
    records = [json.loads(line) for line in text.splitlines()]
    assert batches == [2, 4, 6]  # three rows share one instant and straddle a page boundary
    assert [(r["distinct_id"], r["event"]) for r in records] == [
        ("a", "view"),
        ("b", "view"),
        ("a", "click"),
        ("c", "view"),
        ("c", "buy"),
        ("b", "view"),
    ]
    assert records[1]["properties"] == sql_export.ODD
    assert records[2] == {
        "uuid": "src-2-a-click-2026-03-01T10:00:00",
        "event": "click",
        "distinct_id": "a",
        "timestamp": "2026-03-01T10:00:00.000000Z",
        "session_id": None,
        "active": False,
        "properties": {},
    }
    half_open = export_text(
        source, fmt="jsonl", date_from=at("2026-03-01T23:59:59.999999"), date_to=at("2026-03-03")
    )
    assert [json.loads(line)["event"] for line in half_open.splitlines()] == ["view", "buy"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_round_trip_into_another_scope_and_reimport(
    source: Flask, fmt: str, clickhouse_url: str
) -> None:
    text = export_text(source, fmt=fmt, batch_size=4)
    with source.app_context():
        first = import_events(io.StringIO(text, newline=""), fmt=fmt, scope_id="dst", batch_size=4)
    assert (first.read, first.accepted, first.duplicates, first.rejected) == (6, 6, 0, [])
    assert ch_stored(clickhouse_url, "dst") == ch_stored(clickhouse_url, "src")
    assert len(ch_stored(clickhouse_url, "src")) == 6
    with source.app_context():
        again = import_events(io.StringIO(text, newline=""), fmt=fmt, scope_id="dst")
    assert (again.accepted, again.duplicates, again.rejected) == (0, 6, [])
    assert len(ch_stored(clickhouse_url, "dst")) == 6


def test_a_lone_carriage_return_round_trips_through_csv(app: Flask, clickhouse_url: str) -> None:
    load(app, [("a\rb", "view", "2026-03-01T10:00:00", {"k": "x\ry"})], "src")
    text = export_text(app, fmt="csv")
    assert ',"a\rb",' in text
    with app.app_context():
        report = import_events(io.StringIO(text, newline=""), fmt="csv", scope_id="dst")
    assert (report.read, report.accepted, report.rejected) == (1, 1, [])
    assert ch_stored(clickhouse_url, "dst") == ch_stored(clickhouse_url, "src")
    assert ch_stored(clickhouse_url, "dst")[0][2] == "a\rb"


def test_rest_and_cli_export_read_clickhouse(source: Flask) -> None:
    with source.app_context():
        key = create_api_key("src", "metrics.view")
    answer = source.test_client().get(
        "/umetrics/api/export/events?scope_id=src&format=csv",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_data(as_text=True) == export_text(source, fmt="csv")
    assert len(answer.get_data(as_text=True).splitlines()) == 7
    out = source.test_cli_runner().invoke(
        args=["umetrics", "export", "--format", "jsonl", "--scope", "src"]
    )
    assert out.exit_code == 0, out.output
    assert out.stdout == export_text(source, fmt="jsonl")


# -- the person export and deletion -----------------------------------------------------------


def test_person_export_reads_the_persons_events_from_clickhouse(app: Flask) -> None:
    sql_privacy.seed(app)
    with app.app_context():
        document = export_person(sql_privacy.ANON)
        assert export_person("nobody") is None
        assert export_person(sql_privacy.USER) == document
    assert document is not None
    assert document["person"]["properties"] == {"email": "zelda@example.com", "plan": "pro"}
    assert document["distinct_ids"] == sorted([sql_privacy.ANON, sql_privacy.USER])
    exported = document["events"]
    assert [(e["distinct_id"], e["event"], e["timestamp"]) for e in exported] == [
        (sql_privacy.USER, "view", "2026-03-03T08:00:00.000000Z"),
        (sql_privacy.USER, "buy", "2026-03-02T09:00:00.000000Z"),  # a tie: newest seq first
        (sql_privacy.USER, "view", "2026-03-02T09:00:00.000000Z"),
        (sql_privacy.ANON, "signup", "2026-03-01T10:05:00.000001Z"),
        (sql_privacy.ANON, "view", "2026-03-01T10:00:00.000000Z"),
    ]
    assert exported[1]["active"] is False
    assert exported[1]["properties"] == {"amount": 9.5, "phone": "555"}
    assert exported[3]["session_id"] == "s1" and exported[4]["session_id"] is None
    assert exported[4]["uuid"] == f"default-0-{sql_privacy.ANON}-view-2026-03-01T10:00:00"
    answer = app.test_client().get(f"/umetrics/api/persons/{sql_privacy.USER}/export")
    assert answer.status_code == 200 and answer.get_json()["events"] == exported


def test_a_deleted_person_is_absent_from_both_exports(app: Flask) -> None:
    sql_privacy.seed(app)
    with app.app_context():
        assert delete_person(sql_privacy.USER).events == 5
        assert export_person(sql_privacy.ANON) is None
        text = "".join(export_events("default", fmt="jsonl"))
    assert [json.loads(line)["distinct_id"] for line in text.splitlines()] == [
        sql_privacy.OTHER,
        sql_privacy.OTHER,
    ]
    assert sql_privacy.USER not in text and sql_privacy.ANON not in text


# -- retention pruning ------------------------------------------------------------------------

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)
#: 30 days before NOW: 2026-05-16T12:00Z. March and April are whole months before it; May holds
#: rows on both sides of it.
PRUNE_ROWS = [
    ("p", "view", "2026-03-01T00:00:00"),
    ("p", "view", "2026-03-31T23:59:59.999999"),
    ("q", "view", "2026-04-10T08:00:00"),
    ("p", "view", "2026-05-01T00:00:00"),
    ("q", "view", "2026-05-16T11:59:59.999999"),  # the last expired instant
    ("p", "view", "2026-05-16T12:00:00"),  # the cutoff itself: kept
    ("q", "view", "2026-06-01T09:00:00"),
]


def partitions(url: str) -> list[str]:
    return [
        row[0]
        for row in ch_rows(
            url,
            "SELECT DISTINCT partition_id FROM system.parts WHERE database = currentDatabase() "
            "AND table = 'umetrics_events' AND active ORDER BY partition_id",
        )
    ]


def test_pruning_drops_whole_months_and_deletes_the_rest_of_the_cutoff_month(
    make_clickhouse_app: AppFactory, clickhouse_url: str
) -> None:
    app = make_clickhouse_app(UMETRICS_RETENTION_EVENTS_DAYS=30)
    load(app, PRUNE_ROWS)
    load(app, [("r", "view", "2026-04-02T00:00:00")], scope_id="other")  # every scope expires
    assert partitions(clickhouse_url) == ["202603", "202604", "202605", "202606"]
    details: dict[str, Any] = {}
    with app.app_context():
        deleted = prune(now=NOW, details=details)
    assert deleted["events"] == 6
    assert details["events"] == {
        "event_store": "clickhouse",
        "cutoff": "2026-05-16T12:00:00+00:00",
        "deleted": 6,
        "partitions_dropped": ["202603", "202604"],
        "rows_in_dropped_partitions": 4,
        "rows_deleted": 2,
    }
    assert partitions(clickhouse_url) == ["202605", "202606"]
    left = ch_rows(
        clickhouse_url,
        "SELECT distinct_id, toString(ts) FROM umetrics_events ORDER BY ts",
    )
    assert left == [("p", "2026-05-16 12:00:00.000000"), ("q", "2026-06-01 09:00:00.000000")]
    # Nothing older is left to remove: a second run removes nothing and drops nothing.
    again: dict[str, Any] = {}
    with app.app_context():
        assert prune(now=NOW, details=again)["events"] == 0
    assert again["events"]["partitions_dropped"] == [] and again["events"]["rows_deleted"] == 0


def test_the_prune_command_and_job_say_what_they_did(
    make_clickhouse_app: AppFactory, clickhouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_clickhouse_app(UMETRICS_RETENTION_EVENTS_DAYS=30)
    load(app, PRUNE_ROWS[:3])  # March and April only
    monkeypatch.setattr("flask_umetrics.pruning.utcnow", lambda: NOW)
    out = app.test_cli_runner().invoke(args=["umetrics", "prune"])
    assert out.exit_code == 0, out.output
    assert "events: 3 deleted" in out.stdout
    assert (
        "  events (ClickHouse, before 2026-05-16T12:00:00+00:00): 3 in dropped partitions "
        "202603, 202604, 0 by a lightweight delete" in out.stdout
    )
    load(app, [("p", "view", "2026-05-02T00:00:00")])
    from flask_umetrics.scheduler.jobs import _prune

    with app.app_context():
        summary = _prune(NOW)
    assert summary["events"] == 1
    assert summary["details"]["events"]["rows_deleted"] == 1
    assert summary["details"]["events"]["partitions_dropped"] == []
    assert ch_rows(clickhouse_url, "SELECT count() FROM umetrics_events") == [(0,)]


def test_pruning_off_leaves_clickhouse_events_alone(
    make_clickhouse_app: AppFactory, clickhouse_url: str
) -> None:
    app = make_clickhouse_app(UMETRICS_RETENTION_EVENTS_DAYS=0)
    load(app, PRUNE_ROWS)
    details: dict[str, Any] = {}
    with app.app_context():
        assert "events" not in prune(now=NOW + timedelta(days=10_000), details=details)
    assert details == {}
    assert ch_rows(clickhouse_url, "SELECT count() FROM umetrics_events") == [(7,)]
