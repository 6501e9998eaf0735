"""Every togo answer decodes strictly into mirrors of togo's Go types, with the right numbers.

togo's clients decode our answers with ``encoding/json`` into ``Count``, ``Dashboard``,
``FunnelStep``, ``RetentionRow``, ``VolumePoint`` and a bare ``int`` (active users). Go ignores
unknown keys and zero-fills missing ones, so a wrong shape decodes silently as zeros; this
decoder is stricter than Go (unknown or missing keys, a float where Go wants an ``int``, are
errors), so a shape drift fails here instead of in a client's charts.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

from flask import Flask

from .test_compat_togo import BASE, EVENTS


@dataclasses.dataclass(frozen=True)
class Count:
    key: str
    count: int


@dataclasses.dataclass(frozen=True)
class VolumePoint:
    time: str
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
