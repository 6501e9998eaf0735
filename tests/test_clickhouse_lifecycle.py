"""Privacy and lifecycle on the ClickHouse event store: the person export and deletion, retention
pruning by partition drop plus a lightweight delete. The same data and expected answers as the
SQL stores' tests (tests/test_privacy.py). Event export and import are tests/test_export_import.py
itself, which runs on all three stores."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask

from flask_umetrics import delete_person
from flask_umetrics.engines.clickhouse.client import get_client, parse_clickhouse_url
from flask_umetrics.events.export import export_events
from flask_umetrics.events.privacy import export_person
from flask_umetrics.pruning import prune

from . import test_privacy as sql_privacy
from .conftest import AppFactory, allow_all
from .events_data import load


def ch_rows(url: str, sql: str, **parameters: Any) -> list[tuple[Any, ...]]:
    client = get_client(parse_clickhouse_url(url))
    return [tuple(row) for row in client.query(sql, parameters=parameters).result_rows]


@pytest.fixture
def app(make_clickhouse_app: AppFactory) -> Flask:
    from flask_umetrics import UMetrics

    extension = UMetrics()
    allow_all(extension)
    return make_clickhouse_app(extension)


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
