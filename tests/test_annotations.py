"""Annotations: created, listed over a range, changed and deleted through Python and REST,
checked (a mistake names its field), scoped, audited, and authorized per caller."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from flask_umetrics import create_api_key, export_insights, import_insights
from flask_umetrics.annotations import (
    MAX_TEXT,
    create_annotation,
    delete_annotation,
    get_annotation,
    list_annotations,
    update_annotation,
)
from flask_umetrics.db.tables import audit_log
from flask_umetrics.errors import ValidationError
from flask_umetrics.state import current_state

from .conftest import AppFactory

API = "/umetrics/api"
UTC = timezone.utc


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def key(app: Flask, permission: str, scope: str = "default") -> dict[str, str]:
    with app.app_context():
        return {"Authorization": f"Bearer {create_api_key(scope, permission)}"}


def audit_actions(app: Flask) -> list[tuple[str, str, str]]:
    with app.app_context(), current_state().engine.connect() as connection:
        rows = connection.execute(
            select(audit_log.c.action, audit_log.c.target, audit_log.c.actor)
            .where(audit_log.c.action.like("annotation.%"))
            .order_by(audit_log.c.id)
        )
        return [tuple(row) for row in rows]


def test_create_list_update_delete_in_python(app: Flask) -> None:
    with app.app_context():
        late = create_annotation(at("2026-03-10T12:00"), "  pricing page changed ", actor="me")
        early = create_annotation(datetime(2026, 3, 1, 9, 30), "v2.3 released", actor="me")
        other = create_annotation(at("2026-03-05T00:00"), "elsewhere", scope_id="other")
        assert late.text == "pricing page changed"
        assert early.occurs_at == at("2026-03-01T09:30")  # naive means UTC
        assert late.created_by == "me"
        assert [a.id for a in list_annotations()] == [early.id, late.id]
        # date_from included, date_to excluded
        assert [a.id for a in list_annotations(date_from=at("2026-03-01T09:30"))] == [
            early.id,
            late.id,
        ]
        assert list_annotations(date_to=at("2026-03-01T09:30")) == []
        assert [a.text for a in list_annotations(date_from=at("2026-03-02"))] == [
            "pricing page changed"
        ]
        assert [a.id for a in list_annotations(scope_id="other")] == [other.id]
        assert [a.id for a in list_annotations(limit=1)] == [early.id]
        moved = update_annotation(late.id, occurs_at=at("2026-02-01T00:00"), actor="me")
        assert moved is not None and moved.text == "pricing page changed"
        assert [a.id for a in list_annotations()] == [late.id, early.id]
        renamed = update_annotation(early.id, text="v2.4 released", actor="me")
        assert renamed is not None and renamed.occurs_at == at("2026-03-01T09:30")
        assert update_annotation(other.id, text="x") is None  # another scope's
        assert get_annotation(other.id) is None
        assert delete_annotation(other.id) is False
        assert delete_annotation(early.id, actor="me") is True
        assert get_annotation(early.id) is None
        assert [a.id for a in list_annotations()] == [late.id]
    assert audit_actions(app) == [
        ("annotation.create", str(late.id), "me"),
        ("annotation.create", str(early.id), "me"),
        ("annotation.create", str(other.id), "system"),
        ("annotation.update", str(late.id), "me"),
        ("annotation.update", str(early.id), "me"),
        ("annotation.delete", str(early.id), "me"),
    ]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: create_annotation(at("2026-01-01"), ""), "text"),
        (lambda: create_annotation(at("2026-01-01"), "   "), "text"),
        (lambda: create_annotation(at("2026-01-01"), "x" * (MAX_TEXT + 1)), "text"),
        (lambda: create_annotation(at("2026-01-01"), "two\nlines"), "text"),
        (lambda: create_annotation(at("2026-01-01"), 5), "text"),  # type: ignore[arg-type]
        (lambda: create_annotation("2026-01-01", "x"), "occurs_at"),  # type: ignore[arg-type]
        (lambda: create_annotation(at("2026-01-01"), "x", scope_id="a b"), "scope_id"),
        (
            lambda: list_annotations(date_from=at("2026-02-01"), date_to=at("2026-01-01")),
            "date_from",
        ),
        (lambda: list_annotations(limit=0), "limit"),
        (lambda: update_annotation(1), "text"),
    ],
)
def test_mistakes_name_their_field(app: Flask, call: Any, field: str) -> None:
    with app.app_context():
        with pytest.raises(ValidationError) as caught:
            call()
        assert caught.value.field == field
        assert list_annotations() == []


def test_the_longest_text_is_kept_whole(app: Flask) -> None:
    with app.app_context():
        assert create_annotation(at("2026-01-01"), "é" * MAX_TEXT).text == "é" * MAX_TEXT


def test_rest_round_trip(make_app: AppFactory) -> None:
    app = make_app(UMETRICS_TIMEZONE="Europe/Berlin")
    client = app.test_client()
    manage, view = key(app, "metrics.manage"), key(app, "metrics.view")
    made = client.post(
        f"{API}/annotations",
        json={"occurs_at": "2026-03-01T10:00", "text": "v2.3 released"},  # Berlin: 09:00 UTC
        headers=manage,
    )
    assert made.status_code == 201
    body = made.get_json()
    assert datetime.fromisoformat(body["occurs_at"]) == at("2026-03-01T09:00")
    assert body["text"] == "v2.3 released"
    assert body["created_by"].startswith("key:")
    number = body["id"]
    client.post(
        f"{API}/annotations", json={"occurs_at": "2026-03-20", "text": "later"}, headers=manage
    )
    listed = client.get(f"{API}/annotations?date_from=2026-03-01&date_to=2026-03-02", headers=view)
    assert listed.status_code == 200
    assert [a["text"] for a in listed.get_json()["annotations"]] == ["v2.3 released"]
    changed = client.patch(
        f"{API}/annotations/{number}", json={"text": "v2.3.1 released"}, headers=manage
    )
    assert changed.status_code == 200
    assert changed.get_json()["text"] == "v2.3.1 released"
    assert datetime.fromisoformat(changed.get_json()["occurs_at"]) == at("2026-03-01T09:00")
    gone = client.delete(f"{API}/annotations/{number}", headers=manage)
    assert gone.status_code == 200
    assert gone.get_json() == {"id": number, "deleted": True}
    again = client.delete(f"{API}/annotations/{number}", headers=manage)
    assert again.status_code == 404
    assert again.get_json()["error"]["code"] == "not_found"
    assert [
        a["text"] for a in client.get(f"{API}/annotations", headers=view).get_json()["annotations"]
    ] == ["later"]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("post", "/annotations", {"occurs_at": "2026-03-01"}, "text"),
        ("post", "/annotations", {"occurs_at": "2026-03-01", "text": ""}, "text"),
        ("post", "/annotations", {"occurs_at": "2026-03-01", "text": "x" * 401}, "text"),
        ("post", "/annotations", {"occurs_at": "2026-03-01", "text": "a\u0000b"}, "text"),
        ("post", "/annotations", {"occurs_at": "yesterday", "text": "x"}, "occurs_at"),
        ("post", "/annotations", {"text": "x"}, "occurs_at"),
        ("post", "/annotations", {"occurs_at": "2026-03-01", "text": "x", "at": 1}, "at"),
        ("patch", "/annotations/ANNOTATION", {}, "text"),
        ("patch", "/annotations/ANNOTATION", {"occurs_at": "soon"}, "occurs_at"),
    ],
)
def test_rest_mistakes_are_400_naming_the_field(
    app: Flask, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    with app.app_context():
        number = create_annotation(at("2026-01-01"), "kept").id
    response = getattr(app.test_client(), method)(
        API + path.replace("ANNOTATION", str(number)), json=body, headers=key(app, "metrics.manage")
    )
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert field in error["message"], error
    with app.app_context():
        assert [a.text for a in list_annotations()] == ["kept"]


def test_list_range_mistake_names_the_field(app: Flask) -> None:
    response = app.test_client().get(
        f"{API}/annotations?date_from=2026-02-01&date_to=2026-01-01",
        headers=key(app, "metrics.view"),
    )
    assert response.status_code == 400
    assert "date_from" in response.get_json()["error"]["message"]


def test_unknown_and_malformed_ids_are_404(app: Flask) -> None:
    client, manage = app.test_client(), key(app, "metrics.manage")
    for text in ("999", "abc", "0", str(2**63)):
        response = client.patch(f"{API}/annotations/{text}", json={"text": "x"}, headers=manage)
        assert response.status_code == 404, text
        assert client.delete(f"{API}/annotations/{text}", headers=manage).status_code == 404


#: Per caller: what listing, creating, changing and deleting answer.
CALLERS = {
    "anonymous": (401, 401, 401, 401),
    "ingest": (403, 403, 403, 403),
    "metrics.view": (200, 403, 403, 403),
    "metrics.manage": (200, 201, 200, 200),
    "other scope": (403, 403, 403, 403),
}


@pytest.mark.parametrize("caller", list(CALLERS))
def test_who_may_do_what(app: Flask, caller: str) -> None:
    with app.app_context():
        first = create_annotation(at("2026-01-01"), "first").id
        second = create_annotation(at("2026-01-02"), "second").id
    if caller == "anonymous":
        headers: dict[str, str] = {}
    elif caller == "other scope":
        headers = key(app, "metrics.manage", scope="elsewhere")
    else:
        headers = key(app, caller)
    client = app.test_client()
    answers = (
        client.get(f"{API}/annotations", headers=headers).status_code,
        client.post(
            f"{API}/annotations", json={"occurs_at": "2026-01-03", "text": "new"}, headers=headers
        ).status_code,
        client.patch(
            f"{API}/annotations/{first}", json={"text": "changed"}, headers=headers
        ).status_code,
        client.delete(f"{API}/annotations/{second}", headers=headers).status_code,
    )
    assert answers == CALLERS[caller]
    with app.app_context():
        texts = [a.text for a in list_annotations()]
    assert texts == (["changed", "new"] if caller == "metrics.manage" else ["first", "second"])


def test_openapi_documents_the_routes(app: Flask) -> None:
    spec = app.test_client().get(f"{API}/openapi.json").get_json()
    paths = spec["paths"]
    assert set(paths[f"{API}/annotations"]) == {"get", "post"}
    assert set(paths[f"{API}/annotations/{{annotation_id}}"]) == {"patch", "delete"}
    assert paths[f"{API}/annotations"]["post"]["tags"] == ["annotations"]


def test_occurs_at_keeps_microseconds_out_of_the_way(app: Flask) -> None:
    with app.app_context():
        when = at("2026-05-05T05:05:05") + timedelta(microseconds=123)
        made = create_annotation(when, "precise")
        assert get_annotation(made.id) == made


def test_cli_add_list_delete(make_app: AppFactory) -> None:
    app = make_app(UMETRICS_TIMEZONE="Europe/Berlin")
    runner = app.test_cli_runner()
    added = runner.invoke(args=["umetrics", "annotations", "add", "2026-03-01T10:00", "v2.3"])
    assert added.exit_code == 0, added.output
    number = int(added.output.split("\t")[0])
    assert added.output == f"{number}\t2026-03-01T09:00:00+00:00\tv2.3\n"
    runner.invoke(args=["umetrics", "annotations", "add", "2026-04-01", "later", "--scope", "s"])
    listed = runner.invoke(args=["umetrics", "annotations", "list", "--to", "2026-03-02"])
    assert listed.output == f"{number}\t2026-03-01T09:00:00+00:00\tv2.3\n"
    assert (
        runner.invoke(args=["umetrics", "annotations", "list", "--from", "2026-03-02"]).output == ""
    )
    bad = runner.invoke(args=["umetrics", "annotations", "add", "2026-03-01", " "])
    assert bad.exit_code == 1 and "text:" in bad.output
    wrong = runner.invoke(args=["umetrics", "annotations", "add", "soon", "x"])
    assert wrong.exit_code == 2 and "WHEN" in wrong.output
    deleted = runner.invoke(args=["umetrics", "annotations", "delete", str(number)])
    assert deleted.exit_code == 0 and deleted.output == f"deleted annotation {number}\n"
    missing = runner.invoke(args=["umetrics", "annotations", "delete", str(number)])
    assert missing.exit_code == 1 and "no annotation" in missing.output
    assert runner.invoke(args=["umetrics", "annotations", "list"]).output == ""
    with app.app_context():
        assert [a.created_by for a in list_annotations(scope_id="s")] == ["cli"]


def test_export_and_import_carry_annotations(app: Flask) -> None:
    with app.app_context():
        create_annotation(at("2026-03-01T09:00"), "v2.3 released")
        create_annotation(at("2026-02-01T00:00"), "pricing page changed")
        document = export_insights()
        assert document["annotations"] == [
            {"occurs_at": "2026-02-01T00:00:00+00:00", "text": "pricing page changed"},
            {"occurs_at": "2026-03-01T09:00:00+00:00", "text": "v2.3 released"},
        ]
        counts = import_insights(document, scope_id="copy", actor="me")
        assert counts == {"insights": 0, "dashboards": 0, "annotations": 2}
        copied = list_annotations(scope_id="copy")
        assert [(a.occurs_at, a.text, a.created_by) for a in copied] == [
            (at("2026-02-01T00:00"), "pricing page changed", "me"),
            (at("2026-03-01T09:00"), "v2.3 released", "me"),
        ]
        for broken, field in (
            ([{"occurs_at": "soon", "text": "x"}], "annotations.1.occurs_at"),
            ([{"text": "x"}], "annotations.1.occurs_at"),
            ([{"occurs_at": "2026-01-01T00:00", "text": ""}], "annotations.1.text"),
            (["x"], "annotations.1"),
        ):
            with pytest.raises(ValidationError) as caught:
                import_insights(
                    {"annotations": [document["annotations"][0], *broken]}, scope_id="bad"
                )
            assert caught.value.field == field
        assert list_annotations(scope_id="bad") == []  # nothing of a refused document
