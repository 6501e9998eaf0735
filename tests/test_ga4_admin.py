"""GA4 Admin API through the real client library against the local fake: listing, linking,
idempotent provisioning."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.oauth2.credentials import Credentials as OAuthCredentials

from flask_umetrics.errors import APIError, ValidationError
from flask_umetrics.ga4 import admin
from flask_umetrics.ga4.admin import (
    AccountSummary,
    PropertyDetails,
    PropertyInfo,
    PropertySummary,
    WebStream,
)

from .ga4_fake_server import ACKNOWLEDGEMENT, ADMIN_SERVICE, FakeGA4, running_fake


@pytest.fixture
def fake() -> Iterator[FakeGA4]:
    with running_fake() as server:
        yield server


def settings_for(fake: FakeGA4) -> dict[str, Any]:
    return {
        "UMETRICS_GA4_TRANSPORT": "grpc",
        "UMETRICS_GA4_ADMIN_ENDPOINT": fake.grpc_endpoint,
        "UMETRICS_GA4_DATA_ENDPOINT": fake.grpc_endpoint,
        "UMETRICS_GA4_GRPC_INSECURE": True,
    }


CREDS = AnonymousCredentials()
SITE = {
    "account_id": "100",
    "display_name": "Acme web",
    "site_url": "https://acme.example",
    "time_zone": "Europe/Berlin",
    "currency": "EUR",
}


def test_account_summaries_follow_pages(fake: FakeGA4) -> None:
    fake.add_account("100", "Acme")
    fake.add_account("200", "Beta")
    fake.add_account("300", "Gamma")
    shop = fake.add_property("100", "Shop")
    blog = fake.add_property("100", "Blog")
    docs = fake.add_property("300", "Docs")
    summaries = admin.list_account_summaries(CREDS, settings_for(fake))
    assert summaries == [
        AccountSummary(
            "100",
            "Acme",
            [PropertySummary(shop, "Shop", "100"), PropertySummary(blog, "Blog", "100")],
        ),
        AccountSummary("200", "Beta", []),
        AccountSummary("300", "Gamma", [PropertySummary(docs, "Docs", "300")]),
    ]
    # Three accounts at two per page: the library's pager asked twice.
    assert fake.methods() == ["ListAccountSummaries", "ListAccountSummaries"]
    assert [r.page_token for r in fake.requests("ListAccountSummaries")] == ["", "2"]


def test_list_properties_of_one_account(fake: FakeGA4) -> None:
    fake.add_account("100", "Acme")
    fake.add_account("200", "Beta")
    one = fake.add_property("100", "One")
    fake.add_property("200", "Elsewhere")
    two = fake.add_property("100", "Two", time_zone="America/New_York")
    three = fake.add_property("100", "Three")
    found = admin.list_properties(CREDS, settings_for(fake), "accounts/100")
    assert found == [
        PropertyInfo(one, "One", "100", "Europe/Berlin", "EUR"),
        PropertyInfo(two, "Two", "100", "America/New_York", "EUR"),
        PropertyInfo(three, "Three", "100", "Europe/Berlin", "EUR"),
    ]
    assert [r.filter for r in fake.requests("ListProperties")] == ["parent:accounts/100"] * 2


def test_provision_twice_creates_nothing_the_second_time(fake: FakeGA4) -> None:
    fake.add_account("100", "Acme")
    first = admin.provision(CREDS, settings_for(fake), **SITE)
    assert fake.methods() == [
        "ListProperties",
        "CreateProperty",
        "ListDataStreams",
        "CreateDataStream",
        "AcknowledgeUserDataCollection",
        "ListMeasurementProtocolSecrets",
        "CreateMeasurementProtocolSecret",
    ]
    created_property = fake.requests("CreateProperty")[0].property
    assert (
        created_property.parent,
        created_property.display_name,
        created_property.time_zone,
        created_property.currency_code,
    ) == ("accounts/100", "Acme web", "Europe/Berlin", "EUR")
    stream_request = fake.requests("CreateDataStream")[0]
    assert stream_request.data_stream.web_stream_data.default_uri == "https://acme.example"
    assert stream_request.parent == f"properties/{first.property_id}"
    secret_request = fake.requests("CreateMeasurementProtocolSecret")[0]
    assert secret_request.measurement_protocol_secret.display_name == "flask-umetrics"
    assert fake.acknowledged == {f"properties/{first.property_id}": ACKNOWLEDGEMENT}
    assert admin.USER_DATA_ACKNOWLEDGEMENT == ACKNOWLEDGEMENT

    stream_id = next(iter(fake.streams)).rsplit("/", 1)[1]
    assert first.public() == {
        "account_id": "100",
        "property_id": first.property_id,
        "property_name": "Acme web",
        "stream_id": stream_id,
        "measurement_id": f"G-FAKE{stream_id}",
        "time_zone": "Europe/Berlin",
        "currency_code": "EUR",
        "property_created": True,
        "stream_created": True,
        "mp_secret_created": True,
    }
    assert first.mp_secret == next(iter(fake.secrets.values())).secret_value
    assert first.mp_secret not in repr(first)

    fake.calls.clear()
    second = admin.provision(CREDS, settings_for(fake), **SITE)
    assert not [m for m in fake.methods() if m.startswith("Create")]
    assert fake.methods() == [
        "ListProperties",
        "ListDataStreams",
        "AcknowledgeUserDataCollection",
        "ListMeasurementProtocolSecrets",
    ]
    assert (len(fake.properties), len(fake.streams), len(fake.secrets)) == (1, 1, 1)
    assert (second.property_id, second.stream_id, second.measurement_id, second.mp_secret) == (
        first.property_id,
        first.stream_id,
        first.measurement_id,
        first.mp_secret,
    )
    assert (second.property_created, second.stream_created, second.mp_secret_created) == (
        False,
        False,
        False,
    )


def test_provision_reuses_a_matching_web_stream_of_a_given_property(fake: FakeGA4) -> None:
    fake.add_account("100", "Acme")
    prop = fake.add_property("100", "Legacy name")
    fake.add_web_stream(prop, "https://other.example", "Other site")
    existing = fake.add_web_stream(prop, "https://ACME.example/", "Acme")
    result = admin.provision(CREDS, settings_for(fake), **SITE, property_id=f"properties/{prop}")
    assert fake.methods() == [
        "GetProperty",
        "ListDataStreams",
        "AcknowledgeUserDataCollection",
        "ListMeasurementProtocolSecrets",
        "CreateMeasurementProtocolSecret",
    ]
    assert (result.property_id, result.property_name, result.stream_id) == (
        prop,
        "Legacy name",
        existing.rsplit("/", 1)[1],
    )
    assert (result.property_created, result.stream_created, result.mp_secret_created) == (
        False,
        False,
        True,
    )


def test_provision_refuses_a_property_of_another_account(fake: FakeGA4) -> None:
    fake.add_account("100", "Acme")
    fake.add_account("200", "Beta")
    prop = fake.add_property("200", "Beta web")
    with pytest.raises(APIError) as caught:
        admin.provision(CREDS, settings_for(fake), **SITE, property_id=prop)
    assert (caught.value.status, caught.value.code) == (409, "ga4_property_account")
    assert fake.methods() == ["GetProperty"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"account_id": "acme"}, "account_id"),
        ({"site_url": "acme.example"}, "site_url"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"currency": "euro"}, "currency"),
        ({"display_name": "  "}, "display_name"),
    ],
)
def test_provision_validates_before_calling_google(
    fake: FakeGA4, change: dict[str, str], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        admin.provision(CREDS, settings_for(fake), **{**SITE, **change})
    assert caught.value.field == field
    assert fake.calls == []


def test_get_property_for_linking(fake: FakeGA4) -> None:
    fake.add_account("100", "Acme")
    prop = fake.add_property("100", "Acme web")
    stream = fake.add_web_stream(prop, "https://acme.example", "Acme")
    stream_id = stream.rsplit("/", 1)[1]
    details = admin.get_property(CREDS, settings_for(fake), prop)
    assert details == PropertyDetails(
        PropertyInfo(prop, "Acme web", "100", "Europe/Berlin", "EUR"),
        [WebStream(stream_id, "Acme", f"G-FAKE{stream_id}", "https://acme.example")],
    )


def test_unknown_property_is_a_403_not_a_500(fake: FakeGA4) -> None:
    with pytest.raises(APIError) as caught:
        admin.get_property(CREDS, settings_for(fake), "999")
    assert (caught.value.status, caught.value.code) == (403, "ga4_forbidden")
    assert caught.value.message == "No access to properties/999"


def test_bearer_token_reaches_the_server_on_the_plaintext_channel(fake: FakeGA4) -> None:
    fake.expected_token = "ya29.test-token"
    fake.add_account("100", "Acme")
    token_creds = OAuthCredentials(token="ya29.test-token")
    assert [
        a.account_id for a in admin.list_account_summaries(token_creds, settings_for(fake))
    ] == ["100"]
    assert fake.calls[0].metadata["authorization"] == "Bearer ya29.test-token"
    assert fake.calls[0].service == ADMIN_SERVICE
    with pytest.raises(APIError) as caught:
        admin.list_account_summaries(CREDS, settings_for(fake))
    assert (caught.value.status, caught.value.code) == (403, "ga4_forbidden")


def test_refused_refresh_token_is_a_403_without_the_token(
    fake: FakeGA4, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    expired = OAuthCredentials(
        token=None,
        refresh_token="1//refresh-secret-value",
        token_uri=f"{fake.rest_url}/token",
        client_id="client-id",
        client_secret="client-secret-value",
    )
    with pytest.raises(APIError) as caught:
        admin.list_account_summaries(expired, settings_for(fake))
    # invalid_grant: the one refusal that asks to reconnect.
    assert (caught.value.status, caught.value.code) == (403, "ga4_reconnect")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__ is True
    assert fake.token_requests == 1 and fake.calls == []
    for secret in ("1//refresh-secret-value", "client-secret-value"):
        assert secret not in str(caught.value) and secret not in caplog.text


def test_provisioning_logs_no_secret(fake: FakeGA4, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake.add_account("100", "Acme")
    result = admin.provision(CREDS, settings_for(fake), **SITE)
    assert result.mp_secret.startswith("fake-mp-secret-")
    assert result.mp_secret not in caplog.text
    assert result.mp_secret not in str(result.public()) and result.mp_secret not in repr(result)


@pytest.mark.parametrize(
    "live_uri",
    ["https://www.acme.example/shop/", "http://ACME.example", "https://acme.example/en/index.html"],
)
def test_a_www_scheme_or_path_difference_reuses_the_live_stream(
    fake: FakeGA4, live_uri: str
) -> None:
    fake.add_account("100", "Acme")
    prop = fake.add_property("100", "Acme web", time_zone="America/Los_Angeles", currency="USD")
    live = fake.add_web_stream(prop, live_uri, "Live site")
    result = admin.provision(CREDS, settings_for(fake), **SITE, property_id=prop)
    assert "CreateDataStream" not in fake.methods()
    assert (result.stream_id, result.stream_created) == (live.rsplit("/", 1)[1], False)
    # The reused property's own calendar, not the one asked for a new property.
    assert (result.time_zone, result.currency_code) == ("America/Los_Angeles", "USD")


def test_another_host_is_another_site(fake: FakeGA4) -> None:
    fake.add_account("100", "Acme")
    prop = fake.add_property("100", "Acme web")
    fake.add_web_stream(prop, "https://shop.acme.example", "Shop")
    result = admin.provision(CREDS, settings_for(fake), **SITE, property_id=prop)
    assert result.stream_created is True
    assert fake.methods().count("CreateDataStream") == 1
