"""Schemathesis over the served OpenAPI document: no 500s, no undocumented answers.

Every operation of ``{prefix}/api/openapi.json`` is called with generated input (valid and
invalid by the document), once with a ``metrics.manage`` key (which also grants ingest) and once
without credentials; every answer must be a documented status code with the documented content
type whose body matches the documented schema. The suite runs a few examples per operation;
``UMETRICS_FUZZ_EXAMPLES=200`` (``make fuzz``) runs the long, randomized version.
"""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from flask_umetrics import create_api_key
from flask_umetrics.api.routes import router

from .conftest import AppFactory

SCOPE = "fuzz"
API = "/umetrics/api"
EXAMPLES = int(os.environ.get("UMETRICS_FUZZ_EXAMPLES", "5"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
#: (method, OpenAPI path) of every documented operation, from the same specs the document uses.
OPERATIONS = sorted(
    (method, API + re.sub(r"<(?:[a-z]+:)?(\w+)>", r"{\1}", spec.rule))
    for spec in router.specs
    for method in spec.methods
)


def _pin_scope(case: Any) -> None:
    """Keep a generated request on the key's scope, so it reaches past authorization."""
    if isinstance(case.query, dict) and "scope_id" in case.query:
        case.query["scope_id"] = SCOPE
    if isinstance(case.body, dict) and "scope_id" in case.body:
        case.body["scope_id"] = SCOPE


def fuzz(app: Flask, method: str, path: str, headers: dict[str, str] | None) -> None:
    """Run the checks on ``EXAMPLES`` generated requests to one operation (valid and invalid)."""
    schema = schemathesis.openapi.from_wsgi(f"{API}/openapi.json", app)
    operation = schema[path][method]
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        derandomize=EXAMPLES <= 20,  # the suite's bounded run is reproducible
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        if headers is not None:
            _pin_scope(case)
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """SQLite only, to keep the suite fast: the PostgreSQL-only failure mode (NUL in text) is
    covered on both databases by tests/test_security_input.py."""
    return str(request.param)


@pytest.fixture
def fuzz_app(make_app: AppFactory) -> Flask:
    return make_app(UMETRICS_DEFAULT_SCOPE=SCOPE)


def test_every_documented_operation_is_fuzzed(fuzz_app: Flask) -> None:
    document = fuzz_app.test_client().get(f"{API}/openapi.json").json
    served = sorted(
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    )
    assert served == OPERATIONS


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[" ".join(o) for o in OPERATIONS])
def test_fuzz_with_a_manage_key(fuzz_app: Flask, method: str, path: str) -> None:
    with fuzz_app.app_context():
        key = create_api_key(SCOPE, "metrics.manage")
    fuzz(fuzz_app, method, path, {"Authorization": f"Bearer {key}", "X-UMetrics-Key": key})


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[" ".join(o) for o in OPERATIONS])
def test_fuzz_without_credentials(fuzz_app: Flask, method: str, path: str) -> None:
    fuzz(fuzz_app, method, path, None)
