"""DAU / WAU / MAU against a plain Python reference on random event sets (both backends)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_umetrics.queries.active import WINDOWS, active_user_series
from flask_umetrics.queries.context import report_context

from .events_data import at, clear_events, load

pytestmark = pytest.mark.event_stores

FIRST = date(2026, 3, 1)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    activity=st.lists(
        st.tuples(st.integers(0, 6), st.integers(-35, 20), st.booleans()), max_size=30
    ),
    shown_days=st.integers(1, 12),
    window=st.sampled_from(sorted(WINDOWS)),
)
def test_active_series_matches_reference(
    app: Flask, activity: list[tuple[int, int, bool]], shown_days: int, window: str
) -> None:
    clear_events(app)
    with app.app_context():
        rows = [
            (f"p{person}", "e", f"{FIRST + timedelta(days=day)}T12:00", None, is_active)
            for person, day, is_active in activity
        ]
        if rows:
            load(app, rows)
        ctx = report_context(
            date_from=at(f"{FIRST}T00:00"),
            date_to=at(f"{FIRST + timedelta(days=shown_days)}T00:00"),
        )
        result = [p.value for p in active_user_series(ctx, window=window).series]
    width = WINDOWS[window]
    expected = []
    for shown in range(shown_days):
        persons_active = {
            person
            for person, day, is_active in activity
            if is_active and shown - width < day <= shown
        }
        expected.append(len(persons_active))
    assert result == expected
