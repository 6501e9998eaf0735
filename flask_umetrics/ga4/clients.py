"""Building the Google Analytics API clients from the app's settings, and mapping their errors.

Endpoint overrides and the transport are settings so the real client libraries can talk to a
local fake server in tests (README, "Connect GA4"). Callers own the clients they get and should use
them as context managers so channels and HTTP sessions are closed.

A Google error must never become a 500: :func:`google_errors` turns every Google API error into
an :class:`~flask_umetrics.errors.APIError` with a 4xx/5xx status chosen for the caller.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

import grpc
import requests
from google.analytics.admin_v1beta import AnalyticsAdminServiceClient
from google.analytics.admin_v1beta.services.analytics_admin_service.transports import (
    AnalyticsAdminServiceGrpcTransport,
)
from google.analytics.data_v1alpha import AlphaAnalyticsDataClient
from google.analytics.data_v1alpha.services.alpha_analytics_data.transports import (
    AlphaAnalyticsDataGrpcTransport,
)
from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta.services.beta_analytics_data.transports import (
    BetaAnalyticsDataGrpcTransport,
)
from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.api_core.client_options import ClientOptions
from google.auth.credentials import Credentials
from google.auth.transport.requests import Request
from google.rpc import error_details_pb2

from ..errors import APIError

#: Seconds a caller is asked to wait after a quota error that names no delay.
DEFAULT_RETRY_AFTER = 60


ClientT = TypeVar("ClientT")


class SettingsLike(Protocol):
    """What the client builders read from settings: ``Settings`` or a plain dict."""

    def __getitem__(self, name: str, /) -> Any: ...


class _AuthInterceptor(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Adds the credentials' ``authorization`` header on a plaintext channel.

    ``grpc.insecure_channel`` cannot carry call credentials, so without this a local test server
    would never see the token the real service would get.
    """

    def __init__(self, credentials: Credentials, host: str) -> None:
        self._credentials = credentials
        self._host = host

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        headers: dict[str, str] = {}
        with requests.Session() as session:
            uri = f"http://{self._host}{client_call_details.method}"
            before_request: Callable[..., None] = self._credentials.before_request
            before_request(Request(session), "POST", uri, headers)
        if headers:
            metadata = list(client_call_details.metadata or [])
            metadata.extend((key.lower(), value) for key, value in headers.items())
            client_call_details = client_call_details._replace(metadata=metadata)
        return continuation(client_call_details, request)


def _insecure_channel(endpoint: str, credentials: Credentials) -> grpc.Channel:
    channel = grpc.insecure_channel(endpoint)
    return grpc.intercept_channel(channel, _AuthInterceptor(credentials, endpoint))


def _build(
    client_class: Callable[..., ClientT],
    grpc_transport_class: Any,
    credentials: Credentials,
    settings: SettingsLike,
    endpoint_key: str,
) -> ClientT:
    transport = str(settings["UMETRICS_GA4_TRANSPORT"])
    endpoint = settings[endpoint_key]
    if transport == "grpc" and endpoint and settings["UMETRICS_GA4_GRPC_INSECURE"]:
        channel = _insecure_channel(str(endpoint), credentials)
        return client_class(transport=grpc_transport_class(host=endpoint, channel=channel))
    options = ClientOptions(api_endpoint=str(endpoint)) if endpoint else None
    return client_class(credentials=credentials, transport=transport, client_options=options)


def admin_client(credentials: Credentials, settings: SettingsLike) -> AnalyticsAdminServiceClient:
    """The GA4 Admin API (v1beta) client: accounts, properties, streams, MP secrets."""
    return _build(
        AnalyticsAdminServiceClient,
        AnalyticsAdminServiceGrpcTransport,
        credentials,
        settings,
        "UMETRICS_GA4_ADMIN_ENDPOINT",
    )


def data_client(credentials: Credentials, settings: SettingsLike) -> BetaAnalyticsDataClient:
    """The GA4 Data API (v1beta) client: standard and realtime reports."""
    return _build(
        BetaAnalyticsDataClient,
        BetaAnalyticsDataGrpcTransport,
        credentials,
        settings,
        "UMETRICS_GA4_DATA_ENDPOINT",
    )


def alpha_data_client(credentials: Credentials, settings: SettingsLike) -> AlphaAnalyticsDataClient:
    """The GA4 Data API (v1alpha) client: funnel reports exist only there."""
    return _build(
        AlphaAnalyticsDataClient,
        AlphaAnalyticsDataGrpcTransport,
        credentials,
        settings,
        "UMETRICS_GA4_DATA_ENDPOINT",
    )


#: Errors worth another attempt: Google overloaded, a call past its deadline, an internal error.
TRANSIENT_ERRORS = (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.InternalServerError)


def call_options(settings: SettingsLike, *, idempotent: bool = True) -> dict[str, Any]:
    """``timeout`` (and for calls safe to repeat, ``retry``) for one Google API call.

    Every call gets ``UMETRICS_GA4_TIMEOUT`` seconds, so a stalled call never holds a web worker;
    reads are retried with exponential backoff (google-api-core's ``Retry``) on
    :data:`TRANSIENT_ERRORS` for at most ``UMETRICS_GA4_RETRY_SECONDS`` in all. Creating
    things is never retried (a lost answer must not create twice).
    """
    timeout = float(_setting(settings, "UMETRICS_GA4_TIMEOUT"))
    if not idempotent:
        return {"timeout": timeout}
    retry = gretry.Retry(
        predicate=gretry.if_exception_type(*TRANSIENT_ERRORS),
        initial=0.25,
        maximum=4.0,
        multiplier=2.0,
        timeout=float(_setting(settings, "UMETRICS_GA4_RETRY_SECONDS")),
    )
    return {"timeout": timeout, "retry": retry}


def _setting(settings: SettingsLike, name: str) -> Any:
    """``settings[name]``, or the documented default for a plain dict that lacks it."""
    try:
        return settings[name]
    except KeyError:
        from ..config import KEYS_BY_NAME

        return KEYS_BY_NAME[name].default


def last_error(exc: gexc.GoogleAPIError) -> gexc.GoogleAPIError:
    """The error behind ``exc``: when retries ran out google-api-core raises ``RetryError``,
    whose ``cause`` is the last attempt's error (DEADLINE_EXCEEDED, UNAVAILABLE, ...)."""
    if isinstance(exc, gexc.RetryError) and isinstance(exc.cause, gexc.GoogleAPIError):
        return exc.cause
    return exc


def is_quota_error(exc: BaseException) -> bool:
    """Whether ``exc`` means "try later" (quota, overload or a deadline passed), so a stale
    answer may be served."""
    return isinstance(exc, gexc.TooManyRequests | gexc.ServiceUnavailable | gexc.DeadlineExceeded)


def retry_after(exc: gexc.GoogleAPICallError) -> int:
    """Seconds to wait, from the error's ``RetryInfo`` detail when Google sent one."""
    for detail in getattr(exc, "details", None) or []:
        if isinstance(detail, error_details_pb2.RetryInfo):  # gRPC: decoded status details
            seconds = detail.retry_delay.seconds + (1 if detail.retry_delay.nanos else 0)
            return max(1, int(seconds))
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("rpc.RetryInfo"):
            delay = str(detail.get("retryDelay", "")).removesuffix("s")  # REST: JSON, "30s"
            try:
                return max(1, math.ceil(float(delay)))
            except ValueError:
                continue
    return DEFAULT_RETRY_AFTER


def to_api_error(exc: gexc.GoogleAPICallError) -> APIError:
    """The REST error for a Google error; the message is Google's, which carries no secret."""
    message = str(exc.message or type(exc).__name__)
    if isinstance(exc, gexc.TooManyRequests):
        wait = retry_after(exc)
        return APIError(
            429, "ga4_quota", f"GA4 quota exhausted: {message}", headers={"Retry-After": str(wait)}
        )
    if isinstance(exc, gexc.ServiceUnavailable):
        wait = retry_after(exc)
        return APIError(
            503,
            "ga4_unavailable",
            f"GA4 unavailable: {message}",
            headers={"Retry-After": str(wait)},
        )
    if isinstance(exc, gexc.DeadlineExceeded):
        return APIError(
            504,
            "ga4_timeout",
            f"GA4 did not answer in time: {message}",
            headers={"Retry-After": str(retry_after(exc))},
        )
    if isinstance(exc, gexc.InvalidArgument | gexc.FailedPrecondition | gexc.BadRequest):
        return APIError(400, "ga4_invalid_request", message)
    if isinstance(exc, gexc.PermissionDenied | gexc.Unauthenticated | gexc.Unauthorized):
        return APIError(403, "ga4_forbidden", message)
    if isinstance(exc, gexc.NotFound):
        return APIError(404, "ga4_not_found", message)
    return APIError(502, "ga4_error", message)


def _grant_error(exc: Exception) -> str | None:
    """The OAuth ``error`` code of a token-endpoint refusal (``invalid_grant``, ...), if any."""
    for arg in getattr(exc, "args", ()):
        if isinstance(arg, dict) and isinstance(arg.get("error"), str):
            return str(arg["error"])
    text = str(exc.args[0]) if getattr(exc, "args", None) else ""
    head = text.split(":", 1)[0].strip()
    return head if head.replace("_", "").isalpha() and head.islower() else None


def refresh_error(exc: Exception) -> APIError:
    """What a failed token refresh means for the user.

    Only ``invalid_grant`` (revoked, expired - a consent screen in "Testing" expires refresh
    tokens after 7 days - or a changed password) asks to reconnect; a transient failure of
    Google's token endpoint (google-auth already retried it) asks to try again later, and other
    refusals name Google's error code (e.g. ``invalid_client``: check the OAuth client).
    """
    code = _grant_error(exc)
    if code == "invalid_grant":
        return APIError(
            403,
            "ga4_reconnect",
            "Google no longer accepts the stored GA4 grant (revoked or expired): reconnect GA4.",
        )
    if getattr(exc, "retryable", False):
        return APIError(
            503,
            "ga4_token_unavailable",
            "Google's token endpoint is unavailable right now: try again in a minute.",
            headers={"Retry-After": "60"},
        )
    what = f" ({code})" if code else ""
    return APIError(403, "ga4_forbidden", f"Google refused the stored credentials{what}.")


@contextmanager
def google_errors() -> Iterator[None]:
    """Re-raise Google API errors (and refused credentials) as :class:`APIError`."""
    from google.auth import exceptions as auth_exceptions

    try:
        yield
    except gexc.GoogleAPICallError as exc:
        raise to_api_error(exc) from exc
    except gexc.RetryError as exc:
        cause = last_error(exc)
        if isinstance(cause, gexc.GoogleAPICallError):
            raise to_api_error(cause) from exc
        raise APIError(504, "ga4_timeout", "GA4 did not answer in time.") from exc
    except auth_exceptions.RefreshError as exc:
        # Not chained: the token endpoint's answer is no business of a log line.
        raise refresh_error(exc) from None
    except auth_exceptions.TransportError:
        raise APIError(502, "ga4_error", "Google's token endpoint did not answer") from None
