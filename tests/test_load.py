"""A bounded run of the load test (``bench/load.py``; ``make load`` is the long one).

gunicorn with 2 workers on a loopback port, about 10 s of batched ingestion with concurrent
dashboard queries, on PostgreSQL: every acknowledged event is stored exactly once and no
request fails. Latencies are printed, not asserted (the machine is shared).
"""

from __future__ import annotations

import pytest

from bench.load import run_load


def test_load_stores_every_acknowledged_event_once_without_errors(
    backend: str, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if backend != "postgresql":
        pytest.skip("the load test runs gunicorn workers against PostgreSQL")
    pytest.importorskip("gunicorn", reason="gunicorn is in the dev and bench extras")
    result = run_load(
        database_url,
        duration=10,
        workers=2,
        ingest_clients=3,
        query_clients=1,
        progress=lambda message: None,
    )
    with capsys.disabled():
        print("\n" + result.table())
    assert result.ingest.errors == []
    assert result.query.errors == []
    assert len(result.ingest.latencies) >= 20
    assert len(result.query.latencies) >= 1  # queries ran alongside (slow ones: see bench/load.py)
    assert result.sent_uuids == result.acknowledged_uuids == len(result.ingest.latencies) * 50
    assert result.accepted == result.acknowledged_uuids
    assert result.duplicates == 0
    assert (result.stored, result.stored_distinct) == (result.accepted, result.accepted)
