"""The Experiments pages: the list, create and edit forms, lifecycle buttons, and results.

Every number comes from the REST routes' own view functions (through ``run_report``), so the
results page shows exactly what ``GET /api/experiments/<key>/results`` answers; every change goes
through the flag store with the dashboard user as the audit actor.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Response, flash, make_response, redirect, request

from ...api.experiments import ListQuery, ResultsQuery, experiments_list, experiments_results
from ...errors import APIError, ValidationError
from ...flags import store
from ...flags.diagnostics import no_exposure_reasons
from ...flags.metrics import exposure_counts
from ...flags.model import Experiment
from ...flags.verdict import plan_text
from ...queries.connection import metadata_connection
from ...state import current_state
from ..access import actor, current_scope
from ..errors import AdminError
from ..page import Chart, Table, render_page
from ..reports import run_report
from . import Page
from .experiment_form import (
    METRIC_ROLES,
    ExperimentForm,
    form_of,
    new_form,
    read_form,
    validate_changes,
    validate_new,
)

#: Columns of a metric's results table, with how the page prints them.
RESULT_COLUMNS: dict[str, str] = {
    "variant": "text",
    "exposures": "integer",
    "total": "number",
    "mean": "precise",
    "abs_lift": "precise",
    "rel_lift": "percent",
    "ci_low": "precise",
    "ci_high": "precise",
    "p_value": "precise",
    "rel_ci_low": "percent",
    "rel_ci_high": "percent",
    "rel_p_value": "precise",
    "chance_to_win": "percent",
}
#: Columns coloured by the treatment's outcome (a significant relative win or loss).
OUTCOME_COLUMNS = frozenset(("rel_lift", "rel_ci_low", "rel_ci_high", "rel_p_value"))
SEQUENTIAL_COLUMNS: dict[str, str] = {
    "seq_ci_low": "precise",
    "seq_ci_high": "precise",
    "seq_p_value": "precise",
}
#: Lifecycle buttons: what the store does, and the flash message after it.
ACTIONS: dict[str, tuple[str, Callable[..., Any]]] = {
    "start": ("started", store.start_experiment),
    "pause": ("paused", store.pause_experiment),
    "stop": ("stopped", store.stop_experiment),
}


def page_url(endpoint: str, **args: Any) -> str:
    """The blueprint's ``page_url`` (imported late: the blueprint imports this module)."""
    from ..blueprint import page_url as blueprint_page_url

    return blueprint_page_url(endpoint, **args)


def _experiment(key: str) -> Experiment:
    experiment = store.get_experiment(key, scope_id=current_scope())
    if experiment is None:
        raise AdminError(404, f"No flag or experiment {key!r} in this scope.")
    return experiment


def _exposures(experiment: Experiment) -> int:
    with metadata_connection() as connection:
        counts = exposure_counts(
            connection,
            scope_id=experiment.scope_id,
            experiment_key=experiment.key,
            bucket_version=experiment.bucket_version,
            variant_keys=experiment.variant_keys,
        )
    return sum(counts.per_variant.values()) + counts.multiple_variants


def _variants_text(variants: list[dict[str, Any]]) -> str:
    total = sum(v["weight"] for v in variants) or 1.0
    return ", ".join(f"{v['key']} {v['weight'] / total:.0%}" for v in variants)


def experiments() -> Response | str:
    listed = run_report(experiments_list, ListQuery)["experiments"]
    now = datetime.now(timezone.utc)
    rows = []
    for item in listed:
        experiment = store.get_experiment(item["key"], scope_id=current_scope())
        assert experiment is not None
        rows.append(
            {
                **item,
                "effective_status": experiment.effective_status(now),
                "exposures": _exposures(experiment),
                "variants_text": _variants_text(item["variants"]),
            }
        )
    table = Table(
        "experiments",
        "Flags and experiments",
        ["key", "name", "kind", "status", "effective_status", "variants", "exposures"],
        [
            [
                row["key"],
                row["name"],
                row["kind"],
                row["status"],
                row["effective_status"],
                row["variants_text"],
                row["exposures"],
            ]
            for row in rows
        ],
    )
    return render_page(
        "experiments.html",
        title="Experiments",
        tables=[table],
        table=table,
        rows=rows,
        kind=request.args.get("kind", ""),
    )


def _render_form(form: ExperimentForm, *, experiment: Experiment | None, status: int) -> Response:
    title = f"Edit {experiment.key}" if experiment else "New experiment"
    body = render_page(
        "experiments_form.html",
        title=title,
        form=form.with_spare_rows(),
        experiment=experiment,
        roles=METRIC_ROLES,
    )
    return make_response(body, status)


def _store_error(form: ExperimentForm, error: ValidationError | APIError) -> int:
    if isinstance(error, ValidationError):
        form.errors[error.field] = error.message
        return 400
    form.errors["form"] = error.message
    return error.status


def create() -> Response:
    if request.method == "GET":
        return _render_form(new_form(), experiment=None, status=200)
    form = read_form(request.form)
    spec = validate_new(form)
    if spec is None:
        return _render_form(form, experiment=None, status=400)
    try:
        created = store.create_experiment(spec, scope_id=current_scope(), actor=actor())
    except (ValidationError, APIError) as error:
        return _render_form(form, experiment=None, status=_store_error(form, error))
    flash(f"Created {created.kind} {created.key!r} (draft).", "info")
    return redirect(page_url("umetrics_admin.experiments_results", key=created.key))  # type: ignore[return-value]


def edit(key: str) -> Response:
    experiment = _experiment(key)
    if request.method == "GET":
        return _render_form(form_of(experiment), experiment=experiment, status=200)
    form = read_form(request.form)
    form.key, form.kind = experiment.key, experiment.kind
    changes = validate_changes(form, experiment)
    if changes is None:
        return _render_form(form, experiment=experiment, status=400)
    if not changes.model_fields_set:
        flash("Nothing changed.", "info")
    else:
        try:
            store.update_experiment(key, changes, scope_id=current_scope(), actor=actor())
        except (ValidationError, APIError) as error:
            return _render_form(form, experiment=experiment, status=_store_error(form, error))
        changed = ", ".join(sorted(changes.model_fields_set))
        flash(f"Saved {key!r} ({changed}).", "info")
    return redirect(page_url("umetrics_admin.experiments_results", key=key))  # type: ignore[return-value]


def action(key: str, name: str) -> Response:
    """Start, pause, stop, ship, kill, revive or delete; refusals come back as a flash."""
    results_url = page_url("umetrics_admin.experiments_results", key=key)
    scope = current_scope()
    try:
        if name in ACTIONS:
            done, function = ACTIONS[name]
            function(key, scope_id=scope, actor=actor())
            flash(f"{key!r} {done}.", "info")
        elif name == "ship":
            variant = request.form.get("variant") or ""
            if not variant:
                raise ValidationError("variant", "choose the variant to ship")
            store.stop_experiment(key, shipped_variant=variant, scope_id=scope, actor=actor())
            flash(f"{key!r} stopped; everyone now gets {variant!r}.", "info")
        elif name in ("kill", "revive"):
            store.set_killed(key, name == "kill", scope_id=scope, actor=actor())
            flash(f"{key!r} {'killed' if name == 'kill' else 'revived'}.", "info")
        elif name == "delete":
            store.delete_experiment(key, scope_id=scope, actor=actor())
            flash(f"{key!r} deleted.", "info")
            return redirect(page_url("umetrics_admin.experiments"))  # type: ignore[return-value]
        else:
            raise AdminError(404, f"No action {name!r}.")
    except ValidationError as error:
        flash(str(error), "error")
    except APIError as error:
        if error.status == 404:
            raise
        flash(error.message, "error")
    return redirect(results_url)  # type: ignore[return-value]


def _pair(value: list[float] | None, index: int) -> float | None:
    return value[index] if value is not None else None


def outcome(row: dict[str, Any], *, alpha: float, sequential: bool) -> str:
    """``win`` / ``lose`` for a treatment whose relative lift is significant (the test the
    verdict reads), else ``""``: the CSS class suffix of its coloured cells."""
    p_value = row["rel_sequential_p_value"] if sequential else row["rel_p_value"]
    lift = row["rel_lift"]
    if p_value is None or lift is None or p_value >= alpha or lift == 0:
        return ""
    return "win" if lift > 0 else "lose"


def _metric_table(key: str, title: str, variants: list[dict[str, Any]], sequential: bool) -> Table:
    columns = dict(RESULT_COLUMNS, **(SEQUENTIAL_COLUMNS if sequential else {}))
    rows = []
    for v in variants:
        row = [
            v["key"],
            v["exposures"],
            v["total"],
            v["mean"],
            v["abs_lift"],
            v["rel_lift"],
            _pair(v["ci"], 0),
            _pair(v["ci"], 1),
            v["p_value"],
            _pair(v["rel_ci"], 0),
            _pair(v["rel_ci"], 1),
            v["rel_p_value"],
            v["chance_to_win"],
        ]
        if sequential:
            row += [
                _pair(v["sequential_ci"], 0),
                _pair(v["sequential_ci"], 1),
                v["sequential_p_value"],
            ]
        rows.append(row)
    return Table(key, title, list(columns), rows)


def _interval_chart(key: str, title: str, table: Table, sequential: bool) -> Chart:
    """The absolute lift's interval per treatment as a floating bar; control has none."""
    low, high = ("seq_ci_low", "seq_ci_high") if sequential else ("ci_low", "ci_high")
    i, j = table.columns.index(low), table.columns.index(high)
    labels = [str(row[0]) for row in table.rows]
    pairs = [
        [row[i], row[j]] if row[i] is not None and row[j] is not None else None
        for row in table.rows
    ]
    interval_table = Table(
        key, title, ["variant", low, high], [[row[0], row[i], row[j]] for row in table.rows]
    )
    datasets = [{"label": title, "data": pairs}]
    return Chart(key, title, "interval", labels, datasets, interval_table)


def results(key: str) -> Response | str:
    experiment = _experiment(key)
    answer = run_report(experiments_results, ResultsQuery, key=key)
    sequential = bool(answer["sequential"])
    level = f"{1 - answer['alpha']:.0%}"
    exposures = Table(
        "exposures",
        "Exposures",
        ["variant", "exposures"],
        [[v["key"], v["exposures"]] for v in answer["variants"]],
    )
    exposures_chart = Chart(
        "exposures",
        "Exposed subjects per variant",
        "bar",
        [str(row[0]) for row in exposures.rows],
        [{"label": "exposures", "data": [row[1] for row in exposures.rows]}],
        exposures,
    )
    sections = []
    for index, metric in enumerate(answer["metrics"]):
        role = "guardrail" if metric["guardrail"] else ("goal" if index == 0 else "secondary")
        if metric["key"] == answer["goal"]:
            role = "goal"
        table = _metric_table(
            f"metric-{index}", f"{metric['key']} ({metric['kind']})", metric["variants"], sequential
        )
        chart = _interval_chart(
            f"ci-{index}", f"{level} interval of the lift over control", table, sequential
        )
        outcomes = [
            outcome(v, alpha=answer["alpha"], sequential=sequential) for v in metric["variants"]
        ]
        sections.append(
            {"metric": metric, "role": role, "table": table, "chart": chart, "outcomes": outcomes}
        )
    return render_page(
        "experiments_results.html",
        title=f"{'Flag' if experiment.kind == 'flag' else 'Experiment'} {experiment.key}",
        charts=[exposures_chart, *(s["chart"] for s in sections)],
        tables=[s["table"] for s in sections],
        experiment=experiment,
        definition=experiment.to_json(),
        effective_status=experiment.effective_status(datetime.now(timezone.utc)),
        no_exposure_reasons=(
            no_exposure_reasons(experiment, current_state(), datetime.now(timezone.utc))
            if not any(v["exposures"] for v in answer["variants"])
            else []
        ),
        answer=answer,
        exposures_chart=exposures_chart,
        sections=sections,
        columns=dict(RESULT_COLUMNS, **(SEQUENTIAL_COLUMNS if sequential else {})),
        outcome_columns=OUTCOME_COLUMNS,
        level=level,
        one_sided_choice=request.args.get("one_sided", ""),
        plan_text=plan_text(answer["sample_size"], goal=answer["goal"], alpha=answer["alpha"]),
    )


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/experiments", "experiments", experiments)
    bp.add_url_rule("/experiments/new", "experiments_new", create, methods=["GET", "POST"])
    bp.add_url_rule("/experiments/<key>", "experiments_results", results)
    bp.add_url_rule("/experiments/<key>/edit", "experiments_edit", edit, methods=["GET", "POST"])
    bp.add_url_rule("/experiments/<key>/<name>", "experiments_action", action, methods=["POST"])


PAGE = Page("umetrics_admin.experiments", "Experiments", register)
