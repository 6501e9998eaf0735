"""The GA4 pages: the scope's connection, the connect wizard, and GA4's reports.

The wizard is (1) connect with a service-account key or Google's OAuth consent, (2) link an
existing property or provision one, (3) reports. Each step calls the same service functions as
the REST routes; the reports come from the REST report route itself (``run_report``). Without the
Google client libraries the page says how to install them instead of failing.
"""

from __future__ import annotations

from typing import Any

import pydantic
from flask import Blueprint, Response, flash, make_response, redirect, request

from ...api.ga4 import ProvisionBody, ga4_accounts, ga4_status
from ...api.ga4 import ReportQuery as GA4ReportQuery
from ...api.models import ScopedModel
from ...api.router import parse_query_args
from ...errors import APIError, ValidationError
from ...ga4 import service
from ...state import current_state
from ..access import actor, current_scope, require
from ..page import Chart, Table, render_page
from ..reports import report_args, run_report
from . import Page

#: The reports the page shows, with their titles.
REPORTS = {"traffic": "Traffic", "seo": "Organic search (SEO)", "conversions": "Key events"}
#: Traffic metrics drawn as lines (rates and durations stay in the table: other units).
TRAFFIC_LINES = ("sessions", "activeUsers", "newUsers", "screenPageViews")


def page_url(endpoint: str, **args: Any) -> str:
    """The blueprint's ``page_url`` (imported late: the blueprint imports this module)."""
    from ..blueprint import page_url as blueprint_page_url

    return blueprint_page_url(endpoint, **args)


def _scope_args(scope: str) -> dict[str, str]:
    """``scope_id`` for dashboard URLs (left out for the default scope)."""
    return {} if scope == current_state().settings.default_scope else {"scope_id": scope}


def callback_url() -> str:
    """The app's one OAuth callback (every scope): register it at Google as is."""
    from ...ga4.oauth import oauth_callback_url

    return oauth_callback_url()


def _report_table(name: str, answer: dict[str, Any]) -> Table:
    columns = [*answer["dimensions"], *answer["metrics"]]
    rows = [[row.get(column) for column in columns] for row in answer["rows"]]
    return Table(f"ga4-{name}", REPORTS[name], columns, rows)


def _report_chart(name: str, answer: dict[str, Any]) -> Chart:
    table = _report_table(name, answer)
    rows = answer["rows"]
    if name == "traffic":
        labels = [str(row["date"]) for row in rows]
        names = [m for m in answer["metrics"] if m in TRAFFIC_LINES]
        datasets = [{"label": m, "data": [row[m] for row in rows]} for m in names]
        return Chart(table.key, table.title, "line", labels, datasets, table)
    metric = answer["metrics"][0]
    labels = [" · ".join(str(row[d]) for d in answer["dimensions"]) for row in rows]
    datasets = [{"label": metric, "data": [row[metric] for row in rows]}]
    return Chart(table.key, table.title, "hbar", labels, datasets, table)


def _reports() -> tuple[list[dict[str, Any]], list[Chart]]:
    """Each report's chart, or the reason it is missing (quota, a bad date): never a 500."""
    sections: list[dict[str, Any]] = []
    charts: list[Chart] = []
    answers: dict[str, Any]
    try:
        # One batchRunReports call for the three reports (each still cached on its own).
        query = parse_query_args(GA4ReportQuery, report_args(GA4ReportQuery))
        params = query.model_dump(exclude_none=True, exclude={"scope_id", "steps"})
        answers = service.reports(list(REPORTS), current_scope(), params)
    except (APIError, ValidationError) as error:
        answers = dict.fromkeys(REPORTS, error)
    for name, title in REPORTS.items():
        answer = answers[name]
        if isinstance(answer, (APIError, ValidationError)):
            message = answer.message if isinstance(answer, APIError) else str(answer)
            sections.append({"name": name, "title": title, "error": message})
            continue
        chart = _report_chart(name, answer)
        charts.append(chart)
        sections.append(
            {
                "name": name,
                "title": title,
                "chart": chart,
                "answer": answer,
                "notes": quality_notes(answer),
            }
        )
    return sections, charts


def quality_notes(answer: dict[str, Any]) -> list[str]:
    """What GA4 said about the answer (sampling, thresholds, "(other)", low quota), in words."""
    notes: list[str] = []
    meta = answer.get("metadata") or {}
    for sample in meta.get("sampling") or []:
        read, space = sample["samples_read_count"], sample["sampling_space_size"]
        share = f"{100 * read / space:.1f} %" if space else "part"
        notes.append(f"Sampled: based on {share} of the data ({read} of {space} events).")
    if meta.get("subject_to_thresholding"):
        notes.append("Thresholded: GA4 withheld rows with few users to protect privacy.")
    if meta.get("data_loss_from_other_row"):
        notes.append('Some rows were folded into "(other)" by GA4 (high cardinality).')
    if answer.get("quota_warning"):
        notes.append(str(answer["quota_warning"]) + ".")
    return notes


def _render(status: int = 200, error: str | None = None) -> Response:
    info = run_report(ga4_status, ScopedModel)
    connection = info["connection"]
    sections: list[dict[str, Any]] = []
    charts: list[Chart] = []
    if connection is not None and connection["property_id"]:
        sections, charts = _reports()
    body = render_page(
        "ga4.html",
        title="GA4",
        charts=charts,
        status=info,
        connection=connection,
        sections=sections,
        error=error,
        # The callback's module needs the ga4 extra (oauthlib): without it the page only shows
        # the install hint, so it must not import it (a 500 in `make demo`'s .[demo] install).
        callback_url=callback_url() if info["available"] else None,
        install_hint="pip install flask-umetrics[ga4]",
    )
    return make_response(body, status)


def ga4() -> Response:
    return _render()


def _back(endpoint: str = "umetrics_admin.ga4", *, scope: str | None = None) -> Response:
    args = _scope_args(scope) if scope is not None else {}
    return redirect(page_url(endpoint, **args))  # type: ignore[return-value]


def _message(error: APIError | ValidationError) -> str:
    return error.message if isinstance(error, APIError) else str(error)


def connect() -> Response:
    """Step 1 with a service-account key, pasted or uploaded."""
    upload = request.files.get("service_account_file")
    text = upload.read().decode("utf-8", "replace") if upload and upload.filename else ""
    text = text or (request.form.get("service_account") or "").strip()
    if not text:
        return _render(400, "service_account: paste the key's JSON or choose its file")
    try:
        service.require_libraries()
        from ...ga4.connections import save_service_account

        connection = save_service_account(current_scope(), text, actor=actor())
    except (APIError, ValidationError) as error:
        status = error.status if isinstance(error, APIError) else 400
        return _render(status, _message(error))
    flash(f"Connected as {connection.principal}. Now link or create a property.", "info")
    return _back("umetrics_admin.ga4_accounts")


def oauth_start() -> Response:
    """Step 1 with Google's consent: the browser goes to Google and comes back to the callback."""
    try:
        service.require_libraries()
        from ...ga4.oauth import start_oauth

        url = start_oauth(
            current_scope(),
            redirect_uri=callback_url(),
            actor=actor(),
            provisioning=request.form.get("provisioning") == "on",
        )
    except (APIError, ValidationError) as error:
        return _render(error.status if isinstance(error, APIError) else 400, _message(error))
    return redirect(url)  # type: ignore[return-value]


def oauth_callback() -> Response:
    """Google sends the browser here for every scope and both flows (dashboard and REST).

    The scope comes from the signed state, never the query string. The state is the
    credential, as OAuth intends: signed with ``SECRET_KEY``, bound to a flow row that a
    principal with ``metrics.manage`` on that scope started, usable once within 10 minutes;
    so a flow started over REST completes in a browser without a dashboard session.
    """
    service.require_libraries()
    from ...ga4.oauth import finish_oauth, state_scope

    state = request.args.get("state", "")
    scope = state_scope(state)
    if scope is None:
        flash("This sign-in's state is missing, altered or expired: start again.", "error")
        return _back()
    denied = request.args.get("error")
    if denied:
        flash(f"Google answered: {denied[:200]}", "error")
        return _back(scope=scope)
    try:
        finish_oauth(
            scope,
            state=state,
            code=request.args.get("code", ""),
            redirect_uri=callback_url(),
        )
    except (APIError, ValidationError) as error:
        flash(_message(error), "error")
        return _back(scope=scope)
    flash("Connected to Google Analytics. Now link or create a property.", "info")
    return _back("umetrics_admin.ga4_accounts", scope=scope)


def accounts(status: int = 200, error: str | None = None, values: Any = None) -> Response:
    """Step 2: the accounts and properties the credentials see; link one or provision."""
    require("metrics.manage")
    info = run_report(ga4_status, ScopedModel)
    found: list[dict[str, Any]] = []
    if info["connected"]:
        try:
            found = run_report(ga4_accounts, ScopedModel)["accounts"]
        except APIError as exc:
            error, status = exc.message, exc.status
    tz = current_state().settings["UMETRICS_TIMEZONE"] or "UTC"
    defaults = {"display_name": "", "site_url": "", "time_zone": tz, "currency": "USD"}
    body = render_page(
        "ga4_accounts.html",
        title="GA4 properties",
        status=info,
        connection=info["connection"],
        accounts=found,
        error=error,
        values=dict(defaults, **(values or {})),
    )
    return make_response(body, status)


def accounts_page() -> Response:
    return accounts()


def link() -> Response:
    property_id = (request.form.get("property_id") or "").strip()
    try:
        if not property_id:
            raise ValidationError("property_id", "choose a property")
        answer = service.link(current_scope(), property_id, actor=actor())
    except (APIError, ValidationError) as error:
        flash(_message(error), "error")
        return _back("umetrics_admin.ga4_accounts")
    name = answer["connection"]["property_name"] or property_id
    flash(f"Linked GA4 property {name} ({property_id}).", "info")
    if not answer["forwarding"]["ready"]:
        flash(f"Forwarding to GA4 is off: {answer['forwarding']['reason']}.", "info")
    return _back()


def provision() -> Response:
    values = {
        name: (request.form.get(name) or "").strip()
        for name in ("account_id", "display_name", "site_url", "time_zone", "currency")
    }
    try:
        body = ProvisionBody.model_validate(values)
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(part) for part in first["loc"])
        return accounts(400, f"{field}: {first['msg']}", values)
    try:
        answer = service.provision(
            current_scope(),
            account_id=body.account_id,
            display_name=body.display_name,
            site_url=body.site_url,
            time_zone=body.time_zone,
            currency=body.currency,
            actor=actor(),
        )
    except (APIError, ValidationError) as error:
        status = error.status if isinstance(error, APIError) else 400
        return accounts(status, _message(error), values)
    made = answer["provisioned"]
    what = "Created" if made.get("property_created") else "Reused"
    flash(f"{what} property {made['property_id']} with stream {made['measurement_id']}.", "info")
    return _back()


def sync() -> Response:
    try:
        service.require_libraries()
        from ...ga4.sync import sync_scope

        result = sync_scope(current_scope())
    except APIError as error:
        flash(error.message, "error")
        return _back()
    if result.error:
        flash(f"Sync failed: {result.error}", "error")
    else:
        flash(
            f"Synced {result.readings} readings ({result.date_from} to {result.date_to}).", "info"
        )
    return _back()


def disconnect() -> Response:
    try:
        service.require_libraries()
        from ...ga4.connections import disconnect as disconnect_scope

        gone = disconnect_scope(current_scope(), actor=actor())
    except APIError as error:
        flash(error.message, "error")
        return _back()
    flash("Disconnected from GA4." if gone else "GA4 was not connected.", "info")
    return _back()


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/ga4", "ga4", ga4)
    bp.add_url_rule("/ga4/accounts", "ga4_accounts", accounts_page)
    bp.add_url_rule("/ga4/connect", "ga4_connect", connect, methods=["POST"])
    bp.add_url_rule("/ga4/oauth/start", "ga4_oauth_start", oauth_start, methods=["POST"])
    bp.add_url_rule("/ga4/oauth/callback", "ga4_oauth_callback", oauth_callback)
    bp.add_url_rule("/ga4/link", "ga4_link", link, methods=["POST"])
    bp.add_url_rule("/ga4/provision", "ga4_provision", provision, methods=["POST"])
    bp.add_url_rule("/ga4/sync", "ga4_sync", sync, methods=["POST"])
    bp.add_url_rule("/ga4/disconnect", "ga4_disconnect", disconnect, methods=["POST"])


PAGE = Page("umetrics_admin.ga4", "GA4", register)
