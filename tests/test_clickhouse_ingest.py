"""Ingestion into the ClickHouse event store: REST batches, track(), import; exactly once."""

from __future__ import annotations

import io
import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from flask_umetrics import create_api_key, flush, track
from flask_umetrics.db.tables import events, person_distinct_ids, persons
from flask_umetrics.engines.clickhouse.client import get_client, parse_clickhouse_url
from flask_umetrics.events.export import format_timestamp, import_events
from flask_umetrics.events.validation import to_micros
from flask_umetrics.state import current_state

from .conftest import AppFactory

API = "/umetrics/api"
BASE = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=3)


def ch_rows(url: str, sql: str, **parameters: Any) -> list[tuple[Any, ...]]:
    client = get_client(parse_clickhouse_url(url))
    return [tuple(row) for row in client.query(sql, parameters=parameters).result_rows]


def stored(url: str) -> list[tuple[Any, ...]]:
    """Every stored event as (uuid, event, distinct_id, ts in µs, session_id, active, props)."""
    return ch_rows(
        url,
        "SELECT uuid, event, distinct_id, toUnixTimestamp64Micro(ts), session_id, active, "
        "properties FROM umetrics_events ORDER BY seq",
    )


def sql_count(app: Flask, table: Any) -> int:
    with app.app_context(), current_state().engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.fixture
def app(make_clickhouse_app: AppFactory) -> Flask:
    return make_clickhouse_app()


@pytest.fixture
def key(app: Flask) -> str:
    with app.app_context():
        return create_api_key("site", "ingest")


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def send(client: FlaskClient, key: str, batch: list[Any]):  # type: ignore[no-untyped-def]
    return client.post(
        f"{API}/events?scope_id=site", json={"events": batch}, headers={"X-UMetrics-Key": key}
    )


def batch_of(n: int, shift: timedelta = timedelta(0)) -> list[dict[str, Any]]:
    """``n`` events whose timestamps carry microseconds and whose properties nest."""
    return [
        {
            "event": "pageview" if i % 2 else "signup",
            "distinct_id": f"user-{i % 4}",
            "uuid": f"ev-{i}",
            "timestamp": (
                BASE + timedelta(minutes=i, microseconds=i * 1001 + 7) + shift
            ).isoformat(),
            "session_id": f"s-{i % 3}" if i % 5 else None,
            "active": i % 7 != 0,
            "properties": {"$current_url": f"/p/{i}", "n": i, "tags": ["a", i], "o": {"k": i}},
        }
        for i in range(n)
    ]


def expected(batch: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            e["uuid"],
            e["event"],
            e["distinct_id"],
            to_micros(datetime.fromisoformat(e["timestamp"])),
            e["session_id"],
            e["active"],
            e["properties"],
        )
        for e in batch
    ]


def decoded(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [(*row[:6], json.loads(row[6])) for row in rows]


def test_a_rest_batch_is_stored_once_with_exact_values(
    app: Flask, client: FlaskClient, key: str, clickhouse_url: str
) -> None:
    batch = batch_of(40)
    response = send(client, key, batch)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"accepted": 40, "duplicates": 0, "rejected": [], "filtered": 0}
    assert decoded(stored(clickhouse_url)) == expected(batch)
    # Events went to ClickHouse only; persons and their ids were created in SQL as always.
    assert sql_count(app, events) == 0
    assert sql_count(app, persons) == 4
    assert sql_count(app, person_distinct_ids) == 4


def test_resending_stores_nothing_and_counts_duplicates(
    client: FlaskClient, key: str, clickhouse_url: str
) -> None:
    batch = batch_of(30)
    assert send(client, key, batch).get_json()["accepted"] == 30
    again = send(client, key, batch).get_json()
    assert (again["accepted"], again["duplicates"]) == (0, 30)
    moved = send(client, key, batch_of(30, shift=timedelta(minutes=17))).get_json()
    assert (moved["accepted"], moved["duplicates"]) == (0, 30)  # same uuids, other timestamps
    assert decoded(stored(clickhouse_url)) == expected(batch)  # the first copies, untouched
    mixed = batch_of(35)[25:]  # 5 stored already, 5 new
    answer = send(client, key, mixed).get_json()
    assert (answer["accepted"], answer["duplicates"]) == (5, 5)
    assert ch_rows(clickhouse_url, "SELECT count(), uniqExact(uuid) FROM umetrics_events") == [
        (35, 35)
    ]


def test_a_uuid_twice_in_one_batch_keeps_the_first(
    client: FlaskClient, key: str, clickhouse_url: str
) -> None:
    first, second = batch_of(2)
    second = {**second, "uuid": first["uuid"]}
    answer = send(client, key, [first, second]).get_json()
    assert (answer["accepted"], answer["duplicates"]) == (1, 1)
    assert decoded(stored(clickhouse_url)) == expected([first])


def test_the_same_uuid_in_two_scopes_is_two_events(
    app: Flask, client: FlaskClient, key: str, clickhouse_url: str
) -> None:
    with app.app_context():
        other = create_api_key("other", "ingest")
    event = batch_of(1)
    assert send(client, key, event).get_json()["accepted"] == 1
    answer = client.post(
        f"{API}/events?scope_id=other", json={"events": event}, headers={"X-UMetrics-Key": other}
    ).get_json()
    assert answer["accepted"] == 1
    assert ch_rows(clickhouse_url, "SELECT scope_id FROM umetrics_events ORDER BY scope_id") == [
        ("other",),
        ("site",),
    ]


def test_ties_keep_the_insertion_order(client: FlaskClient, key: str, clickhouse_url: str) -> None:
    """Equal timestamps are ordered by seq, the order rows were written (SQL: events.id)."""
    moment = (BASE + timedelta(minutes=1)).isoformat()
    batch = [
        {"event": name, "distinct_id": "d", "uuid": f"t-{name}", "timestamp": moment}
        for name in ("c", "a", "b")
    ]
    send(client, key, batch)
    send(client, key, [{**batch[0], "event": "z", "uuid": "t-z"}])
    rows = ch_rows(clickhouse_url, "SELECT event FROM umetrics_events ORDER BY ts, seq")
    assert rows == [("c",), ("a",), ("b",), ("z",)]


def test_new_persons_are_mirrored_to_the_distinct_id_map(
    app: Flask, client: FlaskClient, key: str, clickhouse_url: str
) -> None:
    send(client, key, batch_of(8))
    with app.app_context(), current_state().engine.connect() as connection:
        in_sql = dict(
            connection.execute(
                select(person_distinct_ids.c.distinct_id, person_distinct_ids.c.person_id)
            ).all()
        )
    mapped = ch_rows(
        clickhouse_url,
        "SELECT distinct_id, argMax(person_id, version), argMax(is_deleted, version) "
        "FROM umetrics_person_distinct_ids WHERE scope_id = 'site' GROUP BY distinct_id",
    )
    assert {d: p for d, p, deleted in mapped if not deleted} == in_sql
    assert len(in_sql) == 4
    send(client, key, batch_of(8, shift=timedelta(seconds=1)))  # known ids: nothing mirrored
    assert ch_rows(clickhouse_url, "SELECT count() FROM umetrics_person_distinct_ids") == [(4,)]
    assert ch_rows(clickhouse_url, "SELECT count() FROM umetrics_persons FINAL") == [(4,)]


def test_track_buffer_and_import_write_to_clickhouse(
    make_clickhouse_app: AppFactory, clickhouse_url: str
) -> None:
    app = make_clickhouse_app(UMETRICS_TRACK_BUFFER_SIZE=100, UMETRICS_TRACK_FLUSH_SECONDS=60)
    with app.app_context():
        uuids = [track("clicked", distinct_id="t1", properties={"i": i}) for i in range(3)]
        assert ch_rows(clickhouse_url, "SELECT count() FROM umetrics_events") == [(0,)]
        assert flush() == 3
        lines = "".join(
            json.dumps(
                {
                    "event": "imported",
                    "distinct_id": "i1",
                    "uuid": f"imp-{i}",
                    "timestamp": format_timestamp(to_micros(BASE) + i),
                }
            )
            + "\n"
            for i in range(5)
        )
        report = import_events(io.StringIO(lines), fmt="jsonl", scope_id="site")
        assert (report.accepted, report.duplicates) == (5, 0), report
        report = import_events(io.StringIO(lines), fmt="jsonl", scope_id="site")
        assert (report.accepted, report.duplicates) == (0, 5)
    rows = ch_rows(
        clickhouse_url,
        "SELECT uuid, event, toUnixTimestamp64Micro(ts) FROM umetrics_events ORDER BY seq",
    )
    assert [r[0] for r in rows[:3]] == uuids
    assert rows[3:] == [(f"imp-{i}", "imported", to_micros(BASE) + i) for i in range(5)]


def test_a_failed_insert_is_not_acknowledged_and_a_retry_stores_once(
    app: Flask, client: FlaskClient, key: str, clickhouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ClickHouse unreachable: the batch answers 503 with Retry-After (after the store's own
    retries), the persons it created are rolled back, and the client's retry stores it once."""
    from clickhouse_connect.driver.exceptions import OperationalError

    from flask_umetrics.engines.clickhouse import store as store_module

    ch_client = get_client(parse_clickhouse_url(clickhouse_url))
    real_insert = ch_client.insert
    attempts: list[str] = []

    def unreachable(table: str, *args: Any, **kwargs: Any) -> Any:
        attempts.append(table)
        raise OperationalError("connection refused")

    monkeypatch.setattr(store_module.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(ch_client, "insert", unreachable)
    batch = batch_of(10)
    response = send(client, key, batch)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json()["error"]["code"] == "database_unavailable"
    assert attempts == ["umetrics_persons"] * 3  # the new persons' mirror, tried three times
    assert sql_count(app, persons) == 0  # rolled back with the failed batch
    assert ch_rows(clickhouse_url, "SELECT count() FROM umetrics_events") == [(0,)]
    monkeypatch.setattr(ch_client, "insert", real_insert)
    answer = send(client, key, batch).get_json()
    assert (answer["accepted"], answer["duplicates"]) == (10, 0)
    assert decoded(stored(clickhouse_url)) == expected(batch)
    assert sql_count(app, persons) == 4


def test_a_retried_insert_that_had_landed_is_dropped_by_its_token(
    app: Flask, clickhouse_url: str
) -> None:
    """The second layer: the same rows inserted again with the same deduplication token (a
    retry after a timeout whose first attempt was written) are dropped by ClickHouse."""
    from flask_umetrics.engines.clickhouse.store import EVENT_COLUMNS, _token

    rows = [
        {"scope_id": "site", "uuid": f"tok-{i}", "event": "e", "distinct_id": "d", "ts": i}
        for i in range(3)
    ]
    data = [
        [r["scope_id"], r["uuid"], "e", "d", 1_000_000 + i, None, True, "{}", 7, i]
        for i, r in enumerate(rows)
    ]
    client = get_client(parse_clickhouse_url(clickhouse_url))
    settings = {"insert_deduplication_token": _token([(r["scope_id"], r["uuid"]) for r in rows])}
    client.insert("umetrics_events", data, column_names=EVENT_COLUMNS, settings=settings)
    client.insert("umetrics_events", data, column_names=EVENT_COLUMNS, settings=settings)
    assert ch_rows(clickhouse_url, "SELECT count() FROM umetrics_events") == [(3,)]


def test_concurrent_batches_sharing_uuids_store_each_once(
    app: Flask, key: str, clickhouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two threads of one process (a threaded worker) send overlapping batches at once: each
    look-up is slowed so both would run before either insert if nothing serialised them."""
    import threading

    from flask_umetrics.engines.clickhouse.store import ClickHouseEventStore

    real_stored = ClickHouseEventStore._stored

    def slow_stored(self: ClickHouseEventStore, *args: Any) -> Any:
        found = real_stored(self, *args)
        time.sleep(0.3)
        return found

    # The persons exist already: the batches write nothing in SQL, so SQLite's write lock does
    # not serialise them either.
    send(app.test_client(), key, [dict(e, uuid="pre-" + e["uuid"]) for e in batch_of(4)])
    monkeypatch.setattr(ClickHouseEventStore, "_stored", slow_stored)
    events_all = batch_of(15)
    answers: list[dict[str, Any]] = []
    start = threading.Barrier(2)

    def sender(batch: list[dict[str, Any]]) -> None:
        start.wait()
        answers.append(send(app.test_client(), key, batch).get_json())

    threads = [
        threading.Thread(target=sender, args=(events_all[:10],)),
        threading.Thread(target=sender, args=(events_all[5:],)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a["accepted"] for a in answers) == [5, 10]
    assert sum(a["duplicates"] for a in answers) == 5
    assert ch_rows(clickhouse_url, "SELECT count(), uniqExact(uuid) FROM umetrics_events") == [
        (19, 19)
    ]


def test_concurrent_batches_of_new_visitors_each_store_their_persons(
    app: Flask, key: str, clickhouse_url: str
) -> None:
    """Eight threads send batches of brand-new distinct ids, each batch sharing some with the
    others and having some of its own (persons in SQLite, whose write lock is the whole
    database): no batch waits for another while holding a transaction, so all finish, and
    every event carries the one person its distinct id has in SQL."""
    import threading

    from flask_umetrics.db.tables import person_distinct_ids
    from flask_umetrics.engines.clickhouse.overrides import has_overrides

    batches = [
        [
            {
                "event": "signup",
                "distinct_id": f"new-{(t * 5 + i) % 12}" if i % 2 else f"own-{t}-{i}",
                "uuid": f"nv-{t}-{i}",
                "timestamp": (BASE + timedelta(seconds=t * 10 + i)).isoformat(),
            }
            for i in range(10)
        ]
        for t in range(8)
    ]
    answers: list[Any] = []
    start = threading.Barrier(len(batches))

    def sender(batch: list[dict[str, Any]]) -> None:
        start.wait()
        answers.append(send(app.test_client(), key, batch).status_code)

    threads = [threading.Thread(target=sender, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert answers == [200] * len(batches)
    with app.extensions["umetrics"].engine.connect() as connection:
        mapped = {
            row.distinct_id: row.person_id
            for row in connection.execute(person_distinct_ids.select())
        }
    stored = ch_rows(clickhouse_url, "SELECT distinct_id, person_id FROM umetrics_events")
    assert len(stored) == 80
    assert all(person == mapped[distinct_id] for distinct_id, person in stored)
    with app.app_context():
        assert not has_overrides("site")  # no batch stored a person it did not know


def _rows(start: int, stop: int, scope: str = "site") -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (scope, f"g-{i}"): {
            "scope_id": scope,
            "uuid": f"g-{i}",
            "event": "view",
            "distinct_id": f"d-{i % 3}",
            "ts": to_micros(BASE) + i,
            "session_id": None,
            "active": True,
            "properties": {"i": i},
        }
        for i in range(start, stop)
    }


def _three_waiting_batches(
    app: Flask, batches: list[dict[tuple[str, str], dict[str, Any]]]
) -> tuple[list[Any], int]:
    """Send ``batches`` from threads while the insert lock is held, so they all wait; release
    it; each thread's result (a count or the exception) and how many look-ups ran."""
    import threading

    store = app.extensions["umetrics"].event_store
    client = store.client
    lookups = 0
    real_stored = store._stored

    def counting(*args: Any) -> Any:
        nonlocal lookups
        lookups += 1
        return real_stored(*args)

    store._stored = counting
    results: list[Any] = [None] * len(batches)

    def sender(index: int) -> None:
        try:
            persons = {"site": {f"d-{i}": i + 1 for i in range(3)}}
            results[index] = store._insert_combined(client, batches[index], persons)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            results[index] = exc

    store._insert_lock.acquire()
    threads = [threading.Thread(target=sender, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while len(store._waiting) < len(batches) and time.monotonic() < deadline:
        time.sleep(0.01)
    store._insert_lock.release()
    for thread in threads:
        thread.join()
    del store._stored
    return results, lookups


def test_waiting_batches_are_stored_together_each_uuid_once(
    app: Flask, clickhouse_url: str
) -> None:
    """Group commit: three batches waiting on the lock share one look-up and one insert; a uuid
    in two batches counts for one of them."""
    results, lookups = _three_waiting_batches(app, [_rows(0, 10), _rows(5, 15), _rows(12, 20)])
    assert lookups == 1
    assert sum(results) == 20 and all(isinstance(n, int) for n in results)
    assert ch_rows(clickhouse_url, "SELECT count(), uniqExact(uuid) FROM umetrics_events") == [
        (20, 20)
    ]


def test_a_batch_clickhouse_refuses_fails_alone(app: Flask, clickhouse_url: str) -> None:
    bad = _rows(100, 103)
    bad[("site", "g-101")] = dict(bad[("site", "g-101")], ts="not a timestamp")
    results, lookups = _three_waiting_batches(app, [_rows(0, 5), bad, _rows(5, 9)])
    assert lookups == 4  # the group, then each batch on its own
    assert [type(r) for r in results][0::2] == [int, int] and results[0::2] == [5, 4]
    assert isinstance(results[1], Exception)
    assert ch_rows(clickhouse_url, "SELECT count() FROM umetrics_events") == [(9,)]


@pytest.mark.parametrize("first_fails", [False, True])
def test_a_person_another_batch_is_creating_is_left_to_it(app: Flask, first_fails: bool) -> None:
    """Two batches of a new distinct id at once: the second neither creates its person nor waits
    in SQL for the first's commit; it stores its events alongside, then answers with the first's
    outcome (the first failed: its person was rolled back, so the second fails too)."""
    import threading

    from flask_umetrics.errors import EventStoreUnavailable
    from flask_umetrics.events.writer import write_events

    class Store:
        name = "test"

        def __init__(self) -> None:
            self.calls: list[dict[str, list[str]]] = []
            self.persons: list[dict[str, dict[str, int]]] = []
            self.release = threading.Event()

        def insert_events(self, connection: Any, rows: Any, new_persons: Any, persons: Any) -> int:
            self.calls.append({scope: sorted(made) for scope, made in new_persons.items()})
            self.persons.append({scope: dict(ids) for scope, ids in persons.items()})
            if len(self.calls) == 1:  # the first batch: held until the second has stored
                assert self.release.wait(10)
                if first_fails:
                    raise EventStoreUnavailable("refused")
            return len(rows)

    store = Store()
    engine = app.extensions["umetrics"].engine
    first = [dict(row, distinct_id="v") for row in _rows(0, 3).values()]
    second = [dict(row, distinct_id="v") for row in _rows(3, 5).values()]
    results: dict[str, Any] = {}

    def write(name: str, rows: list[dict[str, Any]]) -> None:
        try:
            results[name] = write_events(engine, rows, store).stored  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            results[name] = exc

    threads = [threading.Thread(target=write, args=("first", first))]
    threads[0].start()
    deadline = time.monotonic() + 10
    while not store.calls and time.monotonic() < deadline:
        time.sleep(0.01)
    threads.append(threading.Thread(target=write, args=("second", second)))
    threads[1].start()
    while len(store.calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.calls == [{"site": ["v"]}, {}]  # the second stored without creating "v"
    # ... with the person id the first made for "v" (not yet committed)
    assert store.persons[1] == store.persons[0] and set(store.persons[0]["site"]) == {"v"}
    assert "second" not in results  # and waits for the first's outcome
    store.release.set()
    for thread in threads:
        thread.join()
    if first_fails:
        assert isinstance(results["first"], EventStoreUnavailable)
        assert isinstance(results["second"], EventStoreUnavailable)
        assert sql_count(app, persons) == 0
    else:
        assert results == {"first": 3, "second": 2}
        assert sql_count(app, persons) == 1
