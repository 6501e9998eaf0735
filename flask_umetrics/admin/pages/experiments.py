"""The Experiments page (being built)."""

from __future__ import annotations

from flask import Blueprint, Response

from ..page import render_page
from . import Page


def view() -> Response | str:
    return render_page("placeholder.html", title="Experiments")


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/experiments", "experiments", view)


PAGE = Page("umetrics_admin.experiments", "Experiments", register)
