"""The extension itself: init_app rules, several apps per process, the host's Flask-SQLAlchemy."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import inspect

from flask_umetrics import (
    ConfigurationError,
    UMetrics,
    get_latest_stat,
    get_stat_series,
    record_stat,
)
from flask_umetrics.db import migrate
from flask_umetrics.state import current_state

from .conftest import AppFactory


def test_init_app_twice_is_a_clear_error(app: Flask) -> None:
    with pytest.raises(RuntimeError, match="already initialised on app 'test_app_0'"):
        UMetrics().init_app(app)


def test_the_extension_keeps_no_app(app: Flask) -> None:
    extension = app.extensions["umetrics"].extension
    assert not hasattr(extension, "app")


def test_several_apps_per_process_keep_their_own_data(tmp_path: Path) -> None:
    shared = UMetrics()
    apps = []
    for name in ("one", "two"):
        app = Flask(name, instance_path=str(tmp_path / name))
        app.config.update(
            UMETRICS_DATABASE_URL=f"sqlite:///{tmp_path / name}.db",
            UMETRICS_AUTO_MIGRATE=True,
            UMETRICS_URL_PREFIX=f"/{name}",
        )
        shared.init_app(app)
        apps.append(app)
    with apps[0].app_context():
        record_stat("m", 1)
    with apps[1].app_context():
        record_stat("m", 2)
        record_stat("m", 3)
    with apps[0].app_context():
        assert [r.value for r in get_stat_series("m")] == [1.0]
    with apps[1].app_context():
        assert [r.value for r in get_stat_series("m")] == [2.0, 3.0]
    assert apps[1].test_client().get("/two/api/health").status_code == 200
    assert apps[1].test_client().get("/umetrics/api/health").status_code == 404
    for app in apps:
        app.extensions["umetrics"].engine.dispose()


def test_default_database_is_sqlite_in_the_instance_folder(tmp_path: Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path / "inst"))
    app.config["UMETRICS_AUTO_MIGRATE"] = True
    UMetrics(app)
    engine = app.extensions["umetrics"].engine
    assert engine.url.database == str(tmp_path / "inst" / "umetrics.db")
    assert (tmp_path / "inst" / "umetrics.db").exists()
    engine.dispose()


def test_uses_the_hosts_flask_sqlalchemy_engine(database_url: str, tmp_path: Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url
    db = SQLAlchemy()
    db.init_app(app)
    UMetrics(app, db=db)
    with app.app_context():
        assert current_state().engine is db.engine
        assert current_state().owns_engine is False
        record_stat("m", 5)
        assert get_latest_stat("m").value == 5.0  # type: ignore[union-attr]
        tables = inspect(db.engine).get_table_names()
        assert "umetrics_stat_readings" in tables
        db.engine.dispose()


def test_a_named_bind_of_the_host_db(tmp_path: Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'main.db'}",
        SQLALCHEMY_BINDS={"analytics": f"sqlite:///{tmp_path / 'analytics.db'}"},
        UMETRICS_SQLALCHEMY_BIND="analytics",
    )
    db = SQLAlchemy()
    db.init_app(app)
    UMetrics(app, db=db)
    with app.app_context():
        assert current_state().engine is db.engines["analytics"]
        migrate.upgrade(current_state().engine)
        record_stat("m", 1)
        assert inspect(db.engines[None]).get_table_names() == []
        for engine in db.engines.values():
            engine.dispose()


def test_host_db_must_be_initialised_first(tmp_path: Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    with pytest.raises(ConfigurationError, match=r"call db\.init_app"):
        UMetrics(app, db=SQLAlchemy())
    other = Flask(__name__, instance_path=str(tmp_path))
    other.config.update(SQLALCHEMY_DATABASE_URI="sqlite://", UMETRICS_SQLALCHEMY_BIND="nope")
    db = SQLAlchemy()
    db.init_app(other)
    with pytest.raises(ConfigurationError, match="UMETRICS_SQLALCHEMY_BIND"):
        UMetrics(other, db=db)


def test_module_functions_need_an_app_context(make_app: AppFactory) -> None:
    with pytest.raises(RuntimeError, match="needs an application context"):
        record_stat("m", 1)
    bare = Flask("bare")
    with bare.app_context(), pytest.raises(RuntimeError, match="not initialised on app 'bare'"):
        record_stat("m", 1)


def test_in_process_scheduler_starts_on_first_request(make_app: AppFactory) -> None:
    extension = UMetrics()
    extension.authorizer(lambda permission, scope: True)
    app = make_app(extension, UMETRICS_SCHEDULER="inprocess")
    state = app.extensions["umetrics"]
    assert state.scheduler is None
    app.test_client().get("/umetrics/api/stats")
    runner = state.scheduler
    assert runner is not None and [job.key for job in runner.jobs] == ["snapshot:default", "prune"]
    app.test_client().get("/umetrics/api/stats")
    assert state.scheduler is runner  # one per process
