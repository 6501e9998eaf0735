"""Who is asking: a session login for browsers, HTTP Basic for scripts such as ``curl -u``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Flask, g, redirect, request, session, url_for
from sqlalchemy import select

from .database import db, utcnow
from .models import User

F = TypeVar("F", bound=Callable[..., Any])

_SESSION_KEY = "user_id"
_G_KEY = "acme_user"
_UNSET = object()


def normalize_email(email: str) -> str:
    return email.strip().lower()


def find_user(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalize_email(email)))


def authenticate(email: str, password: str) -> User | None:
    """The user with these credentials, or None (same answer for unknown email and bad password)."""
    user = find_user(email)
    if user is None or not user.check_password(password):
        return None
    return user


def _user_from_session() -> User | None:
    user_id = session.get(_SESSION_KEY)
    if not isinstance(user_id, int):
        return None
    user = db.session.get(User, user_id)
    if user is None:  # the account is gone, e.g. after `seed-demo --reset`
        session.pop(_SESSION_KEY, None)
    return user


def _user_from_basic_auth() -> User | None:
    credentials = request.authorization
    if credentials is None or credentials.type != "basic":
        return None
    return authenticate(credentials.username or "", credentials.password or "")


def current_user() -> User | None:
    """The logged-in user of this request, looked up once and cached on ``g``."""
    cached = g.get(_G_KEY, _UNSET)
    if cached is _UNSET:
        cached = _user_from_session() or _user_from_basic_auth()
        setattr(g, _G_KEY, cached)
    return cast("User | None", cached)


def login_user(user: User) -> None:
    """Start from an empty session, so nothing stored before the login carries over."""
    session.clear()
    session[_SESSION_KEY] = user.id
    setattr(g, _G_KEY, user)


def logout_user() -> None:
    session.clear()
    setattr(g, _G_KEY, None)


def login_required(view: F) -> F:
    """Send anonymous visitors to the login page, and back here afterwards."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            target = request.path if request.method == "GET" else url_for("pages.pricing")
            return redirect(url_for("pages.login", next=target))
        return view(*args, **kwargs)

    return cast(F, wrapper)


def _touch_last_seen() -> None:
    """Record the visit; committed at once so no write lock outlives this line on SQLite."""
    user = current_user()
    if user is not None:
        user.last_seen_at = utcnow()
        db.session.commit()


def init_app(app: Flask) -> None:
    app.before_request(_touch_last_seen)
    app.context_processor(lambda: {"current_user": current_user()})
