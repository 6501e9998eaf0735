"""The Annotations page: the scope's dated notes (newest first), which every time-series chart
marks on its time axis; managers add and delete them (POST forms, CSRF-checked).

Not named ``annotations.py``: ``from __future__ import annotations`` binds that name in this
package, so ``from . import annotations`` would not import the module.
"""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue

from ...annotations import MAX_TEXT, create_annotation, delete_annotation, list_annotations
from ...api.insights import not_found, path_id
from ...api.params import parse_iso_datetime
from ...errors import ValidationError
from ..access import actor, current_scope
from ..page import render_page
from . import Page
from .insights import scope_arg


def view() -> Response | str:
    notes = list_annotations(scope_id=current_scope())
    return render_page(
        "annotations.html",
        title="Annotations",
        annotations=list(reversed(notes)),
        max_text=MAX_TEXT,
    )


def add() -> ResponseReturnValue:
    """Note the form's text at its moment (a ``datetime-local`` value: the app's time zone)."""
    raw = request.form.get("occurs_at", "").strip()
    try:
        when = parse_iso_datetime(raw) if raw else None
    except ValueError:
        when = None
    if when is None:
        raise ValidationError("occurs_at", "must be a date and time (YYYY-MM-DDTHH:MM)")
    note = create_annotation(
        when, request.form.get("text", ""), scope_id=current_scope(), actor=actor()
    )
    flash(f"Added the annotation \u201c{note.text}\u201d.", "info")
    return redirect(url_for("umetrics_admin.annotations", scope_id=scope_arg()))


def delete(annotation_id: str) -> ResponseReturnValue:
    number = path_id(annotation_id, "annotation")
    if not delete_annotation(number, scope_id=current_scope(), actor=actor()):
        raise not_found("annotation", annotation_id)
    flash("Deleted the annotation.", "info")
    return redirect(url_for("umetrics_admin.annotations", scope_id=scope_arg()))


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/annotations", "annotations", view)
    bp.add_url_rule("/annotations", "annotations_add", add, methods=["POST"])
    bp.add_url_rule(
        "/annotations/<annotation_id>/delete", "annotations_delete", delete, methods=["POST"]
    )


PAGE = Page("umetrics_admin.annotations", "Annotations", register)
