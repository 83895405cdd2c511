"""Fixtures of the web UI tests: a signed-in site on each database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.web.site import Site, add_admin, make_app, sign_in, web_settings


@pytest.fixture
def site(engine: Engine, tmp_path: Path) -> Iterator[Site]:
    """The app with one admin, and a client signed in as them."""
    add_admin(engine)
    with TestClient(make_app(engine, web_settings(tmp_path))) as client:
        assert sign_in(client).status_code == 303
        yield Site(client, engine)
