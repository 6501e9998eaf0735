"""Google's real failure modes through the real client libraries against the local fake: what a
transient error, a deadline, a bad request, a missing property, a disabled API, a Viewer
provisioning and a failing token endpoint each give the caller.

Expected answers: transient codes (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL) are retried with
backoff; when retries run out a cached answer is served stale (DEADLINE_EXCEEDED / UNAVAILABLE,
as for quota), else a 5xx naming GA4; INVALID_ARGUMENT is a 400 and NOT_FOUND a 404, never
retried; PERMISSION_DENIED (API disabled, Viewer role) a 403 with Google's reason; only
``invalid_grant`` from the token endpoint asks to reconnect.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from flask import Flask
from google.auth.credentials import AnonymousCredentials
from google.oauth2.credentials import Credentials as OAuthCredentials

from flask_umetrics.errors import APIError
from flask_umetrics.ga4 import admin, reports
from flask_umetrics.state import current_state

from .conftest import AppFactory
from .ga4_env import fake_property_id as property_id
from .ga4_env import run_fake_report
from .ga4_fake_server import FakeGA4, running_fake

T0 = dt.datetime(2024, 3, 10, 12, 0, tzinfo=dt.timezone.utc)
MARCH = {"date_from": "2024-03-01", "date_to": "2024-03-03"}
SERVICE_DISABLED = (
    "Google Analytics Data API has not been used in project 123 before or it is disabled. "
    "Enable it by visiting https://console.developers.google.com/apis/api/"
    "analyticsdata.googleapis.com/overview?project=123 then retry."
)


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
        UMETRICS_GA4_ADMIN_ENDPOINT=fake.grpc_endpoint,
        UMETRICS_GA4_GRPC_INSECURE=True,
        UMETRICS_GA4_RETRY_SECONDS=1.0,
        UMETRICS_GA4_TIMEOUT=5.0,
        UMETRICS_GA4_CACHE_TTL=60,
    )


def run(app: Flask, fake: FakeGA4, params: dict[str, Any], now: dt.datetime = T0) -> Any:
    return run_fake_report(app, fake, "traffic", params, now)


def refused(app: Flask, fake: FakeGA4, params: dict[str, Any] = MARCH) -> APIError:
    with pytest.raises(APIError) as caught:
        run(app, fake, params)
    return caught.value


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
    ],
)
def test_a_transient_error_is_retried_and_answered(
    app: Flask, fake: FakeGA4, code: grpc.StatusCode
) -> None:
    fake.fail_next_data_calls(2, code, retry_seconds=None, message="Backend hiccup")
    answer = run(app, fake, MARCH)
    assert (answer["stale"], answer["cached"]) == (False, False)
    assert [r["sessions"] for r in answer["rows"]] == [10, 20, 30]
    assert fake.methods() == ["RunReport"] * 3


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        (grpc.StatusCode.DEADLINE_EXCEEDED, 504, "ga4_timeout"),
        (grpc.StatusCode.UNAVAILABLE, 503, "ga4_unavailable"),
    ],
)
def test_when_retries_run_out_the_cached_answer_is_served_stale(
    app: Flask, fake: FakeGA4, code: grpc.StatusCode, status: int, error: str
) -> None:
    first = run(app, fake, MARCH)
    later = T0 + dt.timedelta(hours=2)  # past the cache TTL: Google is asked again
    fake.fail_next_data_calls(200, code, retry_seconds=None, message="Deadline exceeded")
    stale = run(app, fake, MARCH, now=later)
    calls = len(fake.methods())
    assert calls >= 3  # retried with backoff before giving up
    assert (stale["stale"], stale["cached"], stale["rows"]) == (True, True, first["rows"])
    assert stale["error"]["code"] == error
    # Nothing cached for another range: the error itself, with its HTTP status.
    fake.failures.clear()
    fake.fail_next_data_calls(200, code, retry_seconds=None, message="Deadline exceeded")
    other = refused(app, fake, {"date_from": "2024-02-01", "date_to": "2024-02-02"})
    assert (other.status, other.code) == (status, error)
    fake.failures.clear()


def test_internal_errors_without_a_cache_are_a_502(app: Flask, fake: FakeGA4) -> None:
    fake.fail_next_data_calls(200, grpc.StatusCode.INTERNAL, retry_seconds=None, message="oops")
    error = refused(app, fake)
    assert (error.status, error.code) == (502, "ga4_error")
    fake.failures.clear()


@pytest.mark.parametrize(
    ("code", "message", "status", "error"),
    [
        (
            grpc.StatusCode.INVALID_ARGUMENT,
            "Field sessionz is not a valid metric.",
            400,
            "ga4_invalid_request",
        ),
        (grpc.StatusCode.NOT_FOUND, "Property properties/1 not found.", 404, "ga4_not_found"),
        (grpc.StatusCode.PERMISSION_DENIED, SERVICE_DISABLED, 403, "ga4_forbidden"),
    ],
)
def test_a_bad_request_a_missing_property_or_a_disabled_api_is_named_and_not_retried(
    app: Flask, fake: FakeGA4, code: grpc.StatusCode, message: str, status: int, error: str
) -> None:
    fake.fail_next_data_calls(1, code, retry_seconds=None, message=message)
    caught = refused(app, fake)
    assert (caught.status, caught.code, caught.message) == (status, error, message)
    assert fake.methods() == ["RunReport"]


def test_a_viewer_trying_to_provision_gets_googles_reason(app: Flask, fake: FakeGA4) -> None:
    fake.fail_next_admin_calls(
        1,
        grpc.StatusCode.PERMISSION_DENIED,
        "The caller does not have permission",
    )
    with app.app_context(), pytest.raises(APIError) as caught:
        admin.provision(
            AnonymousCredentials(),
            current_state().settings,
            account_id="100",
            display_name="New web",
            site_url="https://new.example",
            time_zone="UTC",
            currency="EUR",
        )
    assert (caught.value.status, caught.value.code) == (403, "ga4_forbidden")
    assert caught.value.message == "The caller does not have permission"
    assert fake.methods() == ["ListProperties"]


def oauth_credentials(fake: FakeGA4) -> OAuthCredentials:
    return OAuthCredentials(
        token=None,
        refresh_token="1//refresh-secret",
        token_uri=f"{fake.rest_url}/token",
        client_id="client-id",
        client_secret="client-secret",
    )


def test_only_invalid_grant_asks_to_reconnect(app: Flask, fake: FakeGA4) -> None:
    with app.app_context():
        settings = current_state().settings
        # Google's token endpoint fails three times in a row (google-auth retries twice).
        fake.token_answers = [(503, {"error": "backend_error"})] * 3
        with pytest.raises(APIError) as transient:
            admin.list_account_summaries(oauth_credentials(fake), settings)
        assert (transient.value.status, transient.value.code) == (503, "ga4_token_unavailable")
        assert fake.token_requests == 3 and fake.calls == []

        # One 503, then a token: google-auth's retry gets through.
        fake.token_answers = [
            (503, {"error": "backend_error"}),
            (200, {"access_token": "fake-access-token", "expires_in": 3600}),
        ]
        assert [
            a.account_id for a in admin.list_account_summaries(oauth_credentials(fake), settings)
        ] == ["100"]

        fake.token_answers = [(400, {"error": "invalid_client", "error_description": "x"})]
        with pytest.raises(APIError) as misconfigured:
            admin.list_account_summaries(oauth_credentials(fake), settings)
        assert (misconfigured.value.status, misconfigured.value.code) == (403, "ga4_forbidden")
        assert "invalid_client" in misconfigured.value.message
        assert "reconnect" not in misconfigured.value.message

        with pytest.raises(APIError) as revoked:  # the fake's default: invalid_grant
            admin.list_account_summaries(oauth_credentials(fake), settings)
        assert (revoked.value.status, revoked.value.code) == (403, "ga4_reconnect")
        assert "reconnect GA4" in revoked.value.message
        for error in (transient.value, misconfigured.value, revoked.value):
            assert "1//refresh-secret" not in error.message and "client-secret" not in error.message


def test_response_metadata_and_a_low_quota_are_in_the_answer(app: Flask, fake: FakeGA4) -> None:
    from google.analytics.data_v1beta import types as data

    from flask_umetrics.admin.pages.ga4 import quality_notes

    fake.report_metadata = data.ResponseMetaData(
        currency_code="USD",
        time_zone="America/Los_Angeles",
        subject_to_thresholding=True,
        data_loss_from_other_row=True,
        sampling_metadatas=[
            data.SamplingMetadata(samples_read_count=5000, sampling_space_size=100000)
        ],
    )
    fake.hourly_tokens = 8000  # 20 % of a standard property's 40,000
    answer = run(app, fake, MARCH)
    assert answer["metadata"] == {
        "currency_code": "USD",
        "time_zone": "America/Los_Angeles",
        "subject_to_thresholding": True,
        "data_loss_from_other_row": True,
        "sampling": [{"samples_read_count": 5000, "sampling_space_size": 100000}],
        "empty_reason": None,
    }
    assert answer["quota"]["tokens_per_hour"]["remaining"] == 7990
    assert answer["quota_warning"] == (
        "GA4 quota low: 7990 of the property's 40000 hourly tokens left; cached answers are "
        "served until the hour resets"
    )
    assert quality_notes(answer) == [
        "Sampled: based on 5.0 % of the data (5000 of 100000 events).",
        "Thresholded: GA4 withheld rows with few users to protect privacy.",
        'Some rows were folded into "(other)" by GA4 (high cardinality).',
        answer["quota_warning"] + ".",
    ]
    # A low quota keeps the answer for the hour (the TTL here is 60 s): 59 minutes later Google
    # is not asked again.
    again = run(app, fake, MARCH, now=T0 + dt.timedelta(minutes=59))
    assert again["cached"] is True and fake.methods() == ["RunReport"]


def test_rows_past_the_limit_are_counted(app: Flask, fake: FakeGA4) -> None:
    answer = run(app, fake, {**MARCH, "limit": 2})
    assert [r["date"] for r in answer["rows"]] == ["2024-03-01", "2024-03-02"]
    assert answer["row_count"] == 3  # GA4 had more rows than the limit returned
    assert fake.requests("RunReport")[0].limit == 2


def test_batched_reports_use_the_cache_and_one_call_for_the_rest(app: Flask, fake: FakeGA4) -> None:
    with app.app_context():
        state = current_state()
        options: dict[str, Any] = {
            "credentials": AnonymousCredentials(),
            "property_id": property_id(fake),
            "settings": state.settings,
            "engine": state.engine,
            "now": T0,
        }
        single = reports.run_report("traffic", "default", MARCH, **options)
        both = reports.run_reports(["traffic", "seo", "conversions"], "default", MARCH, **options)
        assert fake.methods() == ["RunReport", "BatchRunReports"]
        (batch,) = fake.requests("BatchRunReports")
        assert len(batch.requests) == 2  # traffic came from the cache
        traffic, seo = both["traffic"], both["seo"]
        assert isinstance(traffic, dict) and isinstance(seo, dict)
        assert traffic["cached"] is True and traffic["rows"] == single["rows"]
        assert seo["cached"] is False and seo == reports.run_report(
            "seo", "default", MARCH, **options
        ) | {"cached": False}
        # Google down for the batch: cached reports stale, the never-fetched one its error.
        later = {**options, "now": T0 + dt.timedelta(hours=2)}
        fake.fail_next_data_calls(200, grpc.StatusCode.UNAVAILABLE, retry_seconds=None)
        down = reports.run_reports(["traffic", "seo"], "default", MARCH, **later)
        assert all(isinstance(a, dict) and a["stale"] for a in down.values())
        other = {"date_from": "2024-02-01", "date_to": "2024-02-02"}
        failed = reports.run_reports(["traffic"], "default", other, **later)["traffic"]
        assert isinstance(failed, APIError) and failed.code == "ga4_unavailable"
        fake.failures.clear()
