"""``min_bucket_version`` on the experiment rule (GrowthBook's ``minBucketVersion``): a subject who
holds an assignment of an older bucket version is kept out of the experiment."""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Flask

from flask_umetrics import (
    create_api_key,
    create_experiment,
    resolve_variant,
    start_experiment,
    update_experiment,
)
from flask_umetrics.flags.decide import decide, is_blocked
from flask_umetrics.flags.store import get_experiment

from .conftest import AppFactory


def setup(app: Flask) -> None:
    with app.app_context():
        create_experiment({"key": "exp", "variants": [{"key": "control"}, {"key": "b"}]})
        start_experiment("exp")


def test_an_assignment_below_the_minimum_bucket_version_keeps_the_subject_out(
    make_app: AppFactory,
) -> None:
    app = make_app()
    setup(app)
    with app.app_context():
        first = resolve_variant("exp", subject_id="u1", consent=True)
        assert first.in_experiment and first.record and first.bucket_version == 1
        # Re-bucket and require version 2: u1's version-1 assignment blocks them.
        update_experiment(
            "exp", {"bucket_version": 2, "rules": [{"type": "experiment", "min_bucket_version": 2}]}
        )
        blocked = resolve_variant("exp", subject_id="u1", consent=True)
        assert (blocked.variant, blocked.in_experiment, blocked.reason, blocked.record) == (
            "control",
            False,
            "blocked",
            False,
        )
        fresh = resolve_variant("exp", subject_id="u2", consent=True)
        assert fresh.in_experiment and fresh.reason == "hash" and fresh.record
        # Without a minimum, a re-bucketed subject is simply hashed again.
        update_experiment(
            "exp", {"bucket_version": 3, "rules": [{"type": "experiment", "min_bucket_version": 0}]}
        )
        again = resolve_variant("exp", subject_id="u1", consent=True)
        assert again.in_experiment and again.reason == "hash" and again.bucket_version == 3


def test_is_blocked_reads_only_this_experiments_older_versions(make_app: AppFactory) -> None:
    app = make_app()
    setup(app)
    with app.app_context():
        update_experiment(
            "exp", {"bucket_version": 3, "rules": [{"type": "experiment", "min_bucket_version": 2}]}
        )
        experiment = get_experiment("exp")
    assert experiment is not None
    assert is_blocked(experiment, [("exp", 1)])
    assert not is_blocked(experiment, [("exp", 2), ("exp", 3), ("other", 1)])
    now = datetime.now(timezone.utc)
    result = decide(experiment, subject_id="u9", consent=True, attributes={}, now=now, blocked=True)
    assert result.reason == "blocked" and not result.in_experiment


def test_the_growthbook_payload_carries_the_minimum(make_app: AppFactory) -> None:
    app = make_app()
    setup(app)
    with app.app_context():
        update_experiment(
            "exp", {"bucket_version": 2, "rules": [{"type": "experiment", "min_bucket_version": 2}]}
        )
        client_key = create_api_key("default", "client")
    payload = app.test_client().get(f"/umetrics/api/growthbook/features/{client_key}").json
    [rule] = [r for r in payload["features"]["exp"]["rules"] if "variations" in r]
    assert rule["bucketVersion"] == 2 and rule["minBucketVersion"] == 2
