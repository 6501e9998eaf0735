"""Report route: attribution (``/api/query/attribution``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from ...queries.attribution import MAX_LOOKBACK_DAYS, AttributionResult, attribution
from ..router import APICall
from ..routes import router
from .params import ReportQuery

TAG = "reports"


class OwnHostsQuery(ReportQuery):
    """A report that tells the site's own referrers from external ones."""

    own_hosts: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="The site's own hosts (repeat or comma-separate): their referrers are ignored.",
    )

    @field_validator("own_hosts", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return value
        return [host.strip() for text in texts for host in text.split(",") if host.strip()]


class AttributionQuery(OwnHostsQuery):
    conversion_event: str = Field(min_length=1, max_length=200)
    model: Literal["first_touch", "last_touch", "linear"] = "last_touch"
    lookback_days: int = Field(30, ge=0, le=MAX_LOOKBACK_DAYS)
    value_property: str | None = Field(
        None, min_length=1, max_length=200, description="Numeric property of the conversion."
    )
    group_by: Literal["channel", "source", "campaign"] = "channel"


@router.route(
    "/query/attribution",
    summary="Conversions credited to channels, sources or campaigns",
    permission="metrics.view",
    tag=TAG,
    query=AttributionQuery,
    response=AttributionResult,
)
def query_attribution(call: APICall) -> AttributionResult:
    q = call.query
    return attribution(
        q.context(call.scope_id),
        conversion_event=q.conversion_event,
        model=q.model,
        lookback_days=q.lookback_days,
        value_property=q.value_property,
        group_by=q.group_by,
        own_hosts=tuple(q.own_hosts),
    )
