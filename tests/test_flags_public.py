"""What anonymous ``/api/flags`` and ``/api/consent`` may cost and reveal (issue 12, items 4 and 6).

A made-up ``scope_id`` costs one primary-key read and a bounded cache entry, writes nothing and
sets no cookie; the definitions of real scopes stay cached however many are made up; the
listing names only live flags (running, or stopped with a shipped variant).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, func, select

from flask_umetrics import (
    UMetrics,
    create_experiment,
    pause_experiment,
    set_killed,
    start_experiment,
    stop_experiment,
)
from flask_umetrics.db.tables import metadata

from .conftest import AppFactory

API = "/umetrics/api"
COOKIE = "umetrics_consent"
FLOOD = 5_000
BOUND = 50


@pytest.fixture(autouse=True)
def cookie_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # With a cookie key, anonymous visitors could be given cookies: the worst case.
    monkeypatch.setenv("UMETRICS_COOKIE_KEY_CURRENT", "k1")
    monkeypatch.setenv("UMETRICS_COOKIE_KEY_k1", base64.b64encode(b"k" * 32).decode())


def public_app(make_app: AppFactory, **config: Any) -> Flask:
    # Consent not required: an anonymous visitor counts as consenting, the costliest case.
    settings: dict[str, Any] = {
        "UMETRICS_CONSENT_REQUIRED": False,
        "UMETRICS_FLAGS_REFRESH_SECONDS": 3600,
    }
    settings.update(config)
    return make_app(UMetrics(), **settings)


def flag(key: str, **extra: Any) -> dict[str, Any]:
    return {"key": key, "kind": "flag", **extra}


def row_counts(app: Flask) -> dict[str, int]:
    with app.extensions["umetrics"].engine.connect() as connection:
        return {
            table.name: int(
                connection.execute(select(func.count()).select_from(table)).scalar_one()
            )
            for table in metadata.sorted_tables
        }


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    seen: list[str] = []
    engine = app.extensions["umetrics"].engine

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def touching(seen: list[str], table: str) -> int:
    return sum(1 for statement in seen if table in statement)


# -- bounded memory -----------------------------------------------------------------------------


def test_made_up_scopes_are_bounded_and_write_nothing(make_app: AppFactory) -> None:
    # 5,000 requests from one address: far past the per-IP rate limit, which is not what this
    # test is about (a flood from many addresses fills the cache the same way).
    app = public_app(
        make_app, UMETRICS_FLAG_CACHE_SCOPES=BOUND, UMETRICS_RATELIMIT_PUBLIC="100000 per minute"
    )
    cache = app.extensions["umetrics"].flag_cache
    with app.app_context():
        create_experiment(flag("new-nav"))
        start_experiment("new-nav")
    client = app.test_client()
    warm = client.get(f"{API}/flags?keys=new-nav")
    assert warm.status_code == 200 and warm.json["flags"]["new-nav"]["in_experiment"] is True
    before = row_counts(app)
    assert before["umetrics_exposures"] == 1
    loads = cache.loads

    scopes = {f"s-{secrets.token_hex(8)}" for _ in range(FLOOD)}
    assert len(scopes) == FLOOD
    with statements(app) as seen:
        for scope in scopes:
            visitor = app.test_client()
            answer = visitor.get(f"{API}/flags?scope_id={scope}")
            assert answer.status_code == 200
            assert answer.json == {"flags": {}, "consent": True}
            assert "Set-Cookie" not in answer.headers
    # One primary-key read each, no definition load, no write.
    assert touching(seen, "umetrics_flag_generations") == FLOOD
    assert touching(seen, "umetrics_experiments") == 0
    assert not [s for s in seen if not s.lstrip().upper().startswith("SELECT")]
    assert row_counts(app) == before
    assert cache.loads == loads
    # Held: the real scope, and at most BOUND flagless scopes (the most recent ones).
    assert cache.max_scopes == BOUND
    assert cache.scopes_with_flags() == ["default"]
    assert len(cache) == 1 + BOUND

    # The real scope was never pushed out: served from the cache, no definition read.
    with statements(app) as seen:
        again = client.get(f"{API}/flags?keys=new-nav")
    assert again.json["flags"]["new-nav"] == warm.json["flags"]["new-nav"]
    assert touching(seen, "umetrics_experiments") == 0
    assert touching(seen, "umetrics_flag_generations") == 0


def test_scopes_with_flags_are_an_lru(make_app: AppFactory) -> None:
    app = public_app(make_app, UMETRICS_FLAG_CACHE_SCOPES=2)
    cache = app.extensions["umetrics"].flag_cache
    with app.app_context():
        for scope in ("a", "b", "c"):
            create_experiment(flag("f"), scope_id=scope)
            start_experiment("f", scope_id=scope)
    client = app.test_client()
    for scope in ("a", "b", "a", "c"):
        assert client.get(f"{API}/flags?scope_id={scope}").json["flags"]["f"]["in_experiment"]
    assert cache.scopes_with_flags() == ["a", "c"]  # b was the least recently used
    with statements(app) as seen:
        client.get(f"{API}/flags?scope_id=b")
    assert touching(seen, "umetrics_experiments") == 1  # reloaded, and then held again
    assert cache.scopes_with_flags() == ["c", "b"]


def test_default_bound_is_documented_setting(make_app: AppFactory) -> None:
    app = make_app()
    assert app.config["UMETRICS_FLAG_CACHE_SCOPES"] == 1000
    assert app.extensions["umetrics"].flag_cache.max_scopes == 1000


# -- no running flag: nothing stored, no cookie -------------------------------------------------

NOT_SERVED = ("draft", "paused", "stopped", "killed", "scheduled", "expired")


def every_status(app: Flask, scope: str = "default", *, live: bool = True) -> None:
    """One flag per status; ``running``, ``shipped`` and ``killed`` are the live ones (only
    with ``live``: without, the scope has no running flag)."""
    future = datetime.now(timezone.utc) + timedelta(days=30)
    past = datetime.now(timezone.utc) - timedelta(days=1)
    with app.app_context():
        for key in ("draft", "paused", "stopped", "shipped", "killed"):
            create_experiment(flag(key), scope_id=scope)
        create_experiment(flag("scheduled", start_at=future), scope_id=scope)
        create_experiment(
            flag("expired", start_at=past - timedelta(days=1), stop_at=past), scope_id=scope
        )
        for key in ("paused", "stopped", "shipped", "killed", "scheduled", "expired"):
            start_experiment(key, scope_id=scope)
        pause_experiment("paused", scope_id=scope)
        stop_experiment("stopped", scope_id=scope)
        set_killed("killed", True, scope_id=scope)
        if live:
            create_experiment(flag("running"), scope_id=scope)
            start_experiment("running", scope_id=scope)
            stop_experiment("shipped", shipped_variant="on", scope_id=scope)
        else:
            stop_experiment("shipped", scope_id=scope)  # stopped without shipping


def test_anonymous_listing_names_only_live_flags(make_app: AppFactory) -> None:
    app = public_app(make_app)
    every_status(app)
    listed = app.test_client().get(f"{API}/flags")
    assert listed.status_code == 200
    assert sorted(listed.json["flags"]) == ["killed", "running", "shipped"]
    flags = listed.json["flags"]
    assert flags["shipped"] == {
        "variant": "on",
        "enabled": True,
        "in_experiment": False,
        "value": True,
    }
    assert flags["killed"] == {
        "variant": "off",
        "enabled": False,
        "in_experiment": False,
        "value": False,
    }
    assert flags["running"]["in_experiment"] is True


def test_flags_that_are_not_served_set_no_cookie_and_write_nothing(make_app: AppFactory) -> None:
    app = public_app(make_app)
    every_status(app, scope="quiet", live=False)
    before = row_counts(app)
    keys = ",".join(NOT_SERVED)
    visitor = app.test_client()
    answer = visitor.get(f"{API}/flags?scope_id=quiet&keys={keys}")
    assert answer.status_code == 200
    assert {key: value["variant"] for key, value in answer.json["flags"].items()} == {
        key: "off" for key in NOT_SERVED
    }
    assert "Set-Cookie" not in answer.headers
    assert row_counts(app) == before


def test_consent_then_flags_loops_store_nothing_without_a_running_flag(
    make_app: AppFactory,
) -> None:
    # Consent required (the default): each loop is a fresh visitor who consents, then asks.
    app = public_app(make_app, UMETRICS_CONSENT_REQUIRED=True)
    every_status(app, scope="quiet", live=False)
    before = row_counts(app)
    keys = ",".join(NOT_SERVED)
    for scope in ("quiet", "made-up"):
        for _ in range(20):
            visitor = app.test_client()
            given = visitor.post(f"{API}/consent", json={"consent": True, "scope_id": scope})
            assert given.status_code == 200 and given.json["consent"] is True
            assert visitor.get_cookie(COOKIE) is not None
            listed = visitor.get(f"{API}/flags?scope_id={scope}")
            asked = visitor.get(f"{API}/flags?scope_id={scope}&keys={keys}")
            assert listed.status_code == asked.status_code == 200
            assert all(not v["in_experiment"] for v in asked.json["flags"].values())
    assert row_counts(app) == before
