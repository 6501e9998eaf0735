"""Events carry their person on ClickHouse; merges leave overrides, and the squash rewrites them.

The same answers in every state: persons read through the distinct-id map while a scope has an
override, read as stored once the squash has rewritten the events, and on the SQL store."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask

from flask_umetrics import identify, track
from flask_umetrics.engines.clickhouse.client import get_client, parse_clickhouse_url
from flask_umetrics.events.privacy import anonymize_person, delete_person

from .conftest import AppFactory

DAY = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
    days=2
)


def rows(url: str, sql: str, **parameters: Any) -> list[tuple[Any, ...]]:
    client = get_client(parse_clickhouse_url(url))
    return [tuple(row) for row in client.query(sql, parameters=parameters).result_rows]


def stored_persons(url: str) -> dict[str, set[int]]:
    """distinct id -> the person ids stored on its events."""
    found: dict[str, set[int]] = {}
    for distinct_id, person_id in rows(url, "SELECT distinct_id, person_id FROM umetrics_events"):
        found.setdefault(distinct_id, set()).add(person_id)
    return found


def overrides(url: str) -> list[tuple[str, int]]:
    return rows(
        url,
        "SELECT distinct_id, person_id FROM umetrics_person_overrides FINAL ORDER BY distinct_id",
    )


@pytest.fixture
def app(make_clickhouse_app: AppFactory) -> Flask:
    return make_clickhouse_app(UMETRICS_TRACK_SYNC=True)


def _track(distinct_id: str, event: str, minute: int) -> None:
    track(event, distinct_id=distinct_id, timestamp=DAY + timedelta(hours=9, minutes=minute))


def _history() -> None:
    """anon-1 browses, then signs up as user-1 and buys; other only browses."""
    _track("anon-1", "viewed", 0)
    _track("anon-1", "viewed", 1)
    _track("user-1", "viewed", 5)
    _track("user-1", "bought", 6)
    _track("other", "viewed", 2)


def answers() -> dict[str, Any]:
    """Reports that count persons, over the day of the events."""
    from flask_umetrics.queries.active import active_user_series
    from flask_umetrics.queries.context import report_context
    from flask_umetrics.queries.funnel import FunnelStep, funnel
    from flask_umetrics.queries.sessions import session_summary
    from flask_umetrics.queries.trends import trends

    ctx = report_context(date_from=DAY, date_to=DAY + timedelta(days=1))
    steps = [FunnelStep("viewed"), FunnelStep("bought")]
    return {
        "unique": [
            p.value
            for s in trends(ctx, event="viewed", math="unique_persons").results
            for p in s.series
        ],
        "dau": [p.value for p in active_user_series(ctx, window="dau").series],
        "funnel": [(s.count, s.median_seconds_from_previous) for s in funnel(ctx, steps).steps],
        "sessions": session_summary(ctx).count,
    }


MERGED = {"unique": [2], "dau": [2], "funnel": [(2, None), (1, 360.0)], "sessions": 2}
APART = {"unique": [3], "dau": [3], "funnel": [(3, None), (1, 60.0)], "sessions": 3}


def test_events_carry_their_person_and_read_without_overrides(
    app: Flask, clickhouse_url: str
) -> None:
    from flask_umetrics.engines.clickhouse.overrides import has_overrides

    with app.app_context():
        _history()
        assert not has_overrides("default")
        assert answers() == APART
    persons = stored_persons(clickhouse_url)
    assert all(len(ids) == 1 and 0 not in ids for ids in persons.values())
    assert len({next(iter(ids)) for ids in persons.values()}) == 3
    assert overrides(clickhouse_url) == []


def test_a_merge_leaves_overrides_and_the_squash_rewrites_the_events(
    app: Flask, clickhouse_url: str
) -> None:
    from flask_umetrics.engines.clickhouse.overrides import has_overrides, squash

    with app.app_context():
        _history()
        anon = next(iter(stored_persons(clickhouse_url)["anon-1"]))
        user = identify("user-1", anon_id="anon-1")
        assert anon != user
        # The events keep the person they were stored with; the overrides say where they went.
        assert stored_persons(clickhouse_url)["anon-1"] == {anon}
        assert overrides(clickhouse_url) == [("anon-1", user), ("user-1", user)]
        assert has_overrides("default")
        assert answers() == MERGED  # read through the map
        store = app.extensions["umetrics"].event_store
        young = squash(store)  # the overrides are seconds old: left for the next run
        assert young.to_dict() == {"distinct_ids": 0, "scopes": 0, "events": 0, "left": 2}
        result = squash(store, min_age_seconds=0)
        assert result.to_dict() == {"distinct_ids": 2, "scopes": 1, "events": 4, "left": 0}
        assert overrides(clickhouse_url) == []
        assert not has_overrides("default")
        assert stored_persons(clickhouse_url)["anon-1"] == {user}
        assert answers() == MERGED  # read as stored: the same answers
        # A later event of the old anonymous id is stored as the merged person's.
        _track("anon-1", "viewed", 7)
        assert stored_persons(clickhouse_url)["anon-1"] == {user}
        assert not has_overrides("default")


def test_a_merge_newer_than_the_squash_cutoff_stays(app: Flask, clickhouse_url: str) -> None:
    """An override written after the squash read its cutoff keeps its row: the delete only
    removes versions at or below the cutoff."""
    from flask_umetrics.engines.clickhouse import overrides as module

    with app.app_context():
        _history()
        user = identify("user-1", anon_id="anon-1")
        store = app.extensions["umetrics"].event_store
        client = store.client
        real = client.command

        def merge_in_between(sql: str, *args: Any, **kwargs: Any) -> Any:
            answer = real(sql, *args, **kwargs)
            if sql.startswith("ALTER TABLE"):  # after the rewrite, before the delete
                identify("user-1", anon_id="late-anon")
            return answer

        client.command = merge_in_between  # type: ignore[method-assign]
        try:
            module.squash(store, min_age_seconds=0)
        finally:
            del client.command
        left = dict(overrides(clickhouse_url))
        assert left == {"anon-1": user, "late-anon": user, "user-1": user}
        assert answers() == MERGED


def test_a_resent_event_stored_for_a_rolled_back_person_gets_an_override(
    app: Flask, clickhouse_url: str
) -> None:
    """A batch's events landed in ClickHouse but its SQL transaction (the new person) rolled
    back: the retry creates the person again, finds the events stored with the lost id, and
    gives the distinct id an override to the new person."""
    from flask_umetrics.engines.clickhouse.overrides import squash
    from flask_umetrics.engines.clickhouse.store import EVENT_COLUMNS
    from flask_umetrics.events.validation import to_micros

    client = get_client(parse_clickhouse_url(clickhouse_url))
    ts = to_micros(DAY + timedelta(hours=9))
    client.insert(
        "umetrics_events",
        [["default", "lost-1", "viewed", "ghost", ts, None, True, "{}", 987654, 1]],
        column_names=EVENT_COLUMNS,
    )
    with app.app_context():
        track("viewed", distinct_id="ghost", uuid="lost-1", timestamp=DAY + timedelta(hours=9))
        person = identify("ghost")
        assert overrides(clickhouse_url) == [("ghost", person)]
        assert stored_persons(clickhouse_url)["ghost"] == {987654}
        assert squash(app.extensions["umetrics"].event_store, min_age_seconds=0).events == 1
        assert stored_persons(clickhouse_url)["ghost"] == {person}


def test_deleting_and_anonymising_merged_persons_leave_no_override(
    app: Flask, clickhouse_url: str
) -> None:
    with app.app_context():
        _history()
        user = identify("user-1", anon_id="anon-1")
        _track("gone", "viewed", 3)
        _track("gone-too", "viewed", 4)
        identify("gone", anon_id="gone-too")
        delete_person("gone")
        assert "gone" not in dict(overrides(clickhouse_url))
        anonymize_person("user-1")
        # The renamed events are stored as the person they belong to now.
        assert not overrides(clickhouse_url)
        persons = stored_persons(clickhouse_url)
        assert set(persons) == {"other", *[d for d in persons if d.startswith("anon-")]}
        renamed = [ids for d, ids in persons.items() if d != "other"]
        assert renamed and all(ids == {user} for ids in renamed)
        assert answers() == MERGED


def test_upgrading_from_version_3_reads_old_events_through_overrides(
    make_clickhouse_app: AppFactory, empty_clickhouse_url: str
) -> None:
    """Events stored before person_id existed carry 0: the upgrade copies the map into the
    overrides, so they count as before; the squash then gives them their person."""
    from flask_umetrics.engines.clickhouse import schema
    from flask_umetrics.engines.clickhouse.overrides import squash

    client = get_client(parse_clickhouse_url(empty_clickhouse_url))
    layout = schema.Layout()
    for statement in schema._version_table(layout):
        client.command(statement)
    for migration in schema.MIGRATIONS[:3]:
        for statement in [*migration.statements(layout), schema._record(migration)]:
            client.command(statement)
    us = int((DAY + timedelta(hours=9)).timestamp() * 1_000_000)
    client.command(
        "INSERT INTO umetrics_events (scope_id, uuid, event, distinct_id, ts, active, "
        "properties, seq) VALUES "
        f"('default', 'u1', 'viewed', 'a', fromUnixTimestamp64Micro({us}), 1, '{{}}', 1), "
        f"('default', 'u2', 'viewed', 'b', fromUnixTimestamp64Micro({us + 1}), 1, '{{}}', 2), "
        f"('default', 'u3', 'viewed', 'c', fromUnixTimestamp64Micro({us + 2}), 1, '{{}}', 3)"
    )
    client.command(
        "INSERT INTO umetrics_person_distinct_ids VALUES "
        "('default', 'a', 11, 0, 5), ('default', 'b', 11, 0, 5), ('default', 'c', 12, 0, 5)"
    )
    app = make_clickhouse_app(UMETRICS_CLICKHOUSE_URL=empty_clickhouse_url)
    assert schema.current_version(client) == schema.HEAD
    with app.app_context():
        before = answers()
        assert before["unique"] == [2]
        assert len(overrides(empty_clickhouse_url)) == 3
        assert squash(app.extensions["umetrics"].event_store, min_age_seconds=0).events == 3
        assert overrides(empty_clickhouse_url) == []
        assert answers() == before
    assert stored_persons(empty_clickhouse_url) == {"a": {11}, "b": {11}, "c": {12}}


def test_the_squash_command_and_job(app: Flask, clickhouse_url: str) -> None:
    from flask_umetrics.scheduler.jobs import configured_jobs

    with app.app_context():
        _history()
        identify("user-1", anon_id="anon-1")
        jobs = {job.key: job for job in configured_jobs(app.extensions["umetrics"])}
    assert "clickhouse-squash" in jobs
    result = app.test_cli_runner().invoke(
        args=["umetrics", "clickhouse", "squash", "--min-age", "0"]
    )
    assert result.exit_code == 0, result.output
    assert "squashed 2 distinct ids in 1 scopes (4 events rewritten); 0 overrides" in result.output
    assert overrides(clickhouse_url) == []


def test_the_squash_job_is_only_configured_for_clickhouse(make_app: AppFactory) -> None:
    from flask_umetrics.scheduler.jobs import configured_jobs

    app = make_app()
    assert "clickhouse-squash" not in {j.key for j in configured_jobs(app.extensions["umetrics"])}
    refused = app.test_cli_runner().invoke(args=["umetrics", "clickhouse", "squash"])
    assert refused.exit_code != 0 and "not ClickHouse" in refused.output
