"""People: search persons, one person's properties, ids, timeline and sessions, GDPR actions.

Every number comes from the REST routes' own views (search, timeline, export, delete), so the
page and the API agree. Deleting needs the visitor to type the distinct id again: the check is
on the server, a mismatch deletes nothing and shows the form with the message (status 400).

A person's pages take the distinct id as a query parameter (``/person?distinct_id=...``), not a
path segment: ids are whatever the host sent, and an id holding ``/``, ``..``, ``?``, ``#`` or
``%`` would make a path resolve to another page (browsers normalise ``..``) or lose its tail.
Old ``/people/<id>`` links redirect.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue

from ...api.models import ScopedModel
from ...api.people import PersonSearchQuery, TimelineQuery, person_search, person_timeline
from ...api.privacy import person_delete, person_export
from ...errors import APIError, ValidationError
from ..access import require
from ..errors import AdminError
from ..page import Table, render_page
from ..reports import run_report
from . import Page

PAGE_SIZE = 50
TIMELINE_PAGE = 50
#: The field the visitor types the distinct id into before a delete.
CONFIRM_FIELD = "confirm_distinct_id"


def properties_text(properties: dict[str, Any]) -> str:
    """Properties as compact JSON (shown escaped, copied as is into CSV)."""
    return json.dumps(properties, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))


def _search_table(result: dict[str, Any]) -> Table:
    return Table(
        "people",
        "People",
        ["distinct_id", "distinct_ids", "properties", "first_seen", "last_seen", "events"],
        [
            [
                person["distinct_ids"][0] if person["distinct_ids"] else "",
                len(person["distinct_ids"]),
                properties_text(person["properties"]),
                person["created_at"],
                person["last_seen"],
                person["events"],
            ]
            for person in result["persons"]
        ],
    )


def people() -> ResponseReturnValue:
    """The search form and its matches; without criteria, the newest persons."""
    error: str | None = None
    status = 200
    overrides: dict[str, Any] = {"limit": PAGE_SIZE}
    if not request.args.get("property"):
        overrides["value"] = None  # a value left in the form without a property means nothing
    try:
        result = run_report(person_search, PersonSearchQuery, overrides)
    except (APIError, ValidationError) as exc:
        if isinstance(exc, APIError) and exc.status != 400:
            raise
        error, status = exc.message if isinstance(exc, APIError) else str(exc), 400
        result = {"persons": [], "total": 0, "offset": 0, "limit": PAGE_SIZE}
    table = _search_table(result)
    offset = result["offset"]
    previous_offset = max(offset - PAGE_SIZE, 0) if offset > 0 else None
    next_offset = offset + PAGE_SIZE if offset + PAGE_SIZE < result["total"] else None
    page = render_page(
        "people.html",
        title="People",
        tables=[table],
        result=result,
        table=table,
        error=error,
        previous_offset=previous_offset,
        next_offset=next_offset,
    )
    return page, status


def _person_page(distinct_id: str, *, delete_error: str | None = None) -> Response | str:
    data = run_report(
        person_timeline, TimelineQuery, {"limit": TIMELINE_PAGE}, distinct_id=distinct_id
    )
    person = data["person"]
    properties = Table(
        "properties",
        "Properties",
        ["property", "value"],
        [
            [key, value if isinstance(value, (str, int, float)) else json.dumps(value)]
            for key, value in sorted(person["properties"].items())
        ],
    )
    ids = Table(
        "distinct-ids", "Distinct ids", ["distinct_id"], [[i] for i in person["distinct_ids"]]
    )
    timeline = Table(
        "timeline",
        "Timeline",
        ["time", "event", "distinct_id", "session_id", "properties"],
        [
            [
                event["timestamp"],
                event["event"],
                event["distinct_id"],
                event["session_id"] or "",
                event["properties"],
            ]
            for event in data["events"]
        ],
    )
    sessions = Table(
        "sessions",
        "Sessions",
        ["start", "end", "duration", "events", "session_id"],
        [
            [s["start"], s["end"], s["duration"], s["events"], s["session_id"] or ""]
            for s in data["sessions"]
        ],
    )
    return render_page(
        "person.html",
        title=f"Person {distinct_id}",
        tables=[properties, ids, timeline, sessions],
        distinct_id=distinct_id,
        person=person,
        properties=properties,
        ids=ids,
        timeline=timeline,
        sessions=sessions,
        next_cursor=data["next"],
        delete_error=delete_error,
        confirm_field=CONFIRM_FIELD,
    )


def _distinct_id() -> str:
    """The ``distinct_id`` query parameter: any text, exactly as stored."""
    distinct_id = request.args.get("distinct_id", "")
    if distinct_id == "":
        raise AdminError(400, "distinct_id: required (the person's distinct id)")
    return distinct_id


def person() -> Response | str:
    return _person_page(_distinct_id())


def legacy_person(distinct_id: str) -> ResponseReturnValue:
    """``/people/<id>`` (the old link shape) answers with a redirect to the person page."""
    args: dict[str, Any] = request.args.to_dict(flat=True)
    args["distinct_id"] = distinct_id
    return redirect(url_for("umetrics_admin.people_person", **args), 301)


def export() -> Response:
    """The REST export's JSON document as a download (it needs ``metrics.manage``)."""
    require("metrics.manage")
    answer: Response = run_report(person_export, ScopedModel, distinct_id=_distinct_id())
    return answer


def delete() -> ResponseReturnValue:
    distinct_id = _distinct_id()
    typed = request.form.get(CONFIRM_FIELD, "")
    if typed != distinct_id:
        message = f"{CONFIRM_FIELD}: type the distinct id exactly to confirm; nothing was deleted."
        return _person_page(distinct_id, delete_error=message), 400
    report = run_report(person_delete, ScopedModel, distinct_id=distinct_id)
    flash(
        f"Deleted the person of {distinct_id!r}: {report['distinct_ids']} distinct ids and "
        f"{report['events']} events.",
        "info",
    )
    scope = request.args.get("scope_id") or request.form.get("scope_id")
    return redirect(url_for("umetrics_admin.people", scope_id=scope or None))


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/people", "people", people)
    bp.add_url_rule("/person", "people_person", person)
    bp.add_url_rule("/person/export", "people_export", export)
    bp.add_url_rule("/person/delete", "people_delete", delete, methods=["POST"])
    bp.add_url_rule("/people/<path:distinct_id>", "people_legacy_person", legacy_person)


PAGE = Page("umetrics_admin.people", "People", register)
