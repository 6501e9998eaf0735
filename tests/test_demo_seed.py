"""``seed-demo`` tells the truth: nothing dated after the run, no day out of line with the rest,
a stat history that runs into what the collectors compute now, people whose properties follow
their events, a printed summary equal to what is stored, the same data for the same ``--seed``,
and URLs on the port the demo is served on (``DEMO_PORT``).

Seeded at a small scale (30 days, 60 users, like the browser tests), once per backend.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from flask_umetrics import experiment_results, get_experiment, get_latest_stat, get_stat_series
from flask_umetrics.db.tables import (
    events,
    exposures,
    person_distinct_ids,
    persons,
    stat_readings,
)
from flask_umetrics.state import current_state

SMALL = ["--days", "30", "--users", "60"]
#: Events only a logged-in user can cause in the app (views.py): never under an anonymous id.
IDENTIFIED_ONLY = {"signed_up", "logged_in", "note_created", "plan_upgraded", "plan_cancelled"}
PLAN_EVENTS = ("plan_upgraded", "plan_cancelled")
MICROS = 1_000_000


@dataclass
class Seeded:
    app: Flask
    output: str
    #: The seed's anchor, as it printed it.
    anchor: datetime
    #: A moment after seeding: nothing stored may be later.
    checked_at: datetime


def seed_demo(
    database_url: str, instance: Path, *args: str, port: str | None = None
) -> tuple[Flask, str]:
    from example_app import create_app

    app = create_app(
        {"TESTING": True, "INSTANCE_PATH": str(instance), "SQLALCHEMY_DATABASE_URI": database_url}
    )
    env = {"DEMO_PORT": port} if port is not None else {}
    result = app.test_cli_runner().invoke(args=["seed-demo", *args], env=env)
    assert result.exit_code == 0, result.output
    return app, result.output


def anchor_of(output: str) -> datetime:
    found = re.search(r"^history: \d+ days up to (\S+) \(seed \d+\)$", output, re.MULTILINE)
    assert found is not None, output
    return datetime.fromisoformat(found.group(1))


def drop_app_tables(app: Flask) -> None:
    """The example app's own tables (users, notes, ...) are not the suite's to keep."""
    from example_app.database import db

    with app.app_context():
        db.session.remove()
        db.drop_all()
        for engine in db.engines.values():
            engine.dispose()


@pytest.fixture
def seeded(database_url: str, tmp_path: Path) -> Iterator[Seeded]:
    app, output = seed_demo(database_url, tmp_path / "instance", *SMALL, port="5123")
    yield Seeded(app, output, anchor_of(output), datetime.now(timezone.utc))
    drop_app_tables(app)


def micros(moment: datetime) -> int:
    return int(moment.timestamp() * MICROS)


def day_of(ts: int) -> str:
    return datetime.fromtimestamp(ts / MICROS, timezone.utc).date().isoformat()


def printed(output: str, pattern: str) -> str:
    found = re.search(pattern, output, re.MULTILINE)
    assert found is not None, f"{pattern!r} not in the output:\n{output}"
    return found.group(1)


def test_seed_demo_tells_the_truth(seeded: Seeded) -> None:
    from example_app import metrics
    from example_app.database import db
    from example_app.models import Note, Organization, Subscription, User

    app, now = seeded.app, seeded.checked_at
    assert seeded.anchor <= now and now - seeded.anchor < timedelta(minutes=5)
    with app.app_context():
        state = current_state()
        with state.engine.connect() as connection:
            rows = connection.execute(
                select(events.c.distinct_id, events.c.event, events.c.ts, events.c.properties)
            ).all()
            exposed = connection.execute(select(exposures.c.ts)).scalars().all()
            readings = connection.execute(
                select(stat_readings.c.metric_key, stat_readings.c.captured_at)
            ).all()
            person_rows = connection.execute(
                select(
                    person_distinct_ids.c.distinct_id, persons.c.properties, persons.c.created_at
                ).join(persons, persons.c.id == person_distinct_ids.c.person_id)
            ).all()
        users = db.session.scalars(select(User)).all()
        plans_now = {str(user.id): user.plan for user in users}
        notes = db.session.scalars(select(Note.created_at)).all()
        changes = db.session.execute(
            select(Subscription.started_at, Subscription.cancelled_at)
        ).all()
        experiment = get_experiment("pricing-page", scope_id="acme")
        assert experiment is not None and experiment.started_at is not None

        # 1. Nothing after the run: events (so no person is last seen in the future),
        # exposures, stat readings, persons, and the app's own rows.
        assert rows and exposed and readings
        assert max(ts for _d, _e, ts, _p in rows) <= micros(now)
        assert max(exposed) <= micros(now)
        assert max(at for _k, at in readings) <= now
        assert max(created for _d, _p, created in person_rows) <= now
        assert max(u.last_seen_at for u in users if u.last_seen_at) <= now
        assert max(notes) <= now
        assert max(max(s, c or s) for s, c in changes) <= now
        # The experiment has run for 15 days (half the history): its exposures are spread
        # over its running days, none before it started.
        assert experiment.started_at <= now - timedelta(days=14)
        assert min(exposed) >= micros(experiment.started_at)
        exposures_per_day = Counter(day_of(ts) for ts in exposed)
        assert len(exposures_per_day) >= 10
        assert max(exposures_per_day.values()) <= len(exposed) / 4

        # 2. No day far out of line: at most 3x the median day's events.
        per_day = Counter(day_of(ts) for _d, _e, ts, _p in rows)
        median = statistics.median(per_day.values())
        busiest = max(per_day.items(), key=lambda item: item[1])
        assert busiest[1] <= 3 * median, (busiest, median)

        # 3. The stat history runs into what the collectors compute now: the last reading of
        # every collector is what it computes now, every backfilled reading is its metric as
        # of that moment, and each metric's live definition agrees with its as-of one now.
        for collector in state.collectors:
            latest = get_latest_stat(collector.key, scope_id="acme")
            assert latest is not None and latest.value == collector.collect("acme"), collector.key
        for key, measure in metrics.METRICS.items():
            series = get_stat_series(key, scope_id="acme", limit=1000)
            history = [r for r in series if r.source == "demo"]
            assert len(history) == 30
            assert all(r.value == measure(r.captured_at) for r in history), key
            assert series[-1].source == "collector" and series[-1].captured_at >= seeded.anchor
            # No cliff at the right edge: today's step is not out of line with the history's.
            values = [r.value for r in series]
            steps = [abs(b - a) for a, b in pairwise(values)]
            assert steps[-1] <= 2 * max(steps[:-1]), (key, steps)

        frozen = datetime.now(timezone.utc)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(metrics, "utcnow", lambda: frozen)
            for key, measure in metrics.METRICS.items():
                assert measure(None) == measure(frozen), key

    # 4. People follow their events: only users cause identified-only events; each user's
    # person has the plan of their last plan event (Free without one), which is their plan.
    anonymous = {d for d, _e, _ts, _p in rows if d not in plans_now}
    assert anonymous and all(d.startswith("v-") for d in anonymous)
    assert {e for d, e, _ts, _p in rows if d in anonymous} == {"$pageview"}
    assert all(d in plans_now for d, e, _ts, _p in rows if e in IDENTIFIED_ONLY)
    last_plan: dict[str, tuple[int, str]] = {}
    for distinct_id, name, ts, props in rows:
        if name in PLAN_EVENTS and ts >= last_plan.get(distinct_id, (-1, ""))[0]:
            last_plan[distinct_id] = (ts, props["plan"])
    properties = {d: props for d, props, _created in person_rows}
    upgraded = {d for d, e, _ts, _p in rows if e == "plan_upgraded"}
    assert upgraded and any(plan != "free" for plan in plans_now.values())
    for user_id, plan in plans_now.items():
        assert properties[user_id]["plan"] == plan == last_plan.get(user_id, (0, "free"))[1]

    # 5. The summary printed is what is stored.
    with app.app_context():
        results = experiment_results(experiment)
        stored = {
            "users": len(users),
            "organizations": db.session.scalar(select(func.count(Organization.id))),
            "notes": len(notes),
            "paying customers": metrics.paying_customers(),
            "MRR": f"${metrics.mrr():,.0f}",
            "events": len(rows),
            "stat readings": len(readings),
        }
    output = seeded.output
    assert int(printed(output, r"^users: (\d+)$")) == stored["users"] == 60
    assert int(printed(output, r"^organizations: (\d+)$")) == stored["organizations"]
    assert int(printed(output, r"^notes: (\d+)$")) == stored["notes"]
    assert printed(output, r"^paying customers: (\d+ \(MRR \$[\d,]+\))$") == (
        f"{stored['paying customers']} (MRR {stored['MRR']})"
    )
    assert int(printed(output, r"^events: (\d+) ")) == stored["events"]
    assert printed(output, r"^Stored: (.*)$") == "; ".join(
        f"{name}: {stored[name]}"
        for name in ("users", "notes", "paying customers", "MRR", "events", "stat readings")
    )
    for row in results["variants"]:
        shown = printed(output, rf"^  {re.escape(row['key'])} +(exposed +\d+ +upgraded +\d+)")
        assert shown.split() == [
            "exposed",
            str(row["exposures"]),
            "upgraded",
            f"{row['total']:.0f}",
        ]

    # 6. URLs on the port the demo is served on.
    assert "http://127.0.0.1:5123/login" in output
    assert "flask --app example_app run --port 5123" in output
    assert ":5000" not in output
    credentials = (Path(app.instance_path) / "demo-credentials.txt").read_text()
    assert "http://127.0.0.1:5123/umetrics/api/stats" in credentials and ":5000" not in credentials


def _relative_history(app: Flask, anchor: datetime) -> dict[str, Any]:
    """Everything seeded, with times as offsets from the anchor."""
    from example_app.database import db
    from example_app.models import Note, Subscription, User

    base = micros(anchor)
    with app.app_context():
        with current_state().engine.connect() as connection:
            tracked = sorted(
                (d, e, ts - base, sorted((p or {}).items()))
                for d, e, ts, p in connection.execute(
                    select(events.c.distinct_id, events.c.event, events.c.ts, events.c.properties)
                )
            )
            exposed = sorted(
                (s, v, ts - base)
                for s, v, ts in connection.execute(
                    select(exposures.c.subject_id, exposures.c.variant, exposures.c.ts)
                )
            )
        users = sorted(
            (u.email, u.created_at - anchor, u.plan) for u in db.session.scalars(select(User))
        )
        notes = sorted(
            (n.user_id, n.title, n.created_at - anchor) for n in db.session.scalars(select(Note))
        )
        plans = sorted(
            (s.organization_id, s.plan, s.started_at - anchor)
            for s in db.session.scalars(select(Subscription))
        )
    return {"events": tracked, "exposures": exposed, "users": users, "notes": notes, "plans": plans}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_same_seed_same_data(database_url: str, tmp_path: Path, backend: str) -> None:
    """``--seed N`` twice: the same history, shifted to each run's anchor; another seed differs."""
    small = ["--days", "20", "--users", "30"]
    histories = []
    for run, seed in enumerate(("7", "7", "8")):
        app, output = seed_demo(database_url, tmp_path / f"run{run}", *small, "--seed", seed)
        assert f"(seed {seed})" in output
        histories.append(_relative_history(app, anchor_of(output)))
        drop_app_tables(app)
    first, again, other = histories
    assert first["events"] and first["exposures"] and first["notes"]
    assert first == again
    assert other["events"] != first["events"] and other["users"] != first["users"]


#: The seed's anchor in both demos below, so their histories are the same to the microsecond.
ANCHOR = datetime(2026, 3, 18, 15, 30, tzinfo=timezone.utc)
DEMO_RANGE = "scope_id=acme&date_from=2026-02-16&date_to=2026-03-19"


class _AnchoredClock(datetime):
    """``datetime`` whose ``now()`` is :data:`ANCHOR` (only the seed's own module sees it)."""

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return ANCHOR


def demo_answers(app: Flask) -> dict[str, Any]:
    """The dashboard summary and a few reports of the demo, as its admin reads them (REST)."""
    import base64

    token = base64.b64encode(b"admin@example.com:demo").decode()
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Basic {token}"
    paths = {
        "dashboard": f"/query/dashboard?{DEMO_RANGE}",
        "volume": f"/query/volume?{DEMO_RANGE}",
        "weekly_visitors": f"/query/trends?event=$pageview&math=unique_persons"
        f"&interval=week&{DEMO_RANGE}",
        "top_pages": f"/query/top?event=$pageview&property=path&{DEMO_RANGE}",
        "active": f"/query/active?series=dau&{DEMO_RANGE}",
        "funnel": f"/query/funnel?step=$pageview&step=signed_up&step=plan_upgraded&{DEMO_RANGE}",
        "retention": f"/query/retention?start_event=signed_up&return_event=note_created"
        f"&period=week&periods=3&{DEMO_RANGE}",
        "sessions": f"/query/sessions?{DEMO_RANGE}",
        "attribution": f"/query/attribution?conversion_event=plan_upgraded&{DEMO_RANGE}",
        "people": "/persons?scope_id=acme&limit=5",
        "experiment": "/experiments/pricing-page/results?scope_id=acme",
    }
    answers = {}
    for name, path in paths.items():
        response = client.get(f"/umetrics/api{path}")
        assert response.status_code == 200, (path, response.get_json())
        answers[name] = response.get_json()
    return answers


def test_the_clickhouse_demo_shows_the_sqlite_demos_numbers(
    clickhouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``make demo-clickhouse``: the example app with its events in chdb (``db upgrade`` brings
    the ClickHouse schema up, ``seed-demo`` writes the events there) answers exactly as the
    SQLite demo seeded with the same seed at the same anchor."""
    from .demo_env import seeded_demo

    monkeypatch.setattr("example_app.seed.datetime", _AnchoredClock)
    answers = []
    for name, config in (
        ("sqlite", {}),
        (
            "clickhouse",
            {"UMETRICS_EVENT_STORE": "clickhouse", "UMETRICS_CLICKHOUSE_URL": clickhouse_url},
        ),
    ):
        instance = tmp_path / name
        app = seeded_demo(
            instance,
            days=30,
            users=60,
            SQLALCHEMY_DATABASE_URI=f"sqlite:///{instance}/example.db",
            **config,
        )
        with app.app_context():
            assert current_state().event_store.name == (name if config else "sql")
            with current_state().engine.connect() as connection:
                in_sql = connection.execute(select(func.count()).select_from(events)).scalar()
        assert (in_sql > 0) == (not config)  # the ClickHouse demo's events are not in SQL
        answers.append(demo_answers(app))
        drop_app_tables(app)
    on_sqlite, on_clickhouse = answers
    assert on_sqlite["dashboard"]["total_events"] > 100
    assert on_sqlite["funnel"]["steps"][2]["count"] > 0
    assert on_sqlite["experiment"]["variants"][0]["exposures"] > 0
    for name in on_sqlite:
        if name == "experiment":
            continue
        assert on_clickhouse[name] == on_sqlite[name], name
    # The experiment's counts, means and totals are equal; its deviation (hence the interval
    # and the tests built on it) is a float sum over the units in each engine's row order, so
    # it may differ in the last bits: equal to 12 significant digits.
    # The traffic per day and the days left are measured up to the moment of the call, which
    # differs between the two runs; the sample the plan needs does not.
    for answer in (on_sqlite, on_clickhouse):
        for clocked in ("exposed_per_day", "days_remaining"):
            answer["experiment"]["sample_size"].pop(clocked)
    assert rounded(on_clickhouse["experiment"]) == rounded(on_sqlite["experiment"])


def rounded(value: Any) -> Any:
    """``value`` with every float rounded to 12 significant digits."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value
