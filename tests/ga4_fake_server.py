"""A local fake of the GA4 Admin and Data APIs that the real Google client libraries talk to.

gRPC serves all three services (Admin v1beta, Data v1beta, Data v1alpha) through generic
handlers using the proto-plus types' own (de)serializers; a small HTTP server speaks the REST
transport for the Data API report calls. State lives in memory and every call is recorded
(method, request, metadata) so tests can assert what was sent and that nothing was created twice.

Report rows are generated deterministically from the request so tests know exact numbers:

* rows are the cartesian product of the requested dimensions' values, in request order; ``date``
  takes each day of the (single) date range as ``YYYYMMDD``, other dimensions take
  :data:`DIMENSION_VALUES`;
* row number ``s`` (1-based, counted before filtering) gives integer metrics ``s * base``
  (:data:`INTEGER_METRICS`; ``keyEvents`` is 0 for events not in :data:`KEY_EVENTS`),
  ``engagementRate = 0.5 + s / 100`` and ``averageSessionDuration = 60 + 1.5 * s``;
* ``sessionMedium`` / ``sessionSource`` filters read the parts of ``sessionSourceMedium``;
* totals (``MetricAggregation.TOTAL``) sum integer metrics and average the others;
* funnels: step ``k`` (0-based) has ``1000 // 2**k`` active users.

Quota answers count the successful data calls ``n`` per property: each charges 10 tokens.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from google.analytics.admin_v1beta import types as admin
from google.analytics.data_v1alpha import types as alpha
from google.analytics.data_v1beta import types as data
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

ADMIN_SERVICE = "google.analytics.admin.v1beta.AnalyticsAdminService"
DATA_SERVICE = "google.analytics.data.v1beta.BetaAnalyticsData"
ALPHA_SERVICE = "google.analytics.data.v1alpha.AlphaAnalyticsData"

DIMENSION_VALUES: dict[str, list[str]] = {
    "landingPage": ["/", "/pricing", "/blog/launch"],
    "sessionSourceMedium": ["google / organic", "(direct) / (none)", "bing / organic"],
    "eventName": ["page_view", "sign_up", "purchase"],
    "unifiedScreenName": ["Home", "Pricing"],
    "country": ["Germany", "France"],
}
INTEGER_METRICS: dict[str, int] = {
    "sessions": 10,
    "activeUsers": 8,
    "newUsers": 3,
    "screenPageViews": 25,
    "keyEvents": 2,
    "eventCount": 30,
}
FLOAT_METRICS: dict[str, tuple[Callable[[int], float], data.MetricType]] = {
    "engagementRate": (lambda s: round(0.5 + s / 100, 4), data.MetricType.TYPE_FLOAT),
    "averageSessionDuration": (lambda s: 60 + 1.5 * s, data.MetricType.TYPE_SECONDS),
}
KEY_EVENTS = frozenset({"sign_up", "purchase"})
TOKENS_PER_CALL = 10

#: gRPC status -> HTTP status of the REST transport's error answers.
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
}


class FakeRpcError(Exception):
    """An error answer: turned into a gRPC status or a REST error body."""

    def __init__(self, code: grpc.StatusCode, message: str, retry_seconds: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_seconds = retry_seconds


@dataclass
class Call:
    """One request the fake received."""

    service: str
    method: str
    request: Any
    metadata: dict[str, str]
    transport: str


@dataclass
class FakeGA4:
    """In-memory GA4 with the handlers; ``start`` serves it, ``stop`` shuts it down."""

    page_size: int = 2
    expected_token: str | None = None
    calls: list[Call] = field(default_factory=list)
    accounts: dict[str, str] = field(default_factory=dict)
    properties: dict[str, admin.Property] = field(default_factory=dict)
    streams: dict[str, admin.DataStream] = field(default_factory=dict)
    secrets: dict[str, admin.MeasurementProtocolSecret] = field(default_factory=dict)
    acknowledged: dict[str, str] = field(default_factory=dict)
    data_calls: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[grpc.StatusCode, str, int | None]] = field(default_factory=list)
    #: scripted Admin API failures (same shape), for SERVICE_DISABLED, a Viewer provisioning...
    admin_failures: list[tuple[grpc.StatusCode, str, int | None]] = field(default_factory=list)
    #: scripted token-endpoint answers ``(status, json)``; when empty every refresh is refused
    #: with ``invalid_grant``; a scripted 200 issues ``access_token`` "fake-access-token"
    token_answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    token_requests: int = 0
    #: the property's hourly token budget left before the first call (Google: 40,000 standard)
    hourly_tokens: int = 40000
    #: ``metadata`` of RunReport answers (sampling, thresholding, "(other)" row, currency...)
    report_metadata: data.ResponseMetaData | None = None
    grpc_endpoint: str = ""
    rest_url: str = ""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._grpc: grpc.Server | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._http: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None

    # -- seeding and test controls -------------------------------------------------------

    def add_account(self, account_id: str, display_name: str) -> None:
        self.accounts[account_id] = display_name

    def add_property(
        self,
        account_id: str,
        display_name: str,
        *,
        time_zone: str = "Europe/Berlin",
        currency: str = "EUR",
    ) -> str:
        prop = admin.Property(
            parent=f"accounts/{account_id}",
            display_name=display_name,
            time_zone=time_zone,
            currency_code=currency,
        )
        return self._create_property(prop).name.split("/")[1]

    def add_web_stream(self, property_id: str, default_uri: str, display_name: str) -> str:
        stream = admin.DataStream(
            type_=admin.DataStream.DataStreamType.WEB_DATA_STREAM,
            display_name=display_name,
            web_stream_data=admin.DataStream.WebStreamData(default_uri=default_uri),
        )
        return self._create_stream(f"properties/{property_id}", stream).name

    def fail_next_data_calls(
        self,
        count: int,
        code: grpc.StatusCode = grpc.StatusCode.RESOURCE_EXHAUSTED,
        retry_seconds: int | None = 30,
        message: str = "Exhausted property tokens per hour for this property.",
    ) -> None:
        """Make the next ``count`` Data API calls fail (default: quota exhausted, retry in 30 s)."""
        self.failures.extend([(code, message, retry_seconds)] * count)

    def fail_next_admin_calls(self, count: int, code: grpc.StatusCode, message: str) -> None:
        """Make the next ``count`` Admin API calls fail with ``code`` and Google's message."""
        self.admin_failures.extend([(code, message, None)] * count)

    def methods(self, service: str | None = None) -> list[str]:
        """The methods called so far, in order."""
        return [c.method for c in self.calls if service is None or c.service == service]

    def requests(self, method: str) -> list[Any]:
        return [c.request for c in self.calls if c.method == method]

    # -- serving -------------------------------------------------------------------------

    def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=4)
        server = grpc.server(self._executor)
        for service, handlers in self._grpc_handlers().items():
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, handlers),)
            )
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._grpc = server
        self.grpc_endpoint = f"127.0.0.1:{port}"
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _rest_handler(self))
        self._http_thread = threading.Thread(
            target=self._http.serve_forever, args=(0.05,), daemon=True
        )
        self._http_thread.start()
        self.rest_url = f"http://127.0.0.1:{self._http.server_address[1]}"

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(None).wait()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._http_thread is not None:
            self._http_thread.join()

    def _grpc_handlers(self) -> dict[str, dict[str, grpc.RpcMethodHandler]]:
        admin_methods: dict[str, tuple[Any, Any, Callable[[Any], Any]]] = {
            "ListAccountSummaries": (
                admin.ListAccountSummariesRequest,
                admin.ListAccountSummariesResponse,
                self.list_account_summaries,
            ),
            "ListProperties": (
                admin.ListPropertiesRequest,
                admin.ListPropertiesResponse,
                self.list_properties,
            ),
            "GetProperty": (admin.GetPropertyRequest, admin.Property, self.get_property),
            "CreateProperty": (admin.CreatePropertyRequest, admin.Property, self.create_property),
            "ListDataStreams": (
                admin.ListDataStreamsRequest,
                admin.ListDataStreamsResponse,
                self.list_data_streams,
            ),
            "CreateDataStream": (
                admin.CreateDataStreamRequest,
                admin.DataStream,
                self.create_data_stream,
            ),
            "AcknowledgeUserDataCollection": (
                admin.AcknowledgeUserDataCollectionRequest,
                admin.AcknowledgeUserDataCollectionResponse,
                self.acknowledge_user_data_collection,
            ),
            "ListMeasurementProtocolSecrets": (
                admin.ListMeasurementProtocolSecretsRequest,
                admin.ListMeasurementProtocolSecretsResponse,
                self.list_measurement_protocol_secrets,
            ),
            "CreateMeasurementProtocolSecret": (
                admin.CreateMeasurementProtocolSecretRequest,
                admin.MeasurementProtocolSecret,
                self.create_measurement_protocol_secret,
            ),
        }
        data_methods: dict[str, tuple[Any, Any, Callable[[Any], Any]]] = {
            "RunReport": (data.RunReportRequest, data.RunReportResponse, self.run_report),
            "BatchRunReports": (
                data.BatchRunReportsRequest,
                data.BatchRunReportsResponse,
                self.batch_run_reports,
            ),
            "RunRealtimeReport": (
                data.RunRealtimeReportRequest,
                data.RunRealtimeReportResponse,
                self.run_realtime_report,
            ),
        }
        alpha_methods: dict[str, tuple[Any, Any, Callable[[Any], Any]]] = {
            "RunFunnelReport": (
                alpha.RunFunnelReportRequest,
                alpha.RunFunnelReportResponse,
                self.run_funnel_report,
            ),
        }
        return {
            service: {
                name: grpc.unary_unary_rpc_method_handler(
                    self._grpc_method(service, name, handler),
                    request_deserializer=request_type.deserialize,
                    response_serializer=response_type.serialize,
                )
                for name, (request_type, response_type, handler) in methods.items()
            }
            for service, methods in (
                (ADMIN_SERVICE, admin_methods),
                (DATA_SERVICE, data_methods),
                (ALPHA_SERVICE, alpha_methods),
            )
        }

    def _grpc_method(
        self, service: str, name: str, handler: Callable[[Any], Any]
    ) -> Callable[[Any, grpc.ServicerContext], Any]:
        def method(request: Any, context: grpc.ServicerContext) -> Any:
            metadata = {key: str(value) for key, value in context.invocation_metadata()}
            try:
                return self.dispatch(service, name, handler, request, metadata, "grpc")
            except FakeRpcError as exc:
                context.abort_with_status(rpc_status.to_status(_status_proto(exc)))
                raise  # unreachable: abort_with_status raises

        return method

    def dispatch(
        self,
        service: str,
        name: str,
        handler: Callable[[Any], Any],
        request: Any,
        metadata: dict[str, str],
        transport: str,
    ) -> Any:
        """Record the call, check the token, inject failures, run the handler."""
        with self._lock:
            self.calls.append(Call(service, name, request, metadata, transport))
            token = metadata.get("authorization")
            if self.expected_token is not None and token != f"Bearer {self.expected_token}":
                raise FakeRpcError(grpc.StatusCode.UNAUTHENTICATED, "Invalid credentials")
            if service != ADMIN_SERVICE and self.failures:
                code, message, retry = self.failures.pop(0)
                raise FakeRpcError(code, message, retry)
            if service == ADMIN_SERVICE and self.admin_failures:
                code, message, retry = self.admin_failures.pop(0)
                raise FakeRpcError(code, message, retry)
            return handler(request)

    # -- Admin API -----------------------------------------------------------------------

    def _page(self, items: list[Any], page_size: int, page_token: str) -> tuple[list[Any], str]:
        size = page_size or self.page_size
        start = int(page_token or 0)
        end = start + size
        return items[start:end], (str(end) if end < len(items) else "")

    def list_account_summaries(
        self, request: admin.ListAccountSummariesRequest
    ) -> admin.ListAccountSummariesResponse:
        summaries = [
            admin.AccountSummary(
                name=f"accountSummaries/{account_id}",
                account=f"accounts/{account_id}",
                display_name=display_name,
                property_summaries=[
                    admin.PropertySummary(
                        property=prop.name,
                        display_name=prop.display_name,
                        property_type=admin.PropertyType.PROPERTY_TYPE_ORDINARY,
                        parent=prop.parent,
                    )
                    for prop in self.properties.values()
                    if prop.parent == f"accounts/{account_id}"
                ],
            )
            for account_id, display_name in sorted(self.accounts.items())
        ]
        page, token = self._page(summaries, request.page_size, request.page_token)
        return admin.ListAccountSummariesResponse(account_summaries=page, next_page_token=token)

    def list_properties(self, request: admin.ListPropertiesRequest) -> admin.ListPropertiesResponse:
        match = re.fullmatch(r"parent:accounts/(\d+)", request.filter)
        if match is None:
            raise FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "filter must be parent:accounts/N")
        self._account(match.group(1))
        props = [p for p in self.properties.values() if p.parent == f"accounts/{match.group(1)}"]
        page, token = self._page(props, request.page_size, request.page_token)
        return admin.ListPropertiesResponse(properties=page, next_page_token=token)

    def _account(self, account_id: str) -> str:
        if account_id not in self.accounts:
            raise FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, "No access to this account")
        return account_id

    def _property(self, name: str) -> admin.Property:
        prop = self.properties.get(name)
        if prop is None:
            raise FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, f"No access to {name}")
        return prop

    def get_property(self, request: admin.GetPropertyRequest) -> admin.Property:
        return self._property(request.name)

    def create_property(self, request: admin.CreatePropertyRequest) -> admin.Property:
        return self._create_property(request.property)

    def _create_property(self, prop: admin.Property) -> admin.Property:
        self._account(prop.parent.removeprefix("accounts/"))
        if not prop.display_name or not prop.time_zone:
            raise FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "display_name and time_zone")
        created = admin.Property(prop)
        created.name = f"properties/{1000 + next(self._ids)}"
        created.account = prop.parent
        created.property_type = admin.PropertyType.PROPERTY_TYPE_ORDINARY  # type: ignore[assignment]
        self.properties[created.name] = created
        return created

    def list_data_streams(
        self, request: admin.ListDataStreamsRequest
    ) -> admin.ListDataStreamsResponse:
        self._property(request.parent)
        streams = [s for s in self.streams.values() if s.name.startswith(request.parent + "/")]
        page, token = self._page(streams, request.page_size, request.page_token)
        return admin.ListDataStreamsResponse(data_streams=page, next_page_token=token)

    def create_data_stream(self, request: admin.CreateDataStreamRequest) -> admin.DataStream:
        return self._create_stream(request.parent, request.data_stream)

    def _create_stream(self, parent: str, stream: admin.DataStream) -> admin.DataStream:
        self._property(parent)
        if stream.type_ != admin.DataStream.DataStreamType.WEB_DATA_STREAM:
            raise FakeRpcError(grpc.StatusCode.UNIMPLEMENTED, "the fake makes web streams only")
        if not stream.web_stream_data.default_uri:
            raise FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "default_uri is required")
        created = admin.DataStream(stream)
        stream_id = 5000 + next(self._ids)
        created.name = f"{parent}/dataStreams/{stream_id}"
        created.web_stream_data.measurement_id = f"G-FAKE{stream_id}"
        self.streams[created.name] = created
        return created

    def acknowledge_user_data_collection(
        self, request: admin.AcknowledgeUserDataCollectionRequest
    ) -> admin.AcknowledgeUserDataCollectionResponse:
        self._property(request.property)
        if request.acknowledgement != ACKNOWLEDGEMENT:
            raise FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "wrong acknowledgement text")
        self.acknowledged[request.property] = request.acknowledgement
        return admin.AcknowledgeUserDataCollectionResponse()

    def list_measurement_protocol_secrets(
        self, request: admin.ListMeasurementProtocolSecretsRequest
    ) -> admin.ListMeasurementProtocolSecretsResponse:
        self._stream(request.parent)
        found = [s for s in self.secrets.values() if s.name.startswith(request.parent + "/")]
        page, token = self._page(found, request.page_size, request.page_token)
        return admin.ListMeasurementProtocolSecretsResponse(
            measurement_protocol_secrets=page, next_page_token=token
        )

    def _stream(self, name: str) -> admin.DataStream:
        stream = self.streams.get(name)
        if stream is None:
            raise FakeRpcError(grpc.StatusCode.NOT_FOUND, f"{name} not found")
        return stream

    def create_measurement_protocol_secret(
        self, request: admin.CreateMeasurementProtocolSecretRequest
    ) -> admin.MeasurementProtocolSecret:
        self._stream(request.parent)
        property_name = "/".join(request.parent.split("/")[:2])
        if property_name not in self.acknowledged:
            raise FakeRpcError(
                grpc.StatusCode.FAILED_PRECONDITION, "user data collection not acknowledged"
            )
        number = next(self._ids)
        created = admin.MeasurementProtocolSecret(request.measurement_protocol_secret)
        created.name = f"{request.parent}/measurementProtocolSecrets/mps{number}"
        created.secret_value = f"fake-mp-secret-{number}"
        self.secrets[created.name] = created
        return created

    # -- Data API ------------------------------------------------------------------------

    def _quota(self, property_name: str, module: Any) -> Any:
        self._property(property_name)
        used = self.data_calls[property_name] = self.data_calls.get(property_name, 0) + 1
        tokens = TOKENS_PER_CALL * used

        def status(consumed: int, remaining: int) -> Any:
            return module.QuotaStatus(consumed=consumed, remaining=remaining)

        return module.PropertyQuota(
            tokens_per_day=status(TOKENS_PER_CALL, 200000 - tokens),
            tokens_per_hour=status(TOKENS_PER_CALL, self.hourly_tokens - tokens),
            concurrent_requests=status(0, 10),
            server_errors_per_project_per_hour=status(0, 10),
            potentially_thresholded_requests_per_hour=status(0, 120),
            tokens_per_project_per_hour=status(TOKENS_PER_CALL, 14000 - tokens),
        )

    def run_report(self, request: data.RunReportRequest) -> data.RunReportResponse:
        if len(request.date_ranges) != 1:
            raise FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "the fake needs one date range")
        days = _days(request.date_ranges[0])
        answer = self._report(request, data.RunReportResponse, days, "analyticsData#runReport")
        if self.report_metadata is not None:
            answer.metadata = self.report_metadata
        return answer

    def batch_run_reports(
        self, request: data.BatchRunReportsRequest
    ) -> data.BatchRunReportsResponse:
        """Google's rules: 1 to 5 requests, each for the batch's property (or none)."""
        if not 1 <= len(request.requests) <= 5:
            raise FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "requests: 1 to 5 allowed")
        reports = []
        for sub in request.requests:
            if sub.property and sub.property != request.property:
                raise FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "requests[].property")
            sub.property = request.property
            reports.append(self.run_report(sub))
        return data.BatchRunReportsResponse(reports=reports, kind="analyticsData#batchRunReports")

    def run_realtime_report(
        self, request: data.RunRealtimeReportRequest
    ) -> data.RunRealtimeReportResponse:
        if any(d.name == "date" for d in request.dimensions):
            raise FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "date is not a realtime field")
        kind = "analyticsData#runRealtimeReport"
        return self._report(request, data.RunRealtimeReportResponse, [], kind)

    def _report(self, request: Any, response_type: Any, days: list[str], kind: str) -> Any:
        dims = [d.name for d in request.dimensions]
        metrics = [m.name for m in request.metrics]
        for name in metrics:
            if name not in INTEGER_METRICS and name not in FLOAT_METRICS:
                raise FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, f"unknown metric {name}")
        choices = []
        for name in dims:
            if name == "date":
                choices.append(days)
            elif name in DIMENSION_VALUES:
                choices.append(DIMENSION_VALUES[name])
            else:
                raise FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, f"unknown dimension {name}")
        rows: list[tuple[list[str], dict[str, float]]] = []
        for seed, values in enumerate(itertools.product(*choices), start=1):
            fields = dict(zip(dims, values, strict=True))
            row_metrics = {name: _metric(name, seed, fields) for name in metrics}
            record = {**_derived(fields), **fields}
            if _matches(request.dimension_filter, record) and _matches(
                request.metric_filter, {**record, **row_metrics}
            ):
                rows.append((list(values), row_metrics))
        for order in reversed(request.order_bys):
            if order.metric.metric_name:
                rows.sort(key=lambda r, o=order: r[1][o.metric.metric_name], reverse=order.desc)
            else:
                index = dims.index(order.dimension.dimension_name)
                rows.sort(key=lambda r, i=index: r[0][i], reverse=order.desc)
        offset = getattr(request, "offset", 0)
        limit = request.limit or 10000
        headers = [data.MetricHeader(name=n, type_=_metric_type(n)) for n in metrics]
        response = response_type(
            dimension_headers=[data.DimensionHeader(name=n) for n in dims],
            metric_headers=headers,
            rows=[_row(values, m, metrics) for values, m in rows[offset : offset + limit]],
            row_count=len(rows),
            kind=kind,
        )
        if data.MetricAggregation.TOTAL in request.metric_aggregations and rows:
            totals = {}
            for name in metrics:
                column = [m[name] for _, m in rows]
                total = sum(column) if name in INTEGER_METRICS else sum(column) / len(column)
                totals[name] = round(total, 6)
            response.totals = [_row(["RESERVED_TOTAL"] * len(dims), totals, metrics)]
        quota = self._quota(request.property, data)
        if request.return_property_quota:
            response.property_quota = quota
        return response

    def run_funnel_report(
        self, request: alpha.RunFunnelReportRequest
    ) -> alpha.RunFunnelReportResponse:
        steps = list(request.funnel.steps)
        if len(request.date_ranges) != 1 or len(steps) < 2:
            raise FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "one date range, two steps")
        _days(request.date_ranges[0], alpha)
        rows = []
        users = [1000 // 2**k for k in range(len(steps))]
        for k, step in enumerate(steps):
            if not step.filter_expression.funnel_event_filter.event_name:
                raise FakeRpcError(grpc.StatusCode.UNIMPLEMENTED, "event-name steps only")
            last = k == len(steps) - 1
            following = 0 if last else users[k + 1]
            abandoned = 0 if last else users[k] - following
            rows.append(
                alpha.Row(
                    dimension_values=[alpha.DimensionValue(value=f"{k + 1}. {step.name}")],
                    metric_values=[
                        alpha.MetricValue(value=str(users[k])),
                        alpha.MetricValue(value=repr(0.0 if last else following / users[k])),
                        alpha.MetricValue(value=str(abandoned)),
                        alpha.MetricValue(value=repr(abandoned / users[k])),
                    ],
                )
            )
        table = alpha.FunnelSubReport(
            dimension_headers=[alpha.DimensionHeader(name="funnelStepName")],
            metric_headers=[
                alpha.MetricHeader(name="activeUsers", type_=alpha.MetricType.TYPE_INTEGER),
                alpha.MetricHeader(
                    name="funnelStepCompletionRate", type_=alpha.MetricType.TYPE_FLOAT
                ),
                alpha.MetricHeader(
                    name="funnelStepAbandonments", type_=alpha.MetricType.TYPE_INTEGER
                ),
                alpha.MetricHeader(
                    name="funnelStepAbandonmentRate", type_=alpha.MetricType.TYPE_FLOAT
                ),
            ],
            rows=rows,
        )
        quota = self._quota(request.property, alpha)
        return alpha.RunFunnelReportResponse(
            funnel_table=table,
            property_quota=quota if request.return_property_quota else None,
            kind="analyticsData#runFunnelReport",
        )


ACKNOWLEDGEMENT = (
    "I acknowledge that I have the necessary privacy disclosures and rights from my end users "
    "for the collection and processing of their data, including the association of such data "
    "with the visitation information Google Analytics collects from my site and/or app property."
)


def _days(date_range: Any, module: Any = data) -> list[str]:
    try:
        start = dt.date.fromisoformat(date_range.start_date)
        end = dt.date.fromisoformat(date_range.end_date)
    except ValueError as exc:
        raise FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, f"bad date: {exc}") from exc
    if end < start:
        raise FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "end_date before start_date")
    return [
        (start + dt.timedelta(days=n)).strftime("%Y%m%d") for n in range((end - start).days + 1)
    ]


def _metric(name: str, seed: int, fields: dict[str, str]) -> float:
    if name in FLOAT_METRICS:
        return FLOAT_METRICS[name][0](seed)
    if name == "keyEvents" and fields.get("eventName", "purchase") not in KEY_EVENTS:
        return 0
    return seed * INTEGER_METRICS[name]


def _metric_type(name: str) -> data.MetricType:
    if name in FLOAT_METRICS:
        return FLOAT_METRICS[name][1]
    return data.MetricType.TYPE_INTEGER


def _derived(fields: dict[str, str]) -> dict[str, str]:
    source_medium = fields.get("sessionSourceMedium")
    if source_medium is None:
        return {}
    source, medium = source_medium.split(" / ")
    return {"sessionSource": source, "sessionMedium": medium}


def _row(values: list[str], metrics: dict[str, float], names: list[str]) -> data.Row:
    return data.Row(
        dimension_values=[data.DimensionValue(value=v) for v in values],
        metric_values=[data.MetricValue(value=_number(metrics[n])) for n in names],
    )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _matches(expression: data.FilterExpression, record: dict[str, Any]) -> bool:
    """Evaluate the subset of FilterExpression the connector sends."""
    kind = data.FilterExpression.pb(expression).WhichOneof("expr")
    if kind is None:
        return True
    if kind == "and_group":
        return all(_matches(e, record) for e in expression.and_group.expressions)
    if kind == "or_group":
        return any(_matches(e, record) for e in expression.or_group.expressions)
    if kind == "not_expression":
        return not _matches(expression.not_expression, record)
    flt = expression.filter
    if flt.field_name not in record:
        raise FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, f"cannot filter on {flt.field_name}")
    value = record[flt.field_name]
    which = data.Filter.pb(flt).WhichOneof("one_filter")
    if which == "string_filter":
        sf = flt.string_filter
        if sf.match_type != data.Filter.StringFilter.MatchType.EXACT:
            raise FakeRpcError(grpc.StatusCode.UNIMPLEMENTED, "EXACT string filters only")
        return str(value) == sf.value
    if which == "in_list_filter":
        return str(value) in list(flt.in_list_filter.values)
    if which == "numeric_filter":
        nf = flt.numeric_filter
        target = nf.value.double_value if "double_value" in nf.value else nf.value.int64_value
        ops = data.Filter.NumericFilter.Operation
        compare = {
            ops.EQUAL: value == target,
            ops.LESS_THAN: value < target,
            ops.LESS_THAN_OR_EQUAL: value <= target,
            ops.GREATER_THAN: value > target,
            ops.GREATER_THAN_OR_EQUAL: value >= target,
        }
        return bool(compare[nf.operation])
    raise FakeRpcError(grpc.StatusCode.UNIMPLEMENTED, f"{which} filters are not faked")


def _status_proto(exc: FakeRpcError) -> status_pb2.Status:
    status = status_pb2.Status(code=getattr(code_pb2, exc.code.name), message=exc.message)
    if exc.retry_seconds is not None:
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.RetryInfo(
                retry_delay=duration_pb2.Duration(seconds=exc.retry_seconds)
            )
        )
        status.details.append(detail)
    return status


_REST_PATH = re.compile(r"/(v1beta|v1alpha)/(properties/[^/:]+):(\w+)")


def _rest_handler(fake: FakeGA4) -> type[BaseHTTPRequestHandler]:
    """The REST transport of the Data API report calls (JSON bodies, proto-plus JSON mapping)."""
    routes: dict[tuple[str, str], tuple[str, str, Any, Any, Callable[[Any], Any]]] = {
        ("v1beta", "runReport"): (
            DATA_SERVICE,
            "RunReport",
            data.RunReportRequest,
            data.RunReportResponse,
            fake.run_report,
        ),
        ("v1beta", "runRealtimeReport"): (
            DATA_SERVICE,
            "RunRealtimeReport",
            data.RunRealtimeReportRequest,
            data.RunRealtimeReportResponse,
            fake.run_realtime_report,
        ),
        ("v1alpha", "runFunnelReport"): (
            ALPHA_SERVICE,
            "RunFunnelReport",
            alpha.RunFunnelReportRequest,
            alpha.RunFunnelReportResponse,
            fake.run_funnel_report,
        ),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            path = self.path.split("?")[0]
            match = _REST_PATH.fullmatch(path)
            route = routes.get((match.group(1), match.group(3))) if match else None
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() or "{}"
            if path == "/token":  # refuses every refresh token unless answers are scripted
                fake.token_requests += 1
                if fake.token_answers:
                    status, answer = fake.token_answers.pop(0)
                    self._send(status, answer)
                    return
                self._send(400, {"error": "invalid_grant", "error_description": "Bad Request"})
                return
            if match is None or route is None:
                self._send(404, {"error": {"code": 404, "message": path, "status": "NOT_FOUND"}})
                return
            service, name, request_type, response_type, handler = route
            request = request_type.from_json(body, ignore_unknown_fields=True)
            request.property = match.group(2)
            metadata = {key.lower(): value for key, value in self.headers.items()}
            try:
                response = fake.dispatch(service, name, handler, request, metadata, "rest")
            except FakeRpcError as exc:
                status = HTTP_STATUS.get(exc.code, 500)
                error: dict[str, Any] = {"code": status, "message": exc.message}
                error["status"] = exc.code.name
                if exc.retry_seconds is not None:
                    error["details"] = [
                        {
                            "@type": "type.googleapis.com/google.rpc.RetryInfo",
                            "retryDelay": f"{exc.retry_seconds}s",
                        }
                    ]
                self._send(status, {"error": error})
                return
            self._send(200, json.loads(response_type.to_json(response)))

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            raw = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: pytest output is for assertions."""

    return Handler


@contextmanager
def running_fake(**options: Any) -> Iterator[FakeGA4]:
    """A started fake, stopped (sockets closed, threads joined) on exit."""
    fake = FakeGA4(**options)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
