"""The Features pages: every flag with its on/off switch, and one feature's rules and overrides.

A feature is on when it is running and not killed; the switch turns it on (starting a draft,
paused or stopped one) or off (the kill switch: the default value for everyone, nothing logged).
The rule editor and override list save through the flag store, with the dashboard user as the
audit actor, exactly as ``PUT /api/experiments/<key>/rules`` and ``.../overrides`` would.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Response, flash, jsonify, make_response, redirect, request

from ...errors import APIError, ValidationError
from ...flags import store
from ...flags.diagnostics import no_exposure_reasons
from ...flags.model import Experiment
from ...queries.segments import list_segments
from ...state import current_state
from ..access import actor, current_scope
from ..errors import AdminError
from ..page import Table, render_page
from . import Page
from .experiments import _exposures as exposure_total
from .experiments import page_url
from .feature_form import (
    RULE_KINDS,
    VALUE_TYPES,
    FeatureForm,
    is_boolean,
    override_payload,
    read_rules,
    rules_of,
    rules_payload,
    validate_new,
    values_of,
    variants_payload,
)


def _feature(key: str) -> Experiment:
    feature = store.get_experiment(key, scope_id=current_scope())
    if feature is None:
        raise AdminError(404, f"No feature {key!r} in this scope.")
    return feature


def is_on(feature: Experiment, now: datetime) -> bool:
    """Whether the feature serves its rules now (running and not switched off)."""
    return not feature.killed and feature.effective_status(now) == "running"


def state_text(feature: Experiment, now: datetime) -> str:
    """The feature's state in a few words, for the list and the feature page."""
    if feature.killed:
        return "Off (switched off: everyone gets the default value)"
    status = feature.effective_status(now)
    if status == "running":
        return "On: serving its rules"
    if status == "stopped" and feature.shipped_variant is not None:
        return f"Off (stopped; everyone gets the shipped {feature.shipped_variant})"
    return {
        "draft": "Off (never started)",
        "paused": "Off (paused)",
        "scheduled": "Off (scheduled to start)",
        "stopped": "Off (stopped)",
    }.get(status, f"Off ({status})")


def rollout_text(feature: Experiment) -> str:
    """The rollout rules' coverages (``25%``), or a dash when it has none."""
    coverages = [f"{rule.coverage:.0%}" for rule in feature.rules if rule.type == "rollout"]
    return ", ".join(coverages) or "—"


#: The list's columns (and its CSV download's).
COLUMNS = ["key", "name", "kind", "on", "rules", "rollout", "overrides", "exposures"]


def features() -> Response | str:
    now = datetime.now(timezone.utc)
    rows: list[dict[str, Any]] = []
    for feature in store.list_experiments(scope_id=current_scope()):
        rows.append(
            {
                "feature": feature,
                "key": feature.key,
                "name": feature.name,
                "kind": feature.kind,
                "on": is_on(feature, now),
                "state": state_text(feature, now),
                "rules": len(feature.rules),
                "rollout": rollout_text(feature),
                "overrides": len(feature.overrides),
                "exposures": exposure_total(feature),
            }
        )
    table = Table("features", "Features", COLUMNS, [[row[c] for c in COLUMNS] for row in rows])
    return render_page("features.html", title="Features", tables=[table], table=table, rows=rows)


def _render_new(form: FeatureForm, status: int) -> Response:
    body = render_page("features_new.html", title="New feature", form=form, types=VALUE_TYPES)
    return make_response(body, status)


def create() -> Response:
    if request.method == "GET":
        return _render_new(FeatureForm(), 200)
    posted = request.form
    form = FeatureForm(
        key=(posted.get("key") or "").strip(),
        name=(posted.get("name") or "").strip(),
        description=(posted.get("description") or "").strip(),
        value_type=(posted.get("value_type") or "boolean").strip(),
        default_value=(posted.get("default_value") or "").strip(),
        served_value=(posted.get("served_value") or "").strip(),
    )
    spec = validate_new(form)
    if spec is None:
        return _render_new(form, 400)
    try:
        created = store.create_experiment(spec, scope_id=current_scope(), actor=actor())
    except ValidationError as error:
        form.errors[error.field] = error.message
        return _render_new(form, 400)
    except APIError as error:
        form.errors["key"] = error.message
        return _render_new(form, error.status)
    flash(f"Created feature {created.key!r}. It is off: add rules, then switch it on.", "info")
    return redirect(page_url("umetrics_admin.features_feature", key=created.key))  # type: ignore[return-value]


def _render_feature(
    feature: Experiment,
    *,
    rules: list[dict[str, str]] | None = None,
    errors: dict[str, str] | None = None,
    override_errors: dict[str, str] | None = None,
    value_errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    now = datetime.now(timezone.utc)
    exposures = exposure_total(feature)
    reasons = no_exposure_reasons(feature, current_state(), now) if not exposures else []
    body = render_page(
        "features_feature.html",
        title=f"Feature {feature.key}",
        feature=feature,
        on=is_on(feature, now),
        state=state_text(feature, now),
        exposures=exposures,
        no_exposure_reasons=reasons,
        rules=rules if rules is not None else rules_of(feature),
        kinds=RULE_KINDS,
        values=values_of(feature),
        boolean=is_boolean(feature),
        segments=[s.key for s in list_segments(scope_id=current_scope())],
        errors=errors or {},
        override_errors=override_errors or {},
        value_errors=value_errors or {},
    )
    return make_response(body, status)


def feature_page(key: str) -> Response:
    return _render_feature(_feature(key))


def toggle(key: str) -> Response:
    """The switch: on starts a stopped feature and clears the kill switch; off sets it.

    Asked for JSON (the list's in-place switch), it answers the new state; a plain form post
    is sent back to the page it came from.
    """
    feature = _feature(key)
    wanted = request.form.get("on") == "true"
    scope, who = current_scope(), actor()
    now = datetime.now(timezone.utc)
    if wanted:
        if feature.killed:
            feature = store.set_killed(key, False, scope_id=scope, actor=who)
        if feature.effective_status(now) != "running" and feature.status != "running":
            feature = store.start_experiment(key, scope_id=scope, actor=who)
    elif not feature.killed:
        feature = store.set_killed(key, True, scope_id=scope, actor=who)
    on, state = is_on(feature, now), state_text(feature, now)
    if request.accept_mimetypes.best == "application/json":
        return jsonify(key=key, on=on, state=state)
    flash(f"{key!r} is {state[0].lower() + state[1:]}.", "info")
    back = request.form.get("back") == "feature"
    target = "umetrics_admin.features_feature" if back else "umetrics_admin.features"
    return redirect(page_url(target, key=key if back else None))  # type: ignore[return-value]


def _update(key: str, changes: dict[str, Any], errors: dict[str, str], prefix: str = "") -> None:
    """Save ``changes`` through the store; a refusal goes to ``errors`` by field path."""
    try:
        store.update_experiment(key, changes, scope_id=current_scope(), actor=actor())
    except ValidationError as error:
        errors[error.field.removeprefix(prefix)] = error.message


def _saved(key: str, message: str) -> Response:
    flash(message, "info")
    return redirect(page_url("umetrics_admin.features_feature", key=key))  # type: ignore[return-value]


def save_rules(key: str) -> Response:
    feature = _feature(key)
    rows = read_rules(request.form)
    errors: dict[str, str] = {}
    rules = rules_payload(rows, errors)
    if rules is not None:
        _update(key, {"rules": rules}, errors)
    if errors:
        return _render_feature(feature, rules=rows, errors=errors, status=400)
    rules_text = "1 rule" if len(rows) == 1 else f"{len(rows)} rules"
    return _saved(key, f"Saved the rules of {key!r} ({rules_text}).")


def save_values(key: str) -> Response:
    feature = _feature(key)
    if is_boolean(feature):
        raise AdminError(400, "value: an on/off feature's values are false and true")
    errors: dict[str, str] = {}
    variants = variants_payload(request.form, feature, errors)
    if not errors:
        _update(key, {"variants": variants}, errors)
    if errors:
        return _render_feature(feature, value_errors=errors, status=400)
    return _saved(key, f"Saved the values of {key!r}.")


def add_override(key: str) -> Response:
    feature = _feature(key)
    errors: dict[str, str] = {}
    override = override_payload(request.form, feature, errors)
    if override is not None:
        overrides = [*feature.overrides, override]
        _update(key, {"overrides": overrides}, errors, f"overrides.{len(overrides) - 1}.")
    if errors:
        return _render_feature(feature, override_errors=errors, status=400)
    return _saved(key, f"Added an override to {key!r}.")


def remove_override(key: str) -> Response:
    feature = _feature(key)
    try:
        index = int(request.form.get("index") or "")
    except ValueError:
        index = -1
    if not 0 <= index < len(feature.overrides):
        raise AdminError(400, "index: no such override (reload the page: it may have changed)")
    overrides = [o for i, o in enumerate(feature.overrides) if i != index]
    store.update_experiment(key, {"overrides": overrides}, scope_id=current_scope(), actor=actor())
    return _saved(key, f"Removed an override from {key!r}.")


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/features", "features", features)
    bp.add_url_rule("/features/new", "features_new", create, methods=["GET", "POST"])
    bp.add_url_rule("/features/<key>", "features_feature", feature_page)
    bp.add_url_rule("/features/<key>/toggle", "features_toggle", toggle, methods=["POST"])
    bp.add_url_rule("/features/<key>/rules", "features_rules", save_rules, methods=["POST"])
    bp.add_url_rule("/features/<key>/values", "features_values", save_values, methods=["POST"])
    bp.add_url_rule(
        "/features/<key>/overrides", "features_add_override", add_override, methods=["POST"]
    )
    bp.add_url_rule(
        "/features/<key>/overrides/remove",
        "features_remove_override",
        remove_override,
        methods=["POST"],
    )


PAGE = Page("umetrics_admin.features", "Features", register)
