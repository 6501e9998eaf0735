"""Privacy routes (GDPR): delete, anonymise or export everything about one person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Response, jsonify
from pydantic import BaseModel

from ..errors import APIError
from ..events.privacy import (
    AnonymizationReport,
    DeletionReport,
    anonymize_person,
    delete_person,
    export_person,
)
from .models import ScopedModel
from .router import APICall
from .routes import router

TAG = "privacy"


def _not_found(distinct_id: str) -> APIError:
    return APIError(404, "not_found", f"No person with distinct id {distinct_id!r} in this scope.")


@router.route(
    "/persons/<anypath:distinct_id>",
    methods=("DELETE",),
    summary="Delete a person, all their distinct ids and all their events",
    permission="metrics.manage",
    tag=TAG,
    query=ScopedModel,
    response=DeletionReport,
)
def person_delete(call: APICall, distinct_id: str) -> DeletionReport:
    report = delete_person(distinct_id, scope_id=call.scope_id)
    if not report.found:
        raise _not_found(distinct_id)
    return report


@router.route(
    "/persons/<anypath:distinct_id>/anonymize",
    methods=("POST",),
    summary="Replace a person's distinct ids, clear their properties and PII event properties",
    permission="metrics.manage",
    tag=TAG,
    body=ScopedModel,
    response=AnonymizationReport,
)
def person_anonymize(call: APICall, distinct_id: str) -> AnonymizationReport:
    report = anonymize_person(distinct_id, scope_id=call.scope_id)
    if not report.found:
        raise _not_found(distinct_id)
    return report


class ExportedPerson(BaseModel):
    id: int
    properties: dict[str, Any]
    created_at: datetime
    is_identified: bool


class ExportedEvent(BaseModel):
    uuid: str | None
    event: str
    distinct_id: str
    timestamp: datetime
    session_id: str | None
    active: bool
    properties: dict[str, Any]


class PersonExport(BaseModel):
    """The shape of :func:`flask_umetrics.events.privacy.export_person` (documentation)."""

    scope_id: str
    person: ExportedPerson
    distinct_ids: list[str]
    events: list[ExportedEvent]


@router.route(
    "/persons/<anypath:distinct_id>/export",
    summary="Everything stored about a person, as a JSON download",
    permission="metrics.manage",
    tag=TAG,
    query=ScopedModel,
    response=PersonExport,
)
def person_export(call: APICall, distinct_id: str) -> Response:
    document = export_person(distinct_id, scope_id=call.scope_id)
    if document is None:
        raise _not_found(distinct_id)
    answer = jsonify(document)
    filename = f"person-{document['person']['id']}.json"
    answer.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return answer
