"""The dashboard's pages, one module each, in navigation order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint


@dataclass(frozen=True)
class Page:
    """A page's main endpoint, its navigation label (None: not in the menu) and its routes."""

    endpoint: str
    label: str | None
    register: Callable[[Blueprint], None]


def _all_pages() -> list[Page]:
    from . import (
        annotations_page,
        attribution,
        dashboards,
        events,
        experiments,
        features,
        funnels,
        ga4,
        insights,
        lifecycle,
        overview,
        paths,
        people,
        persons_behind,
        retention,
        settings,
        stickiness,
        web,
    )

    modules = [
        overview,
        web,
        dashboards,
        insights,
        annotations_page,
        events,
        funnels,
        retention,
        lifecycle,
        stickiness,
        people,
        paths,
        attribution,
        features,
        experiments,
        ga4,
        settings,
        persons_behind,
    ]
    return [module.PAGE for module in modules]


PAGES: list[Page] = _all_pages()
