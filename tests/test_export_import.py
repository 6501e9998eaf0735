"""Event export (CSV / JSONL, keyset-paginated) and import (validated, idempotent by uuid)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_umetrics import ValidationError, create_api_key
from flask_umetrics.events.export import ImportReport, export_events, import_events

from .events_data import at, load, stored_events

ODD = {"text": 'comma, "quote"\nnew line', "nested": {"list": [1, 2.5, None, True]}, "ü": "ß"}
ROWS = [
    ("a", "view", "2026-03-01T10:00:00", {"path": "/"}, None, "s1"),
    ("b", "view", "2026-03-01T10:00:00", ODD),  # same instant as the first: order by id
    ("a", "click", "2026-03-01T10:00:00", None, False),  # a third tie
    ("c", "view", "2026-03-01T23:59:59.999999"),
    ("c", "buy", "2026-03-02T00:00:00", {"amount": 9.5}),
    ("b", "view", "2026-03-03T12:30:00.000001"),
]

#: The same export and import tests on SQLite, PostgreSQL and the ClickHouse event store.
pytestmark = pytest.mark.event_stores


def stored(app: Flask, scope_id: str) -> list[tuple[Any, ...]]:
    """Every stored column except the row id and scope, in (ts, id) order."""
    with app.app_context():
        return [(*row[2:8], row.properties) for row in stored_events(scope_id)]


def export_text(app: Flask, **kwargs: Any) -> str:
    with app.app_context():
        chunks = export_events("src", **kwargs)
    return "".join(chunks)  # consumed outside the app context, like a streamed response


@pytest.fixture
def source(app: Flask) -> Flask:
    load(app, ROWS, scope_id="src")
    load(app, [("z", "view", "2026-03-01T10:00:00")], scope_id="elsewhere")
    return app


def test_csv_export_is_exact(source: Flask) -> None:
    lines = export_text(source, fmt="csv", event="view", date_to=at("2026-03-02")).splitlines()
    assert lines == [
        "uuid,event,distinct_id,timestamp,session_id,active,properties",
        'src-0-a-view-2026-03-01T10:00:00,view,a,2026-03-01T10:00:00.000000Z,s1,true,"{""path"":""/""}"',
        "src-1-b-view-2026-03-01T10:00:00,view,b,2026-03-01T10:00:00.000000Z,,true,"
        + '"{""nested"":{""list"":[1,2.5,null,true]},""text"":""comma, \\""quote\\""\\nnew line"",'
        + '""ü"":""ß""}"',
        "src-3-c-view-2026-03-01T23:59:59.999999,view,c,2026-03-01T23:59:59.999999Z,,true,{}",
    ]


def test_jsonl_export_in_small_batches_keeps_every_row_once(source: Flask) -> None:
    batches: list[int] = []
    text = export_text(source, fmt="jsonl", batch_size=2, progress=batches.append)
    records = [json.loads(line) for line in text.splitlines()]
    assert batches == [2, 4, 6]  # the three tied rows straddle a batch boundary
    assert [(r["distinct_id"], r["event"]) for r in records] == [
        ("a", "view"),
        ("b", "view"),
        ("a", "click"),
        ("c", "view"),
        ("c", "buy"),
        ("b", "view"),
    ]
    assert records[1]["properties"] == ODD
    assert records[2] == {
        "uuid": "src-2-a-click-2026-03-01T10:00:00",
        "event": "click",
        "distinct_id": "a",
        "timestamp": "2026-03-01T10:00:00.000000Z",
        "session_id": None,
        "active": False,
        "properties": {},
    }
    assert records[5]["timestamp"] == "2026-03-03T12:30:00.000001Z"


def test_export_range_is_half_open(source: Flask) -> None:
    text = export_text(
        source, fmt="jsonl", date_from=at("2026-03-01T23:59:59.999999"), date_to=at("2026-03-03")
    )
    assert [json.loads(line)["event"] for line in text.splitlines()] == ["view", "buy"]
    assert export_text(source, fmt="csv", event="nothing").splitlines() == [
        "uuid,event,distinct_id,timestamp,session_id,active,properties"
    ]
    with source.app_context(), pytest.raises(ValidationError, match="format"):
        export_events("src", fmt="xml")
    with source.app_context(), pytest.raises(ValidationError, match="date_from"):
        export_events("src", date_from=at("2026-03-02"), date_to=at("2026-03-02"))


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_round_trip_into_another_scope_and_reimport(source: Flask, fmt: str) -> None:
    text = export_text(source, fmt=fmt, batch_size=4)
    reports: list[tuple[int, int]] = []
    with source.app_context():
        first = import_events(
            io.StringIO(text, newline=""),
            fmt=fmt,
            scope_id="dst",
            batch_size=4,
            progress=lambda r: reports.append((r.read, r.accepted)),
        )
    assert (first.read, first.accepted, first.duplicates, first.rejected) == (6, 6, 0, [])
    assert reports == [(4, 4), (6, 6)]
    assert stored(source, "dst") == stored(source, "src")
    with source.app_context():
        again = import_events(io.StringIO(text, newline=""), fmt=fmt, scope_id="dst")
    assert (again.accepted, again.duplicates, again.rejected) == (0, 6, [])
    assert len(stored(source, "dst")) == 6


def test_malformed_csv_lines_are_reported_and_the_rest_imported(app: Flask) -> None:
    text = (
        "event,distinct_id,timestamp,properties,active,uuid\n"  # another column order is fine
        "view,a,2026-03-01T10:00:00Z,,true,u1\n"  # 2: ok
        'view,a,2026-03-01T10:00:00Z,"{not json",true,u2\n'  # 3: bad JSON
        "view,a,2026-03-01T10:00:00Z\n"  # 4: too few fields
        "view,a,yesterday,{},true,u4\n"  # 5: bad timestamp
        ",a,2026-03-01T10:00:00Z,{},true,u5\n"  # 6: no event name
        "\n"  # 7: blank, skipped
        'view,b,2026-03-02T10:00:00Z,"{""k"":\n""multi-line""}",false,u6\n'  # 8-9: ok
        "view,a,2026-03-01T10:00:00Z,[1],true,u7\n"  # 10: properties not an object
        "view,c,2026-03-01T10:00:00Z,{},maybe,u8\n"  # 11: bad active
        "click,c,2026-03-01T10:00:00Z,{},0,\n"  # 12: ok, no uuid
    )
    with app.app_context():
        report = import_events(io.StringIO(text, newline=""), fmt="csv", batch_size=3)
    assert (report.read, report.accepted, report.duplicates) == (9, 3, 0)
    assert [line for line, _ in report.rejected] == [3, 4, 5, 6, 10, 11]
    errors = dict(report.rejected)
    assert errors[3].startswith("properties: not valid JSON")
    assert errors[4] == "row: expected 6 fields, got 3"
    assert errors[5] == "timestamp: must be an ISO 8601 date-time"
    assert errors[6] == "event: is required"
    assert errors[10] == "properties: must be a JSON object"
    assert errors[11] == "active: must be true or false"
    rows = stored(app, "default")
    assert [(r[1], r[2], r[5], r[6]) for r in rows] == [
        ("view", "a", True, {}),
        ("click", "c", False, {}),
        ("view", "b", False, {"k": "multi-line"}),
    ]
    assert report.to_dict()["rejected"][0] == {"line": 3, "error": errors[3]}


def test_malformed_jsonl_lines_are_reported_and_the_rest_imported(app: Flask) -> None:
    lines = [
        '{"event": "view", "distinct_id": "a", "timestamp": "2026-03-01T10:00:00Z", "uuid": "1"}',
        "{not json",
        "[1, 2]",
        "",
        '{"event": "view", "distinct_id": "a", "colour": "red"}',
        '{"event": "view", "distinct_id": "a", "timestamp": "2026-03-01T10:00:00Z", "uuid": "1"}',
        '{"event": "view", "distinct_id": "b", "timestamp": "2026-03-01T11:00:00Z"}',
    ]
    with app.app_context():
        report = import_events(lines, fmt="jsonl")
    assert (report.read, report.accepted, report.duplicates) == (6, 2, 1)
    assert report.rejected[0][0] == 2 and report.rejected[0][1].startswith("row: not valid JSON")
    assert report.rejected[1:] == [
        (3, "row: must be a JSON object"),
        (5, "colour: is not a known event field"),
    ]
    assert [r[2] for r in stored(app, "default")] == ["a", "b"]


def test_bad_csv_header_fails_the_whole_file(app: Flask) -> None:
    with app.app_context():
        with pytest.raises(ValidationError, match="line 1: CSV columns"):
            import_events(["name,distinct_id\n", "x,y\n"], fmt="csv")
        with pytest.raises(ValidationError, match="source"):
            import_events("event,distinct_id\n", fmt="csv")
        with pytest.raises(ValidationError, match="format"):
            import_events([], fmt="xml")
        assert import_events([], fmt="csv") == ImportReport()
    assert stored(app, "default") == []


def auth(app: Flask, permission: str, scope: str = "src") -> dict[str, str]:
    with app.app_context():
        return {"Authorization": f"Bearer {create_api_key(scope, permission)}"}


def test_rest_export_streams_with_the_right_content_type(source: Flask) -> None:
    client = source.test_client()
    view = auth(source, "metrics.view")
    csv_answer = client.get("/umetrics/api/export/events?scope_id=src&format=csv", headers=view)
    assert csv_answer.status_code == 200 and csv_answer.is_streamed
    assert csv_answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert csv_answer.headers["Content-Disposition"] == 'attachment; filename="events-src.csv"'
    assert csv_answer.get_data(as_text=True) == export_text(source, fmt="csv")
    jsonl = client.get(
        "/umetrics/api/export/events?scope_id=src&format=jsonl&event=view"
        "&date_from=2026-03-01&date_to=2026-03-02",
        headers=view,
    )
    assert jsonl.headers["Content-Type"] == "application/x-ndjson"
    assert [json.loads(x)["distinct_id"] for x in jsonl.get_data(as_text=True).splitlines()] == [
        "a",
        "b",
        "c",
    ]
    bad = client.get("/umetrics/api/export/events?scope_id=src&format=xml", headers=view)
    assert bad.status_code == 400 and bad.json["error"]["details"][0]["field"] == "format"
    empty = client.get(
        "/umetrics/api/export/events?scope_id=src&date_from=2026-03-02&date_to=2026-03-01",
        headers=view,
    )
    assert empty.status_code == 400 and "date_from" in empty.json["error"]["message"]
    ingest = client.get("/umetrics/api/export/events?scope_id=src", headers=auth(source, "ingest"))
    assert ingest.status_code == 403
    other = client.get(
        "/umetrics/api/export/events?scope_id=src", headers=auth(source, "metrics.view", "x")
    )
    assert other.status_code == 403 and other.json["error"]["code"] == "wrong_scope"


def test_cli_export_and_import(source: Flask, tmp_path: Path) -> None:
    runner = source.test_cli_runner()
    target = tmp_path / "events.jsonl"
    exported = runner.invoke(
        args=["umetrics", "export", "--format", "jsonl", "--output", str(target), "--scope", "src"]
    )
    assert exported.exit_code == 0, exported.output
    assert "exported 6 events so far" in exported.stderr
    assert target.read_text(encoding="utf-8") == export_text(source, fmt="jsonl")
    to_stdout = runner.invoke(
        args=["umetrics", "export", "--scope", "src", "--since", "2026-03-02", "--event", "buy"]
    )
    assert to_stdout.exit_code == 0
    assert to_stdout.stdout.splitlines()[1].startswith("src-4-c-buy-")
    assert len(to_stdout.stdout.splitlines()) == 2
    bad_date = runner.invoke(args=["umetrics", "export", "--since", "soon"])
    assert bad_date.exit_code == 2 and "--since" in bad_date.output

    imported = runner.invoke(args=["umetrics", "import", str(target), "--scope", "dst"])
    assert imported.exit_code == 0, imported.output
    assert "rows read 6, accepted 6, duplicates 0, rejected 0" in imported.stderr
    assert (
        "imported into scope dst: 6 rows read, 6 accepted, 0 duplicates, 0 rejected, "
        "0 filtered as bots" in imported.stdout
    )
    assert stored(source, "dst") == stored(source, "src")
    again = runner.invoke(args=["umetrics", "import", str(target), "--scope", "dst"])
    assert again.exit_code == 0 and "0 accepted, 6 duplicates" in again.stdout

    broken = tmp_path / "broken.csv"
    broken.write_text(
        "event,distinct_id,timestamp\nview,q,2026-03-01T00:00:00Z\nview,q,never\n",
        encoding="utf-8",
    )
    partial = runner.invoke(args=["umetrics", "import", str(broken), "--batch-size", "1"])
    assert partial.exit_code == 1
    assert "rows read 1, accepted 1, duplicates 0, rejected 0" in partial.stderr
    assert "line 3: timestamp: must be an ISO 8601 date-time" in partial.stderr
    unknown = runner.invoke(args=["umetrics", "import", str(tmp_path / "events.txt")])
    assert unknown.exit_code == 2 and "--format" in unknown.output
    missing = runner.invoke(args=["umetrics", "import", str(tmp_path / "gone.csv")])
    assert missing.exit_code == 1 and "gone.csv" in missing.output


def test_a_cell_holding_a_lone_carriage_return_is_quoted_and_reads_back(app: Flask) -> None:
    """A distinct id "a\\rb" went out unquoted (the writer quoted only its "\\n" terminator), so
    the CSV did not import back; now the cell is quoted and the file round-trips exactly."""
    load(
        app,
        [
            ("a\rb", "view", "2026-03-01T10:00:00", {"k": "x\ry"}),
            ("c\r", "view\r", "2026-03-01T11:00:00"),
        ],
        "src",
    )
    text = export_text(app, fmt="csv")
    assert text.split("\n")[1].startswith('"src-0-a\rb-view-2026-03-01T10:00:00",view,"a\rb",')
    assert '"view\r","c\r"' in text
    with app.app_context():
        report = import_events(io.StringIO(text, newline=""), fmt="csv", scope_id="dst")
    assert (report.read, report.accepted, report.rejected) == (2, 2, [])
    assert stored(app, "dst") == stored(app, "src")
    assert [row[2] for row in stored(app, "dst")] == ["a\rb", "c\r"]
