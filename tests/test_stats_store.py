"""The stat store: record, latest, and series semantics at their boundaries (both backends)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from flask_umetrics import ValidationError, get_latest_stat, get_stat_series, record_stat
from flask_umetrics.db.tables import stat_readings
from flask_umetrics.state import current_state
from flask_umetrics.stats.store import get_recent_stats

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def values(series: list) -> list[float]:
    return [reading.value for reading in series]


def test_series_returns_most_recent_limit_in_ascending_order(app: Flask) -> None:
    with app.app_context():
        for i in range(10):  # inserted out of time order on purpose
            record_stat("mrr", float(i), captured_at=at((i * 7) % 10))
        series = get_stat_series("mrr", limit=3)
        # captured minutes: i*7 % 10 -> 0,7,4,1,8,5,2,9,6,3; the newest three are minutes 7, 8, 9
        assert [r.captured_at for r in series] == [at(7), at(8), at(9)]
        assert values(series) == [1.0, 4.0, 7.0]


def test_ties_in_captured_at_keep_insertion_order(app: Flask) -> None:
    with app.app_context():
        record_stat("users", 1, captured_at=at(0))
        for value in (10, 11, 12):
            record_stat("users", value, captured_at=at(5))
        assert values(get_stat_series("users", limit=10)) == [1.0, 10.0, 11.0, 12.0]
        # The limit cuts inside the tie: the two inserted last win, still in insertion order.
        assert values(get_stat_series("users", limit=2)) == [11.0, 12.0]
        assert get_latest_stat("users").value == 12.0  # type: ignore[union-attr]


def test_recent_stats_of_many_metrics_equal_each_series(app: Flask) -> None:
    with app.app_context():
        for i in range(10):
            record_stat("mrr", float(i), captured_at=at((i * 7) % 10))
        record_stat("users", 1, captured_at=at(0))
        for value in (10, 11, 12):
            record_stat("users", value, captured_at=at(5))
        record_stat("mrr", 99.0, scope_id="other", captured_at=at(20))
        recent = get_recent_stats(["mrr", "users", "missing"], limit=3)
        assert {key: values(series) for key, series in recent.items()} == {
            "mrr": [1.0, 4.0, 7.0],
            "users": [10.0, 11.0, 12.0],
        }
        for key in ("mrr", "users"):
            assert recent[key] == get_stat_series(key, limit=3)
        assert get_recent_stats([], limit=3) == {}
        with pytest.raises(ValidationError) as caught:
            get_recent_stats(["mrr"], limit=0)
        assert caught.value.field == "limit"


def test_since_is_inclusive_and_until_exclusive(app: Flask) -> None:
    with app.app_context():
        for minute in range(6):
            record_stat("m", minute, captured_at=at(minute))
        assert values(get_stat_series("m", since=at(2), until=at(4))) == [2.0, 3.0]
        assert values(get_stat_series("m", since=at(2), until=at(4), limit=1)) == [3.0]
        assert values(get_stat_series("m", since=at(6))) == []
        assert values(get_stat_series("m", until=at(0))) == []
        assert values(get_stat_series("m", until=at(1), since=at(0))) == [0.0]


def test_limit_larger_than_data_returns_everything(app: Flask) -> None:
    with app.app_context():
        for minute in range(4):
            record_stat("m", minute * 1.5, captured_at=at(minute))
        assert values(get_stat_series("m", limit=1000)) == [0.0, 1.5, 3.0, 4.5]
        assert get_stat_series("nothing-here", limit=5) == []
        assert get_latest_stat("nothing-here") is None


def test_scopes_and_metrics_are_separate(app: Flask) -> None:
    with app.app_context():
        record_stat("m", 1, scope_id="a", captured_at=at(0))
        record_stat("m", 2, scope_id="b", captured_at=at(1))
        record_stat("other", 3, scope_id="a", captured_at=at(2))
        assert values(get_stat_series("m", scope_id="a")) == [1.0]
        assert values(get_stat_series("m", scope_id="b")) == [2.0]
        assert get_stat_series("m") == []  # the default scope has nothing


def test_timestamps_are_stored_in_utc(app: Flask) -> None:
    berlin = timezone(timedelta(hours=1))
    with app.app_context():
        record_stat("m", 1, captured_at=datetime(2026, 1, 1, 13, 0, tzinfo=berlin))
        record_stat("m", 2, captured_at=datetime(2026, 1, 1, 12, 30))  # naive = UTC
        series = get_stat_series("m")
        assert [r.captured_at for r in series] == [
            datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc),
            datetime(2026, 1, 1, 12, 30, tzinfo=timezone.utc),
        ]


def test_record_returns_the_reading_and_defaults_to_now(app: Flask) -> None:
    with app.app_context():
        before = datetime.now(timezone.utc)
        reading = record_stat("m", 3)
        assert reading.value == 3.0 and reading.scope_id == "default"
        assert before <= reading.captured_at <= datetime.now(timezone.utc)
        assert get_latest_stat("m") == reading


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"metric_key": "", "value": 1}, "metric_key"),
        ({"metric_key": "has space", "value": 1}, "metric_key"),
        ({"metric_key": "x" * 129, "value": 1}, "metric_key"),
        ({"metric_key": "m", "value": float("nan")}, "value"),
        ({"metric_key": "m", "value": float("inf")}, "value"),
        ({"metric_key": "m", "value": True}, "value"),
        ({"metric_key": "m", "value": "12"}, "value"),
        ({"metric_key": "m", "value": 1, "scope_id": "bad scope"}, "scope_id"),
        ({"metric_key": "m", "value": 1, "captured_at": "2026-01-01"}, "captured_at"),
    ],
)
def test_record_rejects_bad_input_naming_the_field(app: Flask, kwargs: dict, field: str) -> None:
    with app.app_context():
        with pytest.raises(ValidationError) as error:
            record_stat(**kwargs)
        assert error.value.field == field
        assert get_stat_series("m") == []


def test_series_rejects_bad_limit(app: Flask) -> None:
    with app.app_context(), pytest.raises(ValidationError) as error:
        get_stat_series("m", limit=0)
    assert error.value.field == "limit"


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    minutes=st.lists(st.integers(min_value=0, max_value=20), max_size=25),
    limit=st.integers(min_value=1, max_value=30),
    since=st.one_of(st.none(), st.integers(min_value=0, max_value=20)),
    until=st.one_of(st.none(), st.integers(min_value=0, max_value=21)),
)
def test_series_matches_a_reference_model(
    app: Flask, minutes: list[int], limit: int, since: int | None, until: int | None
) -> None:
    """Series == the last ``limit`` of the (time, insertion)-sorted readings in [since, until)."""
    with app.app_context():
        with current_state().engine.begin() as connection:
            connection.execute(delete(stat_readings))
        for index, minute in enumerate(minutes):
            record_stat("p", index, captured_at=at(minute))
        kept = [
            (minute, index)
            for index, minute in enumerate(minutes)
            if (since is None or minute >= since) and (until is None or minute < until)
        ]
        expected = [float(index) for _, index in sorted(kept)[-limit:]] if kept else []
        series = get_stat_series(
            "p",
            limit=limit,
            since=None if since is None else at(since),
            until=None if until is None else at(until),
        )
        assert values(series) == expected
