"""GDPR operations reach flag assignments and exposures (docs/privacy-export.md)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import select

from flask_umetrics import (
    anonymize_person,
    create_experiment,
    delete_person,
    export_person,
    identify,
    resolve_variant,
    start_experiment,
    track,
)
from flask_umetrics.db.tables import assignments, exposures

from .test_privacy import all_rows_text

ANON = "anon-cookie-77aa1"
USER = "user-wendy-3141"
OTHER = "user-other-2718"


def seed(app: Flask) -> None:
    with app.app_context():
        for key in ("pricing", "onboarding"):
            create_experiment({"key": key, "variants": [{"key": "control"}, {"key": "b"}]})
            start_experiment(key)
        for subject in (ANON, USER, OTHER):
            track("page_view", distinct_id=subject)
            resolve_variant("pricing", subject_id=subject, consent=True)
        resolve_variant("onboarding", subject_id=USER, consent=True)
        identify(USER, anon_id=ANON)


def rows(app: Flask, table: Any) -> list[str]:
    with app.app_context(), app.extensions["umetrics"].engine.connect() as connection:
        return sorted(r.subject_id for r in connection.execute(select(table)))


def test_delete_person_removes_assignments_and_exposures(app: Flask) -> None:
    seed(app)
    with app.app_context():
        report = delete_person(USER)
    assert (report.assignments, report.exposures) == (3, 3)  # ANON + USER pricing, USER onboarding
    assert rows(app, assignments) == [OTHER]
    assert rows(app, exposures) == [OTHER]
    text = all_rows_text(app)
    assert USER not in text and ANON not in text


def test_delete_a_subject_that_never_sent_events(app: Flask) -> None:
    seed(app)
    with app.app_context():
        resolve_variant("pricing", subject_id="flag-only", consent=True)
        report = delete_person("flag-only")
    assert (report.found, report.person_id, report.assignments, report.exposures) == (
        True,
        None,
        1,
        1,
    )
    assert "flag-only" not in rows(app, assignments)


def test_anonymize_renames_subjects_and_keeps_counts(app: Flask) -> None:
    seed(app)
    with app.app_context():
        anonymize_person(USER)
    assigned = rows(app, assignments)
    assert len(assigned) == 4 and OTHER in assigned
    assert all(s.startswith("anon-") for s in assigned if s != OTHER)
    assert USER not in all_rows_text(app) and ANON not in all_rows_text(app)


def test_export_lists_assignments_and_exposures(app: Flask) -> None:
    seed(app)
    with app.app_context():
        exported = export_person(ANON)
    assert exported is not None
    assert sorted((a["experiment"], a["subject_id"]) for a in exported["assignments"]) == [
        ("onboarding", USER),
        ("pricing", ANON),
        ("pricing", USER),
    ]
    assert sorted((e["experiment"], e["subject_id"]) for e in exported["exposures"]) == [
        ("onboarding", USER),
        ("pricing", ANON),
        ("pricing", USER),
    ]


def test_prune_deletes_exposures_past_their_age(make_app: Any) -> None:
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import insert

    from flask_umetrics.pruning import prune

    app = make_app(UMETRICS_RETENTION_EXPOSURES_DAYS=30)
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    rows = [
        {
            "scope_id": "default",
            "experiment_key": "pricing",
            "bucket_version": 1,
            "subject_id": subject,
            "variant": "control",
            "ts": int((now - timedelta(days=days)).timestamp() * 1_000_000),
        }
        for subject, days in (("old", 31), ("edge", 30), ("new", 29))
    ]
    with app.app_context():
        with app.extensions["umetrics"].engine.begin() as connection:
            connection.execute(insert(exposures), rows)
        assert prune(now=now)["exposures"] == 1
    assert rows_of(app) == ["edge", "new"]


def rows_of(app: Flask) -> list[str]:
    return rows(app, exposures)
