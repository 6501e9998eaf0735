"""REST routes of annotations: list them over a range (view); create, change, delete (manage).

Not named ``annotations.py``: ``from __future__ import annotations`` binds that name in the
package, so ``from . import annotations`` would not import the module."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ..annotations import (
    MAX_LIST,
    MAX_TEXT,
    Annotation,
    create_annotation,
    delete_annotation,
    list_annotations,
    update_annotation,
)
from .insights import Deleted, not_found, path_id
from .models import ScopedModel
from .params import DateTimeParam
from .router import APICall
from .routes import router

TAG = "annotations"


class AnnotationList(BaseModel):
    annotations: list[Annotation]


class AnnotationQuery(ScopedModel):
    date_from: DateTimeParam | None = Field(None, description="Only from this moment (included).")
    date_to: DateTimeParam | None = Field(None, description="Only before this moment.")
    limit: int = Field(MAX_LIST, ge=1, le=MAX_LIST)


@router.route(
    "/annotations",
    summary="Annotations of the scope in a range, earliest first",
    permission="metrics.view",
    tag=TAG,
    query=AnnotationQuery,
    response=AnnotationList,
)
def annotations_list(call: APICall) -> AnnotationList:
    q = call.query
    found = list_annotations(
        date_from=q.date_from, date_to=q.date_to, limit=q.limit, scope_id=call.scope_id
    )
    return AnnotationList(annotations=found)


class AnnotationBody(ScopedModel):
    occurs_at: DateTimeParam = Field(
        description="When it happened (ISO 8601; without an offset: UMETRICS_TIMEZONE)."
    )
    text: str = Field(min_length=1, max_length=MAX_TEXT)


@router.route(
    "/annotations",
    methods=("POST",),
    summary="Note something at a moment (charts mark it on their time axis)",
    permission="metrics.manage",
    tag=TAG,
    body=AnnotationBody,
    response=Annotation,
    status=201,
)
def annotations_create(call: APICall) -> Annotation:
    body = call.body
    return create_annotation(body.occurs_at, body.text, scope_id=call.scope_id, actor=call.actor)


class AnnotationChanges(ScopedModel):
    occurs_at: DateTimeParam | None = None
    text: str | None = Field(None, min_length=1, max_length=MAX_TEXT)


@router.route(
    "/annotations/<annotation_id>",
    methods=("PATCH",),
    summary="Change an annotation's moment or text",
    permission="metrics.manage",
    tag=TAG,
    body=AnnotationChanges,
    response=Annotation,
)
def annotations_update(call: APICall, annotation_id: str) -> Annotation:
    body = call.body
    annotation = update_annotation(
        path_id(annotation_id, "annotation"),
        occurs_at=body.occurs_at,
        text=body.text,
        scope_id=call.scope_id,
        actor=call.actor,
    )
    if annotation is None:
        raise not_found("annotation", annotation_id)
    return annotation


@router.route(
    "/annotations/<annotation_id>",
    methods=("DELETE",),
    summary="Delete an annotation",
    permission="metrics.manage",
    tag=TAG,
    query=ScopedModel,
    response=Deleted,
)
def annotations_delete(call: APICall, annotation_id: str) -> Deleted:
    number = path_id(annotation_id, "annotation")
    if not delete_annotation(number, scope_id=call.scope_id, actor=call.actor):
        raise not_found("annotation", annotation_id)
    return Deleted(id=number, deleted=True)
