"""``compare=previous``: the same report over the range just before, aligned by bucket index.

The previous range is the report's range moved back by as many intervals as it has buckets
(calendar arithmetic in the scope's time zone, ``buckets.shift_back``): a range of 7 local days
across a DST change compares with the 7 local days before it, bucket ``i`` with bucket ``i``,
and a range starting on a bucket start ends the previous one exactly where it begins.
"""

from __future__ import annotations

import dataclasses

from ..errors import ValidationError
from .buckets import shift_back
from .context import ReportContext

COMPARES: tuple[str, ...] = ("previous",)


def previous_context(ctx: ReportContext, interval: str) -> ReportContext:
    """``ctx`` over the previous range of as many ``interval`` buckets."""
    count = len(ctx.buckets(interval).starts)
    try:
        date_from = shift_back(ctx.date_from, interval, ctx.zone, count)
        date_to = shift_back(ctx.date_to, interval, ctx.zone, count)
    except (OverflowError, ValueError) as exc:
        raise ValidationError("compare", "the previous range is out of range") from exc
    return dataclasses.replace(ctx, date_from=date_from, date_to=date_to)


def check_compare(compare: str | None) -> None:
    if compare is not None and compare not in COMPARES:
        raise ValidationError("compare", f"must be one of {', '.join(COMPARES)}")
