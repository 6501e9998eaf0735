"""GA4 Data API reports through the real client libraries against the local fake: exact rows,
the cache (hit, expiry), quota errors (stale answer, 429 when nothing is cached), both transports.

Expected numbers follow the fake's generator (see tests/ga4_fake_server.py): row ``s`` has
``sessions = 10 s``, ``activeUsers = 8 s``, ``newUsers = 3 s``, ``screenPageViews = 25 s``,
``keyEvents = 2 s``, ``engagementRate = 0.5 + s / 100``, ``averageSessionDuration = 60 + 1.5 s``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from flask import Flask
from google.analytics.data_v1alpha import types as alpha
from google.analytics.data_v1beta import types as data
from sqlalchemy import select

from flask_umetrics.db.tables import ga4_report_cache
from flask_umetrics.errors import APIError, ValidationError
from flask_umetrics.ga4 import reports
from flask_umetrics.state import current_state

from .conftest import AppFactory
from .ga4_env import fake_property_id as property_id
from .ga4_env import run_fake_report
from .ga4_fake_server import ALPHA_SERVICE, DATA_SERVICE, FakeGA4, running_fake

T0 = dt.datetime(2024, 3, 10, 12, 0, tzinfo=dt.timezone.utc)
MARCH = {"date_from": "2024-03-01", "date_to": "2024-03-03"}


def quota(calls: int) -> dict[str, dict[str, int]]:
    """The fake's quota answer after ``calls`` data calls on the property (10 tokens each)."""
    return {
        "tokens_per_day": {"consumed": 10, "remaining": 200000 - 10 * calls},
        "tokens_per_hour": {"consumed": 10, "remaining": 40000 - 10 * calls},
        "concurrent_requests": {"consumed": 0, "remaining": 10},
        "server_errors_per_project_per_hour": {"consumed": 0, "remaining": 10},
        "potentially_thresholded_requests_per_hour": {"consumed": 0, "remaining": 120},
        "tokens_per_project_per_hour": {"consumed": 10, "remaining": 14000 - 10 * calls},
    }


@pytest.fixture
def fake() -> Iterator[FakeGA4]:
    with running_fake() as server:
        server.add_account("100", "Acme")
        server.add_property("100", "Acme web")
        yield server


@pytest.fixture
def app(make_app: AppFactory, fake: FakeGA4) -> Flask:
    return make_app(
        UMETRICS_GA4_DATA_ENDPOINT=fake.grpc_endpoint,
        UMETRICS_GA4_GRPC_INSECURE=True,
        UMETRICS_GA4_RETRY_SECONDS=0.5,  # transient errors are retried this long
    )


def run(
    app: Flask, fake: FakeGA4, name: str, params: dict[str, Any], now: dt.datetime = T0
) -> dict[str, Any]:
    return run_fake_report(app, fake, name, params, now)


def test_traffic_report(app: Flask, fake: FakeGA4) -> None:
    result = run(app, fake, "traffic", MARCH)
    assert result == {
        "report": "traffic",
        "property_id": property_id(fake),
        "params": {"date_from": "2024-03-01", "date_to": "2024-03-03", "limit": 1000},
        # No property zone given: the app's UMETRICS_TIMEZONE (UTC in tests); no currency known.
        "time_zone": "UTC",
        "currency": None,
        "quota_warning": None,
        "metadata": None,
        "dimensions": ["date"],
        "metrics": list(reports.TRAFFIC_METRICS),
        "rows": [
            {
                "date": "2024-03-01",
                "sessions": 10,
                "activeUsers": 8,
                "newUsers": 3,
                "screenPageViews": 25,
                "engagementRate": 0.51,
                "averageSessionDuration": 61.5,
            },
            {
                "date": "2024-03-02",
                "sessions": 20,
                "activeUsers": 16,
                "newUsers": 6,
                "screenPageViews": 50,
                "engagementRate": 0.52,
                "averageSessionDuration": 63.0,
            },
            {
                "date": "2024-03-03",
                "sessions": 30,
                "activeUsers": 24,
                "newUsers": 9,
                "screenPageViews": 75,
                "engagementRate": 0.53,
                "averageSessionDuration": 64.5,
            },
        ],
        "totals": {
            "sessions": 60,
            "activeUsers": 48,
            "newUsers": 18,
            "screenPageViews": 150,
            "engagementRate": 0.52,
            "averageSessionDuration": 63.0,
        },
        "row_count": 3,
        "quota": quota(1),
        "fetched_at": "2024-03-10T12:00:00+00:00",
        "stale": False,
        "cached": False,
    }
    (sent,) = fake.requests("RunReport")
    assert sent == data.RunReportRequest(
        property=f"properties/{property_id(fake)}",
        dimensions=[data.Dimension(name="date")],
        metrics=[data.Metric(name=m) for m in reports.TRAFFIC_METRICS],
        date_ranges=[data.DateRange(start_date="2024-03-01", end_date="2024-03-03")],
        order_bys=[data.OrderBy(dimension=data.OrderBy.DimensionOrderBy(dimension_name="date"))],
        metric_aggregations=[data.MetricAggregation.TOTAL],
        keep_empty_rows=True,
        limit=1000,
        return_property_quota=True,
    )


def test_traffic_defaults_to_the_last_28_days(app: Flask, fake: FakeGA4) -> None:
    result = run(app, fake, "traffic", {})
    assert result["params"] == {"date_from": "2024-02-12", "date_to": "2024-03-10", "limit": 1000}
    assert len(result["rows"]) == 28
    assert result["rows"][-1]["sessions"] == 280


def test_seo_report_is_organic_only(app: Flask, fake: FakeGA4) -> None:
    result = run(app, fake, "seo", {**MARCH, "limit": "4"})
    assert result["rows"] == [
        {"landingPage": "/blog/launch", "sessionSourceMedium": "bing / organic", "sessions": 90,
         "engagementRate": 0.59},
        {"landingPage": "/blog/launch", "sessionSourceMedium": "google / organic", "sessions": 70,
         "engagementRate": 0.57},
        {"landingPage": "/pricing", "sessionSourceMedium": "bing / organic", "sessions": 60,
         "engagementRate": 0.56},
        {"landingPage": "/pricing", "sessionSourceMedium": "google / organic", "sessions": 40,
         "engagementRate": 0.54},
    ]  # fmt: skip
    assert (result["row_count"], result["totals"]) == (6, {"sessions": 300, "engagementRate": 0.55})
    (sent,) = fake.requests("RunReport")
    organic = sent.dimension_filter.filter
    assert (organic.field_name, organic.string_filter.value, organic.string_filter.match_type) == (
        "sessionMedium",
        "organic",
        data.Filter.StringFilter.MatchType.EXACT,
    )
    assert [(o.metric.metric_name, o.desc) for o in sent.order_bys] == [("sessions", True)]


def test_conversions_report_lists_key_events(app: Flask, fake: FakeGA4) -> None:
    result = run(app, fake, "conversions", MARCH)
    assert result["rows"] == [
        {"eventName": "purchase", "keyEvents": 6},
        {"eventName": "sign_up", "keyEvents": 4},
    ]
    assert (result["totals"], result["metrics"]) == ({"keyEvents": 10}, ["keyEvents"])
    (sent,) = fake.requests("RunReport")
    numeric = sent.metric_filter.filter.numeric_filter
    assert (sent.metric_filter.filter.field_name, numeric.operation, numeric.value.int64_value) == (
        "keyEvents",
        data.Filter.NumericFilter.Operation.GREATER_THAN,
        0,
    )


def test_realtime_report(app: Flask, fake: FakeGA4) -> None:
    result = run(app, fake, "realtime", {})
    assert result["rows"] == [
        {"unifiedScreenName": "Pricing", "country": "France", "activeUsers": 32},
        {"unifiedScreenName": "Pricing", "country": "Germany", "activeUsers": 24},
        {"unifiedScreenName": "Home", "country": "France", "activeUsers": 16},
        {"unifiedScreenName": "Home", "country": "Germany", "activeUsers": 8},
    ]
    assert (result["totals"], result["params"], result["quota"]) == (
        {"activeUsers": 80},
        {"limit": 50},
        quota(1),
    )
    assert fake.methods() == ["RunRealtimeReport"]
    # Realtime answers go stale after a minute, whatever the configured TTL.
    assert run(app, fake, "realtime", {}, now=T0 + dt.timedelta(seconds=59))["cached"] is True
    assert run(app, fake, "realtime", {}, now=T0 + dt.timedelta(seconds=60))["cached"] is False


def test_funnel_report(app: Flask, fake: FakeGA4) -> None:
    params = {**MARCH, "steps": "page_view, sign_up, purchase"}
    result = run(app, fake, "funnel", params)
    assert result["params"] == {
        **MARCH,
        "steps": ["page_view", "sign_up", "purchase"],
        "open": False,
    }
    assert result["dimensions"] == ["funnelStepName"]
    assert result["rows"] == [
        {"funnelStepName": "1. page_view", "activeUsers": 1000, "funnelStepCompletionRate": 0.5,
         "funnelStepAbandonments": 500, "funnelStepAbandonmentRate": 0.5},
        {"funnelStepName": "2. sign_up", "activeUsers": 500, "funnelStepCompletionRate": 0.5,
         "funnelStepAbandonments": 250, "funnelStepAbandonmentRate": 0.5},
        {"funnelStepName": "3. purchase", "activeUsers": 250, "funnelStepCompletionRate": 0.0,
         "funnelStepAbandonments": 0, "funnelStepAbandonmentRate": 0.0},
    ]  # fmt: skip
    assert (result["quota"], result["totals"]) == (quota(1), None)
    assert [c.service for c in fake.calls] == [ALPHA_SERVICE]
    (sent,) = fake.requests("RunFunnelReport")
    assert sent.funnel == alpha.Funnel(
        is_open_funnel=False,
        steps=[
            alpha.FunnelStep(
                name=event,
                filter_expression=alpha.FunnelFilterExpression(
                    funnel_event_filter=alpha.FunnelEventFilter(event_name=event)
                ),
            )
            for event in ("page_view", "sign_up", "purchase")
        ],
    )
    assert sent.return_property_quota is True


def test_cache_hit_within_ttl_and_refresh_after(app: Flask, fake: FakeGA4) -> None:
    first = run(app, fake, "traffic", MARCH)
    again = run(app, fake, "traffic", {**MARCH, "limit": 1000}, now=T0 + dt.timedelta(seconds=3599))
    assert fake.methods() == ["RunReport"]
    assert again == {**first, "cached": True}
    assert again["fetched_at"] == "2024-03-10T12:00:00+00:00"
    later = T0 + dt.timedelta(seconds=3600)
    refreshed = run(app, fake, "traffic", MARCH, now=later)
    assert fake.methods() == ["RunReport", "RunReport"]
    assert (refreshed["cached"], refreshed["fetched_at"], refreshed["quota"]) == (
        False,
        later.isoformat(),
        quota(2),
    )
    # Other parameters are another cache entry.
    run(app, fake, "traffic", {**MARCH, "limit": 2}, now=later)
    assert fake.methods() == ["RunReport"] * 3
    with app.app_context(), current_state().engine.connect() as connection:
        rows = connection.execute(
            select(
                ga4_report_cache.c.report, ga4_report_cache.c.params, ga4_report_cache.c.quota
            ).order_by(ga4_report_cache.c.id)
        ).all()
    key = {"property_id": property_id(fake), **MARCH}
    assert [(r.report, r.params, r.quota) for r in rows] == [
        ("traffic", {**key, "limit": 1000}, quota(2)),
        ("traffic", {**key, "limit": 2}, quota(3)),
    ]


def test_quota_error_serves_the_stale_answer(app: Flask, fake: FakeGA4) -> None:
    first = run(app, fake, "conversions", MARCH)
    fake.fail_next_data_calls(1)
    stale = run(app, fake, "conversions", MARCH, now=T0 + dt.timedelta(days=2))
    assert stale == {
        **first,
        "cached": True,
        "stale": True,
        "error": {
            "code": "ga4_quota",
            "message": "GA4 quota exhausted: Exhausted property tokens per hour for this property.",
            "retry_after": 30,
        },
    }
    assert fake.methods() == ["RunReport", "RunReport"]
    # The next successful call replaces the stale answer.
    fresh = run(app, fake, "conversions", MARCH, now=T0 + dt.timedelta(days=2))
    assert (fresh["stale"], fresh["cached"], fresh["quota"]) == (False, False, quota(2))


def test_quota_error_with_nothing_cached_is_a_429(app: Flask, fake: FakeGA4) -> None:
    fake.fail_next_data_calls(1, retry_seconds=None)
    with pytest.raises(APIError) as caught:
        run(app, fake, "funnel", {**MARCH, "steps": ["sign_up", "purchase"]})
    assert (caught.value.status, caught.value.code, caught.value.headers) == (
        429,
        "ga4_quota",
        {"Retry-After": "60"},
    )
    # UNAVAILABLE is retried with backoff; when it lasts, the caller is told when to come back.
    fake.fail_next_data_calls(100, code=grpc.StatusCode.UNAVAILABLE, retry_seconds=5)
    with pytest.raises(APIError) as caught:
        run(app, fake, "traffic", MARCH)
    assert (caught.value.status, caught.value.code, caught.value.headers) == (
        503,
        "ga4_unavailable",
        {"Retry-After": "5"},
    )
    assert fake.methods().count("RunReport") >= 2
    fake.failures.clear()


def test_other_google_errors_are_not_served_stale(app: Flask, fake: FakeGA4) -> None:
    run(app, fake, "traffic", MARCH)
    fake.fail_next_data_calls(1, code=grpc.StatusCode.PERMISSION_DENIED, retry_seconds=None)
    with pytest.raises(APIError) as caught:
        run(app, fake, "traffic", MARCH, now=T0 + dt.timedelta(hours=2))
    assert (caught.value.status, caught.value.code) == (403, "ga4_forbidden")


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("traffic", {"date_from": "2024-13-01"}, "date_from"),
        ("traffic", {"date_from": "2024-03-05", "date_to": "2024-03-01"}, "date_from"),
        ("traffic", {"date_from": "2014-01-01"}, "date_from"),
        ("seo", {"limit": 0}, "limit"),
        ("seo", {"limit": True}, "limit"),
        ("conversions", {"limit": "lots"}, "limit"),
        ("realtime", {"date_from": "2024-03-01"}, "date_from"),
        ("funnel", {"steps": ["sign_up"]}, "steps"),
        ("funnel", {"steps": ["sign up", "purchase"]}, "steps"),
        ("funnel", {"steps": ["a", "b"], "open": "maybe"}, "open"),
        ("pageviews", {}, "report"),
    ],
)
def test_parameters_are_validated_before_calling_google(
    app: Flask, fake: FakeGA4, name: str, params: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        run(app, fake, name, params)
    assert caught.value.field == field
    assert fake.calls == []


@pytest.fixture
def rest_app(make_app: AppFactory, fake: FakeGA4) -> Flask:
    return make_app(UMETRICS_GA4_TRANSPORT="rest", UMETRICS_GA4_DATA_ENDPOINT=fake.rest_url)


def test_rest_transport_reports_and_quota_errors(rest_app: Flask, fake: FakeGA4) -> None:
    traffic = run(rest_app, fake, "traffic", MARCH)
    assert [(r["date"], r["sessions"], r["engagementRate"]) for r in traffic["rows"]] == [
        ("2024-03-01", 10, 0.51),
        ("2024-03-02", 20, 0.52),
        ("2024-03-03", 30, 0.53),
    ]
    assert traffic["quota"] == quota(1)
    funnel = run(rest_app, fake, "funnel", {**MARCH, "steps": ["sign_up", "purchase"]})
    assert [(r["funnelStepName"], r["activeUsers"]) for r in funnel["rows"]] == [
        ("1. sign_up", 1000),
        ("2. purchase", 500),
    ]
    assert [(c.service, c.method, c.transport) for c in fake.calls] == [
        (DATA_SERVICE, "RunReport", "rest"),
        (ALPHA_SERVICE, "RunFunnelReport", "rest"),
    ]
    fake.fail_next_data_calls(1, retry_seconds=12)
    stale = run(rest_app, fake, "traffic", MARCH, now=T0 + dt.timedelta(days=1))
    assert (stale["stale"], stale["rows"], stale["error"]["code"]) == (
        True,
        traffic["rows"],
        "ga4_quota",
    )
    assert stale["error"]["retry_after"] == 12
    fake.fail_next_data_calls(1, retry_seconds=7)
    with pytest.raises(APIError) as caught:
        run(rest_app, fake, "seo", MARCH)
    assert (caught.value.status, caught.value.headers) == (429, {"Retry-After": "7"})
