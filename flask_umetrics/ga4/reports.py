"""GA4 Data API reports (traffic, SEO, key events, realtime, funnel) with a quota-aware cache.

Each report validates its parameters, builds one exact Data API request and turns the answer
into plain JSON: ``{"rows", "totals", "quota", "stale", "cached", "fetched_at", ...}``. Answers
are cached per (scope, report, property + parameters) for ``UMETRICS_GA4_CACHE_TTL`` seconds
(realtime for at most :data:`REALTIME_TTL`). When Google says "try later" (429 /
RESOURCE_EXHAUSTED, 503) the last answer is served with ``"stale": true`` even if expired; with
nothing cached the caller gets an :class:`APIError` 429/503 with ``Retry-After`` — never a 500.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from google.analytics.data_v1alpha import types as alpha
from google.analytics.data_v1beta import types as data
from google.api_core import exceptions as gexc
from google.auth.credentials import Credentials
from sqlalchemy import Engine

from ..db.types import utcnow
from ..errors import APIError, ValidationError
from . import cache
from .clients import (
    SettingsLike,
    alpha_data_client,
    call_options,
    data_client,
    google_errors,
    is_quota_error,
    last_error,
    retry_after,
    to_api_error,
)

logger = logging.getLogger(__name__)

#: Realtime answers are about the last 30 minutes; a longer cache would show stale "now".
REALTIME_TTL = 60
#: GA4 has no data before this day; the Data API refuses earlier dates.
EARLIEST_DATE = dt.date(2015, 8, 14)
DEFAULT_DAYS = 28
MAX_LIMIT = 10000
MAX_FUNNEL_STEPS = 10
QUOTA_FIELDS = (
    "tokens_per_day",
    "tokens_per_hour",
    "concurrent_requests",
    "server_errors_per_project_per_hour",
    "potentially_thresholded_requests_per_hour",
    "tokens_per_project_per_hour",
)
TRAFFIC_METRICS = (
    "sessions",
    "activeUsers",
    "newUsers",
    "screenPageViews",
    "engagementRate",
    "averageSessionDuration",
)
_EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
_ORGANIC_FILTER = data.FilterExpression(
    filter=data.Filter(
        field_name="sessionMedium",
        string_filter=data.Filter.StringFilter(
            match_type=data.Filter.StringFilter.MatchType.EXACT, value="organic"
        ),
    )
)
_KEY_EVENTS_FILTER = data.FilterExpression(
    filter=data.Filter(
        field_name="keyEvents",
        numeric_filter=data.Filter.NumericFilter(
            operation=data.Filter.NumericFilter.Operation.GREATER_THAN,
            value=data.NumericValue(int64_value=0),
        ),
    )
)


# -- parameters ----------------------------------------------------------------------------


def report_zone(settings: SettingsLike, time_zone: str | None) -> zoneinfo.ZoneInfo:
    """The zone GA4 cuts days in: the property's reporting time zone, else
    ``UMETRICS_TIMEZONE`` (a property linked before its zone was stored), else UTC."""
    for name in (time_zone, settings["UMETRICS_TIMEZONE"] if time_zone is None else None):
        if name:
            try:
                return zoneinfo.ZoneInfo(str(name))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                continue
    return zoneinfo.ZoneInfo("UTC")


def _today(settings: SettingsLike, now: dt.datetime, time_zone: str | None = None) -> dt.date:
    return now.astimezone(report_zone(settings, time_zone)).date()


def _date(params: Mapping[str, Any], name: str, default: dt.date) -> dt.date:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        parsed = dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ValidationError(name, "must be an ISO date (YYYY-MM-DD)") from exc
    if parsed < EARLIEST_DATE:
        raise ValidationError(name, f"GA4 has no data before {EARLIEST_DATE.isoformat()}")
    return parsed


def _date_range(params: Mapping[str, Any], today: dt.date) -> dict[str, str]:
    date_to = _date(params, "date_to", today)
    date_from = _date(params, "date_from", date_to - dt.timedelta(days=DEFAULT_DAYS - 1))
    if date_from > date_to:
        raise ValidationError("date_from", "must not be after date_to")
    return {"date_from": date_from.isoformat(), "date_to": date_to.isoformat()}


def _limit(params: Mapping[str, Any], default: int) -> int:
    value = params.get("limit", default)
    if isinstance(value, bool):
        raise ValidationError("limit", "must be an integer")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise ValidationError("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    return value


def _steps(params: Mapping[str, Any]) -> list[str]:
    value = params.get("steps")
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValidationError("steps", "must be a list of event names")
    if not 2 <= len(value) <= MAX_FUNNEL_STEPS:
        raise ValidationError("steps", f"a funnel has 2 to {MAX_FUNNEL_STEPS} steps")
    for step in value:
        if not _EVENT_NAME.fullmatch(step):
            raise ValidationError("steps", f"{step!r} is not a GA4 event name")
    return list(value)


def _flag(params: Mapping[str, Any], name: str) -> bool:
    value = params.get(name, False)
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("1", "true", "yes"):
        return True
    if str(value).lower() in ("0", "false", "no", ""):
        return False
    raise ValidationError(name, "must be true or false")


def _check_keys(params: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in params:
        if key not in allowed:
            raise ValidationError(key, f"unknown parameter; expected one of {', '.join(allowed)}")


def _dated(default_limit: int) -> Callable[[Mapping[str, Any], dt.date], dict[str, Any]]:
    def validate(params: Mapping[str, Any], today: dt.date) -> dict[str, Any]:
        _check_keys(params, ("date_from", "date_to", "limit"))
        return {**_date_range(params, today), "limit": _limit(params, default_limit)}

    return validate


def _realtime_params(params: Mapping[str, Any], today: dt.date) -> dict[str, Any]:
    _check_keys(params, ("limit",))
    return {"limit": _limit(params, 50)}


def _funnel_params(params: Mapping[str, Any], today: dt.date) -> dict[str, Any]:
    _check_keys(params, ("date_from", "date_to", "steps", "open"))
    return {**_date_range(params, today), "steps": _steps(params), "open": _flag(params, "open")}


# -- requests ------------------------------------------------------------------------------


def _dims(*names: str) -> list[data.Dimension]:
    return [data.Dimension(name=n) for n in names]


def _metrics(*names: str) -> list[data.Metric]:
    return [data.Metric(name=n) for n in names]


def _range(params: Mapping[str, Any]) -> list[data.DateRange]:
    return [data.DateRange(start_date=params["date_from"], end_date=params["date_to"])]


def _by_metric(name: str) -> list[data.OrderBy]:
    return [data.OrderBy(metric=data.OrderBy.MetricOrderBy(metric_name=name), desc=True)]


def traffic_request(property_id: str, params: Mapping[str, Any]) -> data.RunReportRequest:
    """Daily traffic: one row per day, oldest first, with totals."""
    return data.RunReportRequest(
        property=f"properties/{property_id}",
        dimensions=_dims("date"),
        metrics=_metrics(*TRAFFIC_METRICS),
        date_ranges=_range(params),
        order_bys=[data.OrderBy(dimension=data.OrderBy.DimensionOrderBy(dimension_name="date"))],
        metric_aggregations=[data.MetricAggregation.TOTAL],
        keep_empty_rows=True,
        limit=params["limit"],
        return_property_quota=True,
    )


def seo_request(property_id: str, params: Mapping[str, Any]) -> data.RunReportRequest:
    """Organic landing pages by source/medium, busiest first."""
    return data.RunReportRequest(
        property=f"properties/{property_id}",
        dimensions=_dims("landingPage", "sessionSourceMedium"),
        metrics=_metrics("sessions", "engagementRate"),
        date_ranges=_range(params),
        dimension_filter=_ORGANIC_FILTER,
        order_bys=_by_metric("sessions"),
        metric_aggregations=[data.MetricAggregation.TOTAL],
        limit=params["limit"],
        return_property_quota=True,
    )


def conversions_request(property_id: str, params: Mapping[str, Any]) -> data.RunReportRequest:
    """Key events (GA4's former "conversions") by event name, most frequent first."""
    return data.RunReportRequest(
        property=f"properties/{property_id}",
        dimensions=_dims("eventName"),
        metrics=_metrics("keyEvents"),
        date_ranges=_range(params),
        metric_filter=_KEY_EVENTS_FILTER,
        order_bys=_by_metric("keyEvents"),
        metric_aggregations=[data.MetricAggregation.TOTAL],
        limit=params["limit"],
        return_property_quota=True,
    )


def realtime_request(property_id: str, params: Mapping[str, Any]) -> data.RunRealtimeReportRequest:
    """Active users of the last 30 minutes by screen and country."""
    return data.RunRealtimeReportRequest(
        property=f"properties/{property_id}",
        dimensions=_dims("unifiedScreenName", "country"),
        metrics=_metrics("activeUsers"),
        order_bys=_by_metric("activeUsers"),
        metric_aggregations=[data.MetricAggregation.TOTAL],
        limit=params["limit"],
        return_property_quota=True,
    )


def funnel_request(property_id: str, params: Mapping[str, Any]) -> alpha.RunFunnelReportRequest:
    """A funnel whose steps are event names (Data API v1alpha)."""
    steps = [
        alpha.FunnelStep(
            name=event,
            filter_expression=alpha.FunnelFilterExpression(
                funnel_event_filter=alpha.FunnelEventFilter(event_name=event)
            ),
        )
        for event in params["steps"]
    ]
    return alpha.RunFunnelReportRequest(
        property=f"properties/{property_id}",
        date_ranges=[alpha.DateRange(start_date=params["date_from"], end_date=params["date_to"])],
        funnel=alpha.Funnel(is_open_funnel=params["open"], steps=steps),
        return_property_quota=True,
    )


# -- responses -----------------------------------------------------------------------------


def _typed(value: str, metric_type: int) -> int | float:
    if metric_type == data.MetricType.TYPE_INTEGER:
        return int(value)
    return float(value)


def _row(dimensions: list[str], metrics: list[tuple[str, int]], row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in zip(dimensions, row.dimension_values, strict=True):
        text = value.value
        out[name] = f"{text[:4]}-{text[4:6]}-{text[6:]}" if name == "date" else text
    for (name, metric_type), value in zip(metrics, row.metric_values, strict=True):
        out[name] = _typed(value.value, metric_type)
    return out


def _table(table: Any) -> dict[str, Any]:
    """Headers, rows and totals of a report or funnel sub-report as JSON."""
    dimensions = [h.name for h in table.dimension_headers]
    metrics = [(h.name, int(h.type_)) for h in table.metric_headers]
    totals = None
    if getattr(table, "totals", None):
        totals = {
            name: _typed(value.value, metric_type)
            for (name, metric_type), value in zip(
                metrics, table.totals[0].metric_values, strict=True
            )
        }
    return {
        "dimensions": dimensions,
        "metrics": [name for name, _ in metrics],
        "rows": [_row(dimensions, metrics, row) for row in table.rows],
        "totals": totals,
    }


def quota_dict(response: Any) -> dict[str, dict[str, int]] | None:
    """``property_quota`` of an answer as ``{name: {"consumed", "remaining"}}``, if sent."""
    if "property_quota" not in response:
        return None
    quota = response.property_quota
    return {
        name: {
            "consumed": getattr(quota, name).consumed,
            "remaining": getattr(quota, name).remaining,
        }
        for name in QUOTA_FIELDS
        if name in quota
    }


def metadata_dict(response: Any) -> dict[str, Any] | None:
    """What GA4 says about an answer's quality (``ResponseMetaData``), if sent: sampling, data
    withheld for thresholds, rows folded into "(other)", the property's currency and zone."""
    if "metadata" not in response:
        return None
    meta = response.metadata
    return {
        "currency_code": meta.currency_code or None,
        "time_zone": meta.time_zone or None,
        "subject_to_thresholding": bool(meta.subject_to_thresholding),
        "data_loss_from_other_row": bool(meta.data_loss_from_other_row),
        "sampling": [
            {
                "samples_read_count": int(sample.samples_read_count),
                "sampling_space_size": int(sample.sampling_space_size),
            }
            for sample in meta.sampling_metadatas
        ],
        "empty_reason": meta.empty_reason or None,
    }


#: Tokens per hour a standard property has (Google's Data API quotas; 360: ten times more).
HOURLY_TOKENS = 40_000
#: Below this share of :data:`HOURLY_TOKENS` left, answers carry a ``quota_warning``.
QUOTA_WARNING_SHARE = 0.2


def quota_warning(quota: Mapping[str, Any] | None) -> str | None:
    """A warning when the property's hourly tokens run under 20 % (so callers slow down)."""
    hourly = (quota or {}).get("tokens_per_hour")
    if not hourly:
        return None
    remaining = int(hourly["remaining"])
    if remaining >= QUOTA_WARNING_SHARE * HOURLY_TOKENS:
        return None
    return (
        f"GA4 quota low: {remaining} of the property's {HOURLY_TOKENS} hourly tokens left; "
        "cached answers are served until the hour resets"
    )


# -- running -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportSpec:
    validate: Callable[[Mapping[str, Any], dt.date], dict[str, Any]]
    build: Callable[[str, Mapping[str, Any]], Any]
    call: Callable[[Credentials, SettingsLike, Any], Any]


def _run_report_call(credentials: Credentials, settings: SettingsLike, request: Any) -> Any:
    with data_client(credentials, settings) as client:
        answer = client.run_report(request=request, **call_options(settings))
    return {
        **_table(answer),
        "row_count": answer.row_count,
        "quota": quota_dict(answer),
        "metadata": metadata_dict(answer),
    }


def _run_realtime_call(credentials: Credentials, settings: SettingsLike, request: Any) -> Any:
    with data_client(credentials, settings) as client:
        answer = client.run_realtime_report(request=request, **call_options(settings))
    return {**_table(answer), "row_count": answer.row_count, "quota": quota_dict(answer)}


def _run_funnel_call(credentials: Credentials, settings: SettingsLike, request: Any) -> Any:
    with alpha_data_client(credentials, settings) as client:
        answer = client.run_funnel_report(request=request, **call_options(settings))
    table = _table(answer.funnel_table)
    return {**table, "row_count": len(table["rows"]), "quota": quota_dict(answer)}


REPORTS: dict[str, ReportSpec] = {
    "traffic": ReportSpec(_dated(1000), traffic_request, _run_report_call),
    "seo": ReportSpec(_dated(50), seo_request, _run_report_call),
    "conversions": ReportSpec(_dated(50), conversions_request, _run_report_call),
    "realtime": ReportSpec(_realtime_params, realtime_request, _run_realtime_call),
    "funnel": ReportSpec(_funnel_params, funnel_request, _run_funnel_call),
}


def validate_params(
    name: str,
    params: Mapping[str, Any],
    settings: SettingsLike,
    now: dt.datetime | None = None,
    *,
    time_zone: str | None = None,
) -> dict[str, Any]:
    """The normalised parameters of report ``name`` (defaults filled in); ValidationError if bad.

    Default ranges end "today" in ``time_zone`` (the property's), as GA4 counts days.
    """
    spec = REPORTS.get(name)
    if spec is None:
        raise ValidationError("report", f"unknown GA4 report; expected one of {', '.join(REPORTS)}")
    return spec.validate(params, _today(settings, now or utcnow(), time_zone))


def run_report(
    name: str,
    scope_id: str,
    params: Mapping[str, Any],
    *,
    credentials: Credentials,
    property_id: str,
    settings: SettingsLike,
    engine: Engine,
    now: dt.datetime | None = None,
    time_zone: str | None = None,
    currency: str | None = None,
) -> dict[str, Any]:
    """Report ``name`` for ``property_id`` (bare numeric id), from the cache when fresh.

    ``time_zone`` / ``currency`` are the property's: dates are days in that zone, money in that
    currency; both are part of the answer so pages can say so.
    """
    now = now or utcnow()
    normalized = validate_params(name, params, settings, now, time_zone=time_zone)
    key = {"property_id": str(property_id), **normalized}
    digest = cache.params_hash(key)
    cached = cache.load(engine, scope_id, name, digest)
    if cached is not None and cached.is_fresh(now):
        return {**cached.result, "cached": True, "stale": False}
    spec = REPORTS[name]
    request = spec.build(str(property_id), normalized)
    with google_errors():
        try:
            answer = spec.call(credentials, settings, request)
        except (gexc.GoogleAPICallError, gexc.RetryError) as exc:
            cause = last_error(exc)
            if cached is None or not is_quota_error(cause):
                raise
            assert isinstance(cause, gexc.GoogleAPICallError)
            return _stale(name, scope_id, cached, cause)
    ttl = int(settings["UMETRICS_GA4_CACHE_TTL"])
    return _store(
        name,
        scope_id,
        str(property_id),
        normalized,
        answer,
        settings,
        engine,
        now,
        ttl,
        time_zone=time_zone,
        currency=currency,
    )


#: Reports one ``batchRunReports`` call can answer together (plain ``runReport`` requests).
BATCHABLE = ("traffic", "seo", "conversions")
#: Google takes at most 5 requests per batch.
MAX_BATCH = 5


def run_reports(
    names: list[str],
    scope_id: str,
    params: Mapping[str, Any],
    *,
    credentials: Credentials,
    property_id: str,
    settings: SettingsLike,
    engine: Engine,
    now: dt.datetime | None = None,
    time_zone: str | None = None,
    currency: str | None = None,
) -> dict[str, dict[str, Any] | APIError]:
    """Several dated reports with one ``batchRunReports`` call for those not fresh in the cache.

    Each answer is exactly what :func:`run_report` would give (cached, stale on quota-type
    errors); a report that failed maps to its :class:`APIError` so one bad report never hides
    the others. Up to five reports, all of :data:`BATCHABLE`.
    """
    if not names or len(names) > MAX_BATCH or any(n not in BATCHABLE for n in names):
        raise ValidationError("reports", f"1 to {MAX_BATCH} of {', '.join(BATCHABLE)}")
    now = now or utcnow()
    results: dict[str, dict[str, Any] | APIError] = {}
    pending: list[tuple[str, dict[str, Any], str, cache.CachedReport | None]] = []
    for name in names:
        normalized = validate_params(name, params, settings, now, time_zone=time_zone)
        key = {"property_id": str(property_id), **normalized}
        digest = cache.params_hash(key)
        cached = cache.load(engine, scope_id, name, digest)
        if cached is not None and cached.is_fresh(now):
            results[name] = {**cached.result, "cached": True, "stale": False}
        else:
            pending.append((name, normalized, digest, cached))
    if not pending:
        return results
    batch = data.BatchRunReportsRequest(
        property=f"properties/{property_id}",
        requests=[
            REPORTS[name].build(str(property_id), normalized) for name, normalized, _, _ in pending
        ],
    )
    try:
        with google_errors():
            try:
                with data_client(credentials, settings) as client:
                    answer = client.batch_run_reports(request=batch, **call_options(settings))
            except (gexc.GoogleAPICallError, gexc.RetryError) as exc:
                cause = last_error(exc)
                if not is_quota_error(cause) or not all(c is not None for *_, c in pending):
                    raise
                assert isinstance(cause, gexc.GoogleAPICallError)
                for name, _, _, cached in pending:
                    assert cached is not None
                    results[name] = _stale(name, scope_id, cached, cause)
                return results
    except APIError as error:
        for name, *_ in pending:
            results[name] = error
        return results
    ttl = int(settings["UMETRICS_GA4_CACHE_TTL"])
    for (name, normalized, _, _), report in zip(pending, answer.reports, strict=True):
        table = {
            **_table(report),
            "row_count": report.row_count,
            "quota": quota_dict(report),
            "metadata": metadata_dict(report),
        }
        results[name] = _store(
            name,
            scope_id,
            str(property_id),
            normalized,
            table,
            settings,
            engine,
            now,
            ttl,
            time_zone=time_zone,
            currency=currency,
        )
    return results


def _store(
    name: str,
    scope_id: str,
    property_id: str,
    normalized: dict[str, Any],
    answer: dict[str, Any],
    settings: SettingsLike,
    engine: Engine,
    now: dt.datetime,
    ttl: int,
    *,
    time_zone: str | None,
    currency: str | None,
) -> dict[str, Any]:
    """The JSON answer of one fetched report, cached for ``ttl`` (an hour on a low quota)."""
    warning = quota_warning(answer["quota"])
    if warning is not None:
        logger.warning("GA4 scope %s property %s: %s", scope_id, property_id, warning)
        ttl = max(ttl, 3600)  # keep answers until the hour's tokens are back
    if name == "realtime":
        ttl = min(ttl, REALTIME_TTL)
    result = {
        "report": name,
        "property_id": property_id,
        "params": normalized,
        "time_zone": report_zone(settings, time_zone).key,
        "currency": currency,
        "quota_warning": warning,
        **answer,
        "fetched_at": now.isoformat(),
        "stale": False,
        "cached": False,
    }
    cache.store(
        engine,
        scope_id,
        name,
        {"property_id": property_id, **normalized},
        result=result,
        quota=answer["quota"],
        fetched_at=now,
        expires_at=now + dt.timedelta(seconds=ttl),
    )
    return result


def _stale(
    name: str, scope_id: str, cached: cache.CachedReport, exc: gexc.GoogleAPICallError
) -> dict[str, Any]:
    error = to_api_error(exc)
    logger.warning(
        "GA4 %s report for scope %s: %s; serving the answer fetched at %s",
        name,
        scope_id,
        error.code,
        cached.fetched_at.isoformat(),
    )
    return {
        **cached.result,
        "cached": True,
        "stale": True,
        "error": {"code": error.code, "message": error.message, "retry_after": retry_after(exc)},
    }


def traffic(scope_id: str, params: Mapping[str, Any], **options: Any) -> dict[str, Any]:
    """Daily sessions, users, new users, page views, engagement rate, session duration."""
    return run_report("traffic", scope_id, params, **options)


def seo(scope_id: str, params: Mapping[str, Any], **options: Any) -> dict[str, Any]:
    """Organic landing pages by source/medium."""
    return run_report("seo", scope_id, params, **options)


def conversions(scope_id: str, params: Mapping[str, Any], **options: Any) -> dict[str, Any]:
    """Key events by event name."""
    return run_report("conversions", scope_id, params, **options)


def realtime(scope_id: str, params: Mapping[str, Any], **options: Any) -> dict[str, Any]:
    """Active users now, by screen and country."""
    return run_report("realtime", scope_id, params, **options)


def funnel(scope_id: str, params: Mapping[str, Any], **options: Any) -> dict[str, Any]:
    """A funnel of event-name steps (v1alpha ``runFunnelReport``)."""
    return run_report("funnel", scope_id, params, **options)
