"""The pages of Acme Notes: marketing, sign-up and login, the notes app, and upgrading."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from . import tracking
from .analytics import SCOPE
from .auth import (
    authenticate,
    current_user,
    find_user,
    login_required,
    login_user,
    logout_user,
    normalize_email,
)
from .database import db
from .models import PAID_PLANS, PLANS, Note, Organization, User

bp = Blueprint("pages", __name__)

MIN_PASSWORD_LENGTH = 8


def is_local_path(target: str) -> bool:
    """Whether ``target`` is a path on this site, read the way a browser reads a ``Location``.

    Browsers drop tabs and newlines from a URL and read a backslash as a slash, so a slash, a tab
    and ``/evil.example`` (or a slash, a backslash and ``evil.example``) mean ``//evil.example``:
    another site. Refused: anything not starting with exactly one ``/``, any backslash, any
    control or separator character but the plain space, and anything with a scheme or a host.
    """
    if not target.startswith("/") or target.startswith("//"):
        return False
    if any(char == "\\" or not char.isprintable() for char in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def _safe_next(target: str | None) -> str:
    """Only same-site paths, so ``?next=`` cannot send people to another site."""
    if target and is_local_path(target):
        return target
    return url_for("pages.notes")


@bp.get("/")
def index() -> ResponseReturnValue:
    return render_template("index.html")


@bp.get("/pricing")
def pricing() -> ResponseReturnValue:
    return render_template("pricing.html", plans=PLANS.values(), paid_plans=PAID_PLANS)


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> ResponseReturnValue:
    """Create the user, their workspace on the free plan, and log them in."""
    if request.method == "GET":
        return render_template("signup.html", form={})
    form = request.form
    name = form.get("name", "").strip()
    email = normalize_email(form.get("email", ""))
    password = form.get("password", "")
    error = None
    if not name:
        error = "Please tell us your name."
    elif "@" not in email.strip("@") or len(email) > 254:
        error = "Please enter a valid email address."
    elif len(password) < MIN_PASSWORD_LENGTH:
        error = f"Passwords need at least {MIN_PASSWORD_LENGTH} characters."
    elif find_user(email) is not None:
        error = "An account with this email already exists. Log in instead?"
    if error is not None:
        flash(error, "error")
        return render_template("signup.html", form=form), 400
    organization = Organization(name=f"{name}'s workspace")
    organization.change_plan("free")
    user = User(name=name, email=email, organization=organization)
    user.set_password(password)
    db.session.add_all([organization, user])
    db.session.commit()
    tracking.identified(user.id, plan="free", email_domain=user.email_domain)
    login_user(user)
    tracking.event("signed_up", plan="free")
    flash(f"Welcome to Acme Notes, {name}!", "success")
    return redirect(url_for("pages.notes"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    next_url = request.values.get("next")
    if request.method == "GET":
        return render_template("login.html", next=next_url, email="")
    email = request.form.get("email", "")
    user = authenticate(email, request.form.get("password", ""))
    if user is None:
        flash("Wrong email or password.", "error")
        return render_template("login.html", next=next_url, email=email), 400
    tracking.identified(user.id)
    login_user(user)
    tracking.event("logged_in")
    return redirect(_safe_next(next_url))


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    logout_user()
    flash("You are logged out.", "success")
    return redirect(url_for("pages.index"))


@bp.route("/app", methods=["GET", "POST"])
@login_required
def notes() -> ResponseReturnValue:
    """List the user's notes and write new ones (post, then redirect back)."""
    user = current_user()
    assert user is not None  # login_required
    if request.method == "POST":
        title = request.form.get("title", "").strip()
        body = request.form.get("body", "").strip()
        if not title:
            flash("A note needs a title.", "error")
        elif len(title) > 200:
            flash("Titles are at most 200 characters.", "error")
        else:
            db.session.add(Note(user_id=user.id, title=title, body=body))
            db.session.commit()
            tracking.event("note_created", length=len(body))
            flash("Note saved.", "success")
        return redirect(url_for("pages.notes"))
    notes = db.session.scalars(
        select(Note).where(Note.user_id == user.id).order_by(Note.created_at.desc(), Note.id.desc())
    ).all()
    stats_url = None
    if current_app.config.get("UMETRICS_ENABLE_API"):
        stats_url = f"{current_app.config['UMETRICS_URL_PREFIX']}/api/stats?scope_id={SCOPE}"
    return render_template(
        "notes.html", notes=notes, plan=PLANS[user.plan], scope=SCOPE, stats_url=stats_url
    )


@bp.post("/upgrade")
@login_required
def upgrade() -> ResponseReturnValue:
    """Switch the workspace to a paid plan (Pro unless the form asks for another)."""
    user = current_user()
    assert user is not None  # login_required
    plan = request.form.get("plan", "pro")
    if plan not in PAID_PLANS:
        flash("There is no such plan.", "error")
        return redirect(url_for("pages.pricing"))
    if user.plan == plan:
        flash(f"You are already on {PLANS[plan].name}.", "success")
        return redirect(url_for("pages.notes"))
    user.organization.change_plan(plan)
    db.session.commit()
    tracking.event("plan_upgraded", plan=plan, value=PLANS[plan].price_usd)
    tracking.plan_changed(user.id, plan)
    flash(f"You are now on {PLANS[plan].name}. Thank you!", "success")
    return redirect(url_for("pages.notes"))
