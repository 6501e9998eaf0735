"""The GA4 page (being built)."""

from __future__ import annotations

from flask import Blueprint, Response

from ..page import render_page
from . import Page


def view() -> Response | str:
    return render_page("placeholder.html", title="GA4")


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/ga4", "ga4", view)


PAGE = Page("umetrics_admin.ga4", "GA4", register)
