"""Every togo answer decodes strictly into mirrors of togo's Go types, with the right numbers.

togo's clients decode our answers with ``encoding/json`` into ``Count``, ``Dashboard``,
``FunnelStep``, ``RetentionRow``, ``VolumePoint`` and a bare ``int`` (active users). Go ignores
unknown keys and zero-fills missing ones, so a wrong shape decodes silently as zeros; this
decoder is stricter than Go (unknown or missing keys, a float where Go wants an ``int``, a
``time.Time`` that is not RFC 3339, are errors), so a shape drift fails here instead of in a
client's charts.

Where the mirrors come from. togo's Go source (module ``github.com/togo-framework/analytics``,
v0.1.0 and v0.1.1) is not in the reference library: the repository has no stored snapshot and
its module archive cannot be fetched here. What is stored is its pkg.go.dev page
(``pkg.go.dev/github.com/togo-framework/analytics?tab=versions``), which lists every exported
field with its Go type, and the mirrors below follow it field for field:

- ``Count {Count int; Key string}``
- ``Dashboard {DAU int; TopEvents []Count; TotalEvents int; WAU int}``
- ``FunnelStep {Conversion float64; Count int; Event string}``
- ``RetentionRow {OffsetDays int; Returned int}``
- ``VolumePoint {Count int; Time time.Time}``
- ``ActiveUsers(from, to) int``

That listing shows no JSON tags. The snake_case keys (``offset_days``, ``total_events``,
``top_events``) are the ones togo's documentation and issue 18's Go decoder used; the other keys
are the field names in lower case, which Go's decoder matches case-insensitively to an untagged
field, so they decode whether or not the fields are tagged (docs/compat-and-query.md).
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from typing import Any

from flask import Flask

from .test_compat_togo import BASE, EVENTS


@dataclasses.dataclass(frozen=True)
class Count:
    key: str
    count: int


class GoTime(str):
    """A Go ``time.Time``: its JSON is an RFC 3339 string (``time.RFC3339Nano``)."""


#: What ``time.Time.UnmarshalJSON`` accepts: RFC 3339, seconds required, ``Z`` or an offset.
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


@dataclasses.dataclass(frozen=True)
class VolumePoint:
    time: GoTime
    count: int


@dataclasses.dataclass(frozen=True)
class FunnelStep:
    event: str
    count: int
    conversion: float


@dataclasses.dataclass(frozen=True)
class RetentionRow:
    offset_days: int
    returned: int


@dataclasses.dataclass(frozen=True)
class Dashboard:
    total_events: int
    dau: int
    wau: int
    top_events: list[Count]


def decode(kind: Any, value: Any, where: str = "$") -> Any:
    """``value`` as ``kind``, refusing anything Go's decoder would drop, zero-fill or refuse."""
    origin = typing.get_origin(kind)
    if origin is list:
        assert isinstance(value, list), f"{where}: want an array, got {value!r}"
        (item,) = typing.get_args(kind)
        return [decode(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(kind):
        assert isinstance(value, dict), f"{where}: want an object, got {value!r}"
        hints = typing.get_type_hints(kind)
        assert set(value) == set(hints), f"{where}: keys {sorted(value)} != {sorted(hints)}"
        return kind(**{k: decode(t, value[k], f"{where}.{k}") for k, t in hints.items()})
    if kind is int:
        assert type(value) is int, f"{where}: want an integer, got {value!r}"
    elif kind is float:
        assert type(value) in (int, float), f"{where}: want a number, got {value!r}"
    elif kind is GoTime:
        assert isinstance(value, str), f"{where}: want an RFC 3339 string, got {value!r}"
        assert RFC3339.fullmatch(value), f"{where}: not RFC 3339: {value!r}"
    elif kind is str:
        assert isinstance(value, str), f"{where}: want a string, got {value!r}"
    return value


def test_decoder_refuses_unknown_missing_and_float_for_int() -> None:
    for bad in (
        {"offset_days": 1, "returned": 2, "rate": 1.0},  # the old extra field
        {"offset_days": 1},
        {"offset_days": 1, "returned": 2.0},
    ):
        try:
            decode(RetentionRow, bad)
        except AssertionError:
            continue
        raise AssertionError(f"accepted {bad}")
    for bad_time in ("2026-03-02", "2026-03-02 00:00:00+00:00", "2026-03-02T00:00+00:00"):
        try:
            decode(VolumePoint, {"time": bad_time, "count": 1})
        except AssertionError:
            continue
        raise AssertionError(f"accepted {bad_time}")
    assert decode(VolumePoint, {"time": "2026-03-02T00:00:00Z", "count": 1}).count == 1


def test_every_togo_answer_decodes_strictly(make_app: Any) -> None:
    app: Flask = make_app(UMETRICS_ENABLE_TOGO_API=True, UMETRICS_MAX_EVENT_AGE_DAYS=0)
    from flask_umetrics import create_api_key

    with app.app_context():
        write = create_api_key("default", "ingest")
        read = create_api_key("default", "metrics.view")
    client = app.test_client()
    stored = client.post(
        f"{BASE}/events", json={"events": EVENTS}, headers={"X-UMetrics-Key": write}
    )
    assert stored.status_code == 200, stored.json

    def answer(path: str) -> Any:
        reply = client.get(f"{BASE}/{path}", headers={"Authorization": f"Bearer {read}"})
        assert reply.status_code == 200, reply.get_data(as_text=True)
        return json.loads(reply.get_data(as_text=True))

    window = "from=2026-03-02&to=2026-03-05"
    assert decode(list[VolumePoint], answer(f"volume?{window}")) == [
        VolumePoint("2026-03-02T00:00:00+00:00", 6),
        VolumePoint("2026-03-03T00:00:00+00:00", 2),
        VolumePoint("2026-03-04T00:00:00+00:00", 3),
    ]
    assert decode(list[Count], answer(f"top?{window}&limit=2")) == [
        Count("visit", 6),
        Count("buy", 2),
    ]
    assert decode(list[FunnelStep], answer(f"funnel?step=visit&step=signup&{window}")) == [
        FunnelStep("visit", 4, 1.0),
        FunnelStep("signup", 2, 0.5),
    ]
    assert decode(list[RetentionRow], answer("retention?from=2026-03-02&offsets=0,1,2")) == [
        RetentionRow(0, 3),
        RetentionRow(1, 2),
        RetentionRow(2, 1),
    ]
    assert decode(int, answer(f"active?{window}")) == 4
    assert decode(Dashboard, answer("dashboard?days=3&to=2026-03-05")) == Dashboard(
        total_events=11,
        dau=2,
        wau=4,
        top_events=[Count("visit", 6), Count("buy", 2), Count("signup", 2), Count("email_sent", 1)],
    )
