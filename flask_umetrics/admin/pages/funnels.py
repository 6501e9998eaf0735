"""The Funnels page (being built)."""

from __future__ import annotations

from flask import Blueprint, Response

from ..page import render_page
from . import Page


def view() -> Response | str:
    return render_page("placeholder.html", title="Funnels")


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/funnels", "funnels", view)


PAGE = Page("umetrics_admin.funnels", "Funnels", register)
