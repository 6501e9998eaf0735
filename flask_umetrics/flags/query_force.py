"""Forcing a variant from the URL (QA): GrowthBook's query-string override, and our own parameter.

GrowthBook reads ``?<experiment-key>=<variation index>``; the server's request path reads
``?umetrics_force=<key>:<variant>`` (only with ``UMETRICS_ALLOW_URL_FORCE``). Neither is stored
or logged as an exposure: it is a look at a variant, not an assignment.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

FORCE_PARAMETER = "umetrics_force"


def query_string_override(key: str, url: str, count: int) -> int | None:
    """GrowthBook's ``getQueryStringOverride``: the variation index ``url`` forces for ``key``.

    Only a plain non-negative integer below ``count`` counts; anything else is no override.
    """
    if not url:
        return None
    query = urlsplit(url).query
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name != key:
            continue
        if not (value.isascii() and value.isdigit()):
            return None
        index = int(value)
        return index if index < count else None
    return None


def parse_force(values: list[str]) -> dict[str, str]:
    """``umetrics_force`` values (``key:variant``, repeatable or comma-separated) by key."""
    forced: dict[str, str] = {}
    for value in values:
        for item in value.split(","):
            key, sep, variant = item.strip().partition(":")
            if sep and key and variant:
                forced[key] = variant
    return forced
