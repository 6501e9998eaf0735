"""GA4 Admin API: list accounts and properties, link a property, provision one idempotently.

Functions take credentials and settings and return plain dataclasses with bare numeric ids
(``"123456"``, not ``"properties/123456"``); storing them is the caller's job. Provisioning finds
before it creates, so running it again after a partial failure, or twice, creates nothing twice.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from google.analytics.admin_v1beta import AnalyticsAdminServiceClient
from google.analytics.admin_v1beta import types as admin
from google.auth.credentials import Credentials

from ..errors import APIError, ValidationError
from .clients import SettingsLike, admin_client, call_options, google_errors

#: The exact text Google requires before Measurement Protocol secrets can be created
#: (``AcknowledgeUserDataCollectionRequest.acknowledgement``).
USER_DATA_ACKNOWLEDGEMENT = (
    "I acknowledge that I have the necessary privacy disclosures and rights from my end users "
    "for the collection and processing of their data, including the association of such data "
    "with the visitation information Google Analytics collects from my site and/or app property."
)
#: Display name of the Measurement Protocol secret that provisioning finds or creates.
MP_SECRET_NAME = "flask-umetrics"

_ID = re.compile(r"\d{1,20}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_WEB = admin.DataStream.DataStreamType.WEB_DATA_STREAM


@dataclass(frozen=True)
class PropertySummary:
    property_id: str
    display_name: str
    account_id: str


@dataclass(frozen=True)
class AccountSummary:
    account_id: str
    display_name: str
    properties: list[PropertySummary]


@dataclass(frozen=True)
class PropertyInfo:
    property_id: str
    display_name: str
    account_id: str
    time_zone: str
    currency_code: str


@dataclass(frozen=True)
class WebStream:
    stream_id: str
    display_name: str
    measurement_id: str
    default_uri: str


@dataclass(frozen=True)
class PropertyDetails:
    """What linking an existing property needs: it exists, its name, its web streams."""

    property: PropertyInfo
    web_streams: list[WebStream]


@dataclass(frozen=True)
class ProvisionResult:
    """The provisioned ids, and for each resource whether this run created it or reused it."""

    account_id: str
    property_id: str
    property_name: str
    stream_id: str
    measurement_id: str
    mp_secret: str = field(repr=False)
    time_zone: str
    currency_code: str
    property_created: bool
    stream_created: bool
    mp_secret_created: bool

    def public(self) -> dict[str, object]:
        """Everything but the secret, for responses and the audit log."""
        return {
            "account_id": self.account_id,
            "property_id": self.property_id,
            "property_name": self.property_name,
            "stream_id": self.stream_id,
            "measurement_id": self.measurement_id,
            "time_zone": self.time_zone,
            "currency_code": self.currency_code,
            "property_created": self.property_created,
            "stream_created": self.stream_created,
            "mp_secret_created": self.mp_secret_created,
        }


def normalize_id(value: str, kind: str) -> str:
    """``"123"`` from ``"123"`` or ``"<kind>/123"``; anything else is a ValidationError."""
    bare = str(value).strip().removeprefix(f"{kind}/")
    if not _ID.fullmatch(bare):
        raise ValidationError(f"{kind[:-1]}_id", f"expected a numeric GA4 id, got {value!r}")
    return bare


def _last(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _property_info(prop: admin.Property) -> PropertyInfo:
    return PropertyInfo(
        property_id=_last(prop.name),
        display_name=prop.display_name,
        account_id=_last(prop.account or prop.parent),
        time_zone=prop.time_zone,
        currency_code=prop.currency_code,
    )


def _web_stream(stream: admin.DataStream) -> WebStream:
    return WebStream(
        stream_id=_last(stream.name),
        display_name=stream.display_name,
        measurement_id=stream.web_stream_data.measurement_id,
        default_uri=stream.web_stream_data.default_uri,
    )


def list_account_summaries(
    credentials: Credentials, settings: SettingsLike
) -> list[AccountSummary]:
    """Every account the credentials can see, each with its properties (all pages)."""
    with google_errors(), admin_client(credentials, settings) as client:
        return [
            AccountSummary(
                account_id=_last(summary.account),
                display_name=summary.display_name,
                properties=[
                    PropertySummary(
                        property_id=_last(p.property),
                        display_name=p.display_name,
                        account_id=_last(summary.account),
                    )
                    for p in summary.property_summaries
                ],
            )
            for summary in client.list_account_summaries(**call_options(settings))
        ]


def _properties(
    client: AnalyticsAdminServiceClient, account_id: str, settings: SettingsLike
) -> list[admin.Property]:
    request = admin.ListPropertiesRequest(filter=f"parent:accounts/{account_id}")
    return list(client.list_properties(request=request, **call_options(settings)))


def list_properties(
    credentials: Credentials, settings: SettingsLike, account_id: str
) -> list[PropertyInfo]:
    """The (not deleted) properties of one account."""
    account_id = normalize_id(account_id, "accounts")
    with google_errors(), admin_client(credentials, settings) as client:
        return [_property_info(p) for p in _properties(client, account_id, settings)]


def _web_streams(
    client: AnalyticsAdminServiceClient, property_id: str, settings: SettingsLike
) -> list[admin.DataStream]:
    streams = client.list_data_streams(parent=f"properties/{property_id}", **call_options(settings))
    return [s for s in streams if s.type_ == _WEB]


def get_property(
    credentials: Credentials, settings: SettingsLike, property_id: str
) -> PropertyDetails:
    """Check a property exists and is readable before linking it; return its web streams."""
    property_id = normalize_id(property_id, "properties")
    with google_errors(), admin_client(credentials, settings) as client:
        prop = client.get_property(name=f"properties/{property_id}", **call_options(settings))
        streams = _web_streams(client, property_id, settings)
    return PropertyDetails(_property_info(prop), [_web_stream(s) for s in streams])


def _site_key(url: str) -> str:
    """The site a stream URL measures: its host, lower case, without ``www.``; scheme and path
    do not make another site (``http://www.acme.example/shop`` is ``https://acme.example``), so
    provisioning never adds a second web stream to a live property for a spelling difference."""
    parts = urlsplit(url.strip() if "://" in url else f"https://{url.strip()}")
    return (parts.hostname or "").lower().removeprefix("www.") + (
        f":{parts.port}" if parts.port else ""
    )


def _validate_provision(
    account_id: str, display_name: str, site_url: str, time_zone: str, currency: str
) -> str:
    account_id = normalize_id(account_id, "accounts")
    if not display_name.strip() or len(display_name) > 100:
        raise ValidationError("display_name", "must be 1 to 100 characters")
    parts = urlsplit(site_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError("site_url", "must be an absolute http(s) URL")
    try:
        zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError("time_zone", f"unknown IANA time zone {time_zone!r}") from exc
    if not _CURRENCY.fullmatch(currency):
        raise ValidationError("currency", "must be an ISO 4217 code such as EUR")
    return account_id


def provision(
    credentials: Credentials,
    settings: SettingsLike,
    *,
    account_id: str,
    display_name: str,
    site_url: str,
    time_zone: str,
    currency: str,
    property_id: str | None = None,
) -> ProvisionResult:
    """Find or create the property, its web stream for ``site_url`` and an MP secret.

    The property is ``property_id`` when given, else the account's oldest property named
    ``display_name``. User-data collection is acknowledged on every run (Google requires it
    before MP secrets, and it is idempotent), so a run that failed half-way completes the next time.
    """
    account_id = _validate_provision(account_id, display_name, site_url, time_zone, currency)
    with google_errors(), admin_client(credentials, settings) as client:
        prop, property_created = _find_or_create_property(
            client, settings, account_id, display_name, time_zone, currency, property_id
        )
        prop_id = _last(prop.name)
        stream, stream_created = _find_or_create_stream(
            client, settings, prop_id, display_name, site_url
        )
        client.acknowledge_user_data_collection(
            request=admin.AcknowledgeUserDataCollectionRequest(
                property=prop.name, acknowledgement=USER_DATA_ACKNOWLEDGEMENT
            ),
            **call_options(settings),
        )
        secret, secret_created = _find_or_create_secret(client, settings, stream.name)
    return ProvisionResult(
        account_id=account_id,
        property_id=prop_id,
        property_name=prop.display_name,
        stream_id=_last(stream.name),
        measurement_id=stream.web_stream_data.measurement_id,
        mp_secret=secret.secret_value,
        time_zone=prop.time_zone,
        currency_code=prop.currency_code,
        property_created=property_created,
        stream_created=stream_created,
        mp_secret_created=secret_created,
    )


def _find_or_create_property(
    client: AnalyticsAdminServiceClient,
    settings: SettingsLike,
    account_id: str,
    display_name: str,
    time_zone: str,
    currency: str,
    property_id: str | None,
) -> tuple[admin.Property, bool]:
    if property_id is not None:
        prop = client.get_property(
            name=f"properties/{normalize_id(property_id, 'properties')}", **call_options(settings)
        )
        if _last(prop.account or prop.parent) != account_id:
            raise APIError(
                409,
                "ga4_property_account",
                f"property {property_id} is not in account {account_id}",
            )
        return prop, False
    found = _properties(client, account_id, settings)
    named = [p for p in found if p.display_name == display_name]
    if named:
        return min(named, key=lambda p: int(_last(p.name))), False
    new = admin.Property(
        parent=f"accounts/{account_id}",
        display_name=display_name,
        time_zone=time_zone,
        currency_code=currency,
    )
    once = call_options(settings, idempotent=False)
    return client.create_property(property=new, **once), True


def _find_or_create_stream(
    client: AnalyticsAdminServiceClient,
    settings: SettingsLike,
    property_id: str,
    display_name: str,
    site_url: str,
) -> tuple[admin.DataStream, bool]:
    wanted = _site_key(site_url)
    for stream in _web_streams(client, property_id, settings):
        if _site_key(stream.web_stream_data.default_uri) == wanted:
            return stream, False
    new = admin.DataStream(
        type_=_WEB,
        display_name=display_name,
        web_stream_data=admin.DataStream.WebStreamData(default_uri=site_url),
    )
    once = call_options(settings, idempotent=False)
    parent = f"properties/{property_id}"
    return client.create_data_stream(parent=parent, data_stream=new, **once), True


def ensure_mp_secret(
    credentials: Credentials, settings: SettingsLike, property_id: str, stream_id: str
) -> tuple[str, bool]:
    """The stream's umetrics Measurement Protocol secret, created if missing (needs edit
    rights); ``(secret, created)``. Acknowledges user-data collection first, as Google requires."""
    property_id = normalize_id(property_id, "properties")
    stream_name = f"properties/{property_id}/dataStreams/{normalize_id(stream_id, 'dataStreams')}"
    with google_errors(), admin_client(credentials, settings) as client:
        client.acknowledge_user_data_collection(
            request=admin.AcknowledgeUserDataCollectionRequest(
                property=f"properties/{property_id}", acknowledgement=USER_DATA_ACKNOWLEDGEMENT
            ),
            **call_options(settings),
        )
        secret, created = _find_or_create_secret(client, settings, stream_name)
    return secret.secret_value, created


def _find_or_create_secret(
    client: AnalyticsAdminServiceClient, settings: SettingsLike, stream_name: str
) -> tuple[admin.MeasurementProtocolSecret, bool]:
    listed = client.list_measurement_protocol_secrets(parent=stream_name, **call_options(settings))
    for secret in listed:
        if secret.display_name == MP_SECRET_NAME:
            return secret, False
    new = admin.MeasurementProtocolSecret(display_name=MP_SECRET_NAME)
    created = client.create_measurement_protocol_secret(
        parent=stream_name,
        measurement_protocol_secret=new,
        **call_options(settings, idempotent=False),
    )
    return created, True
