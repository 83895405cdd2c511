"""Schemathesis over the API's own OpenAPI schema: generated requests, valid and not, with and
without the token, never get a 5xx, and every answer matches the schema it documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine

from tests.web.test_api import AUTH, api_app, store_sample

# Whether a valid-looking request is accepted depends on the data (an unknown slug is a 404),
# so the checks are: no server error, and answers as documented.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
OPERATIONS = [
    ("GET", "/api/feeds"),
    ("POST", "/api/feeds"),
    ("GET", "/api/feeds/health"),
    ("GET", "/api/feeds/opml"),
    ("POST", "/api/feeds/opml"),
    ("GET", "/api/topics"),
    ("POST", "/api/topics"),
    ("POST", "/api/topics/validate"),
    ("POST", "/api/topics/backtest"),
    ("GET", "/api/topics/{slug}"),
    ("PATCH", "/api/topics/{slug}"),
    ("GET", "/api/subscriptions"),
    ("POST", "/api/subscriptions"),
    ("DELETE", "/api/subscriptions"),
    ("GET", "/api/articles"),
    ("GET", "/api/articles/{article_id}"),
    ("GET", "/api/reports"),
    ("GET", "/api/reports/{day}"),
    ("GET", "/api/channels"),
    ("POST", "/api/channels"),
    ("DELETE", "/api/channels/{channel_id}"),
    ("POST", "/api/channels/{channel_id}/test"),
    ("GET", "/api/review"),
    ("POST", "/api/review"),
    ("GET", "/api/review/history"),
]
HYPOTHESIS = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def load_schema(
    engine: Engine, tmp_path: Path, *, public_reads: bool = True
) -> schemathesis.BaseSchema:
    """The API's schema, served by the app on a database holding the sample rows."""
    store_sample(engine)
    app = api_app(engine, tmp_path, public_reads=public_reads)
    return schemathesis.openapi.from_asgi("/api/openapi.json", app)


def test_every_operation_is_exercised(engine: Engine, tmp_path: Path) -> None:
    schema = load_schema(engine, tmp_path)

    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    found = {(operation.method.upper(), operation.path) for operation in operations}

    assert found == set(OPERATIONS)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("headers", "public_reads"),
    [(AUTH, False), ({}, True), ({}, False)],
    ids=["token", "anonymous", "anonymous-closed-reads"],
)
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_input_makes_the_api_fail(
    engine: Engine,
    tmp_path: Path,
    method: str,
    path: str,
    headers: dict[str, str],
    public_reads: bool,
) -> None:
    operation = load_schema(engine, tmp_path, public_reads=public_reads)[path][method]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @HYPOTHESIS
    @given(case=cases)
    def check(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()
