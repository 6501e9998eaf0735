"""Report routes under ``/api/query/...``, one module per report; importing each registers its
routes."""

from . import (  # noqa: F401
    adhoc,
    attribution,
    basic,
    cohorts,
    dashboard,
    funnel,
    funnel_correlation,
    lifecycle,
    live,
    paths,
    persons,
    retention,
    sessions,
    stickiness,
    web,
)
