"""Acme Notes: a small SaaS demo of flask-umetrics on SQLite.

``flask --app example_app ...`` finds :func:`create_app`; there is deliberately no module-level
``app``, so tests build their own with ``create_app({...})``.

Commands: ``seed-demo`` fills the database (users, notes, events, stat history, the demo's flag
and experiment with simulated traffic, and a consent-cookie key in ``instance/``);
``setup-flags`` only creates the flag and experiment where they are missing (see
:mod:`example_app.experiments`). The consent-cookie key in ``instance/cookie-key.txt`` is a dev
convenience loaded only when ``UMETRICS_COOKIE_KEY_CURRENT`` is not set: production sets the
environment (see :mod:`example_app.consent`). Likewise ``instance/write-key.txt`` holds the
browser client's ingest key (see :mod:`example_app.tracking`), ``instance/openmetrics-key.txt``
the key open-metrics' clients write through at ``/v1`` (see :mod:`example_app.openmetrics`), and
``instance/secret-key.txt`` the
``SECRET_KEY`` when ``EXAMPLE_SECRET_KEY`` is not set (see :mod:`example_app.secret_key`).
``EXAMPLE_TRUSTED_PROXIES=N`` applies ProxyFix behind N reverse proxies
(see :mod:`example_app.web_security`).
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from . import auth, consent, experiments, openmetrics, seed, tracking, views
from .analytics import SCOPE, umetrics
from .database import configure_sqlite, db, relax_sqlite_sync
from .secret_key import secret_key
from .web_security import apply_proxy_fix, protect_forms


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: config, the app's tables, umetrics on the same database, pages, CLI.

    ``test_config`` overrides every setting. Its optional ``INSTANCE_PATH`` (absolute) moves the
    instance folder, so a test's ``seed-demo`` does not overwrite ``instance/`` files; so does
    ``EXAMPLE_INSTANCE_PATH`` in the environment (``make demo-clickhouse`` keeps its own SQLite
    file, keys and credentials apart from ``make demo``'s).
    """
    instance_path = (test_config or {}).get("INSTANCE_PATH") or os.environ.get(
        "EXAMPLE_INSTANCE_PATH"
    )
    app = Flask(__name__, instance_path=instance_path)
    app.config.from_mapping(
        SQLALCHEMY_DATABASE_URI="sqlite:///" + os.path.join(app.instance_path, "example.db"),
        UMETRICS_DEFAULT_SCOPE=SCOPE,
        # The dashboard sends visitors who are not logged in to the app's own login page.
        UMETRICS_ADMIN_LOGIN_URL="/login",
    )
    if test_config is not None:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        # EXAMPLE_SECRET_KEY, else a key generated once into instance/ (never a constant).
        app.config["SECRET_KEY"] = secret_key(app.instance_path)
    apply_proxy_fix(app)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///" + app.instance_path):
        os.makedirs(app.instance_path, exist_ok=True)

    # Before umetrics.init_app, which reads the cookie keys from the environment and the
    # browser client's write key from the config.
    consent.load_cookie_key(app.instance_path)
    tracking.load_browser_key(app)
    openmetrics.configure(app)

    # The app's db first: umetrics.init_app(app, db=db) takes its engine, so the umetrics tables
    # live in the same SQLite file (created by `flask --app example_app umetrics db upgrade`).
    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            configure_sqlite(engine)
            relax_sqlite_sync(engine)
    umetrics.init_app(app, db=db)

    with app.app_context():
        db.create_all()

    auth.init_app(app)
    consent.init_app(app)
    tracking.init_app(app)
    app.register_blueprint(views.bp)
    seed.init_app(app)
    experiments.init_app(app)
    protect_forms(app)
    return app
