"""``flask umetrics clickhouse backfill``: an install's SQL events (SQLite or PostgreSQL) copied
into ClickHouse exactly once, resumable after an interruption, idempotent on a re-run; persons
and distinct ids copied where ClickHouse has none; a person deleted after the switch is never
copied back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask

from flask_umetrics import delete_person, identify
from flask_umetrics.engines.clickhouse import upgrade_schema
from flask_umetrics.engines.clickhouse.backfill import backfill, progress_of
from flask_umetrics.engines.clickhouse.client import get_client, parse_clickhouse_url
from flask_umetrics.state import current_state

from .conftest import AppFactory
from .events_data import load, stored_events

#: 23 events: 3 scopes, properties, an inactive one, session ids, microsecond timestamps, ties.
ROWS = [
    (
        f"u{i % 4}",
        ("view", "signup", "buy")[i % 3],
        f"2026-0{1 + i % 5}-0{1 + i % 9}T10:00:0{i % 3}.00{i}",
        {"n": i, "nested": {"k": [i]}} if i % 2 else None,
        i % 7 != 0,
        f"s{i % 2}" if i % 3 else None,
    )
    for i in range(17)
]
OTHER_ROWS = [("o1", "view", "2026-02-01T00:00:00"), ("o2", "view", "2026-02-01T00:00:00")]
N = len(ROWS) + len(OTHER_ROWS) * 2 + 2


def ch_rows(url: str, sql: str, **parameters: Any) -> list[tuple[Any, ...]]:
    client = get_client(parse_clickhouse_url(url))
    return [tuple(row) for row in client.query(sql, parameters=parameters).result_rows]


def ch_events(url: str) -> list[tuple[Any, ...]]:
    rows = ch_rows(
        url,
        "SELECT seq, scope_id, uuid, event, distinct_id, toUnixTimestamp64Micro(ts), session_id, "
        "active, properties FROM umetrics_events ORDER BY seq",
    )
    return [(*row[:8], json.loads(row[8])) for row in rows]


def sql_events(app: Flask) -> list[tuple[Any, ...]]:
    """The install's events (on the SQL store) as :func:`ch_events` reads them: by id."""
    with app.app_context():
        return sorted(tuple(event) for event in stored_events())


@pytest.fixture
def installed(make_app: AppFactory) -> Flask:
    """An install on the SQL store with N events, a merged person, three scopes."""
    app = make_app()
    load(app, ROWS)
    load(app, OTHER_ROWS, scope_id="other")
    load(app, OTHER_ROWS, scope_id="third")
    load(app, [("anon-9", "view", "2026-03-03T03:03:03"), ("u1", "view", "2026-03-03T03:03:04")])
    with app.app_context():
        identify("u1", anon_id="anon-9", traits={"plan": "pro"})  # merges anon-9's person into u1's
    return app


@pytest.fixture
def switched(installed: Flask, make_app: AppFactory, clickhouse_url: str) -> Flask:
    """The same SQL database, now with UMETRICS_EVENT_STORE=clickhouse (schema migrated)."""
    app = make_app(UMETRICS_EVENT_STORE="clickhouse", UMETRICS_CLICKHOUSE_URL=clickhouse_url)
    upgrade_schema(app.extensions["umetrics"].event_store)
    return app


def run(app: Flask, **kwargs: Any) -> Any:
    with app.app_context():
        state = current_state()
        return backfill(state.event_store, state.engine, **kwargs)  # type: ignore[arg-type]


def test_backfill_copies_every_event_exactly_with_its_id_as_seq(
    installed: Flask, switched: Flask, clickhouse_url: str
) -> None:
    expected = sql_events(installed)
    assert len(expected) == N
    report = run(switched, batch_size=7)
    assert (report.read, report.copied, report.already_there, report.skipped) == (N, N, 0, 0)
    assert (report.resumed_after, report.last_id) == (0, expected[-1][0])
    assert ch_events(clickhouse_url) == expected  # every column, seq = events.id
    with switched.app_context():
        state = current_state()
        assert progress_of(state.event_store) == (expected[-1][0], N, 0)  # type: ignore[arg-type]
    # Persons and the distinct-id map: the merge is there (anon-9 -> u1's person).
    mapped = dict(
        ch_rows(
            clickhouse_url,
            "SELECT distinct_id, argMax(person_id, version) FROM umetrics_person_distinct_ids "
            "WHERE scope_id = 'default' GROUP BY distinct_id",
        )
    )
    assert mapped["anon-9"] == mapped["u1"] and len(set(mapped.values())) == 4
    assert report.distinct_ids_copied == 5 + 2 + 2 and report.persons_copied == 4 + 2 + 2


def test_an_interrupted_backfill_resumes_and_stores_each_event_once(
    installed: Flask, switched: Flask, clickhouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run(switched, batch_size=5, max_batches=2)  # stopped on purpose half-way
    assert (first.read, first.copied) == (10, 10)
    assert len(ch_events(clickhouse_url)) == 10
    # A crash after a batch was stored but before its progress was recorded.
    from flask_umetrics.engines.clickhouse import backfill as module

    real_insert_progress = module.BACKFILL_PROGRESS

    class Crash(Exception):
        pass

    store = switched.extensions["umetrics"].event_store
    real_insert = type(store.client).insert

    def insert(self: Any, table: str, *args: Any, **kwargs: Any) -> Any:
        if table == real_insert_progress:
            raise Crash
        return real_insert(self, table, *args, **kwargs)

    monkeypatch.setattr(type(store.client), "insert", insert)
    with pytest.raises(Crash):
        run(switched, batch_size=5)
    monkeypatch.undo()
    assert len(ch_events(clickhouse_url)) == 15  # the third batch is stored, not recorded
    resumed = run(switched, batch_size=5)
    assert resumed.resumed_after == first.last_id
    assert (resumed.read, resumed.copied, resumed.already_there) == (N - 10, N - 15, 5)
    assert ch_events(clickhouse_url) == sql_events(installed)
    again = run(switched, batch_size=5)  # a re-run: nothing to read, nothing stored
    assert (again.read, again.copied, again.persons_copied, again.distinct_ids_copied) == (
        0,
        0,
        0,
        0,
    )
    assert ch_rows(clickhouse_url, "SELECT count(), uniqExact(uuid) FROM umetrics_events") == [
        (N, N)
    ]


def test_a_wiped_progress_copies_nothing_twice(
    installed: Flask, switched: Flask, clickhouse_url: str
) -> None:
    run(switched, batch_size=100)
    get_client(parse_clickhouse_url(clickhouse_url)).command(
        "TRUNCATE TABLE umetrics_backfill_progress"
    )
    again = run(switched, batch_size=6)
    assert (again.read, again.copied, again.already_there) == (N, 0, N)
    assert ch_rows(clickhouse_url, "SELECT count() FROM umetrics_events") == [(N,)]


def test_a_person_deleted_after_the_switch_is_not_copied_back(
    installed: Flask, switched: Flask, clickhouse_url: str
) -> None:
    with switched.app_context():
        identify("u2", traits={"plan": "team"})  # mirrored live, newer than the copy
        assert delete_person("o1", scope_id="other").found
    report = run(switched, batch_size=4)
    assert (report.copied, report.skipped) == (N - 1, 1)
    assert ch_rows(
        clickhouse_url,
        "SELECT count() FROM umetrics_events WHERE scope_id = 'other' AND distinct_id = 'o1'",
    ) == [(0,)]
    # The live mirror of u2 (a clock version) wins over the copied row (version 1).
    props = ch_rows(
        clickhouse_url,
        "SELECT argMax(properties, version) FROM umetrics_persons WHERE id = "
        "(SELECT argMax(person_id, version) FROM umetrics_person_distinct_ids "
        "WHERE scope_id = 'default' AND distinct_id = 'u2')",
    )
    assert json.loads(props[0][0]) == {"plan": "team"}


def test_the_cli_reports_progress_and_what_it_did(
    installed: Flask, switched: Flask, clickhouse_url: str
) -> None:
    runner = switched.test_cli_runner()
    first = runner.invoke(
        args=["umetrics", "clickhouse", "backfill", "--batch-size", "10", "--max-batches", "1"]
    )
    assert first.exit_code == 0, first.output
    assert "events: up to id" in first.stderr and "read 10, copied 10" in first.stderr
    assert first.stdout.strip().endswith("not finished: run it again")
    rest = runner.invoke(args=["umetrics", "clickhouse", "backfill"])
    assert rest.exit_code == 0, rest.output
    assert f"read {N - 10}, copied {N - 10}, already there 0, skipped (no person) 0" in rest.stdout
    assert rest.stdout.strip().endswith("done: every SQL event is copied")
    refused = installed.test_cli_runner().invoke(args=["umetrics", "clickhouse", "backfill"])
    assert refused.exit_code == 1 and "the event store is not ClickHouse" in refused.output
