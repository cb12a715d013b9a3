"""Fixtures of the web app tests: a 10k-person synthetic world (built once), an app over it."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from follicle.web.app import create_app
from follicle.web.settings import WebSettings

WORLD_PERSONS = 10_000


@pytest.fixture(scope="session")
def world_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic AA world of 10,000 persons (seed 1) in DuckDB, shared by the web tests."""
    from follicle.synth.build import build_world

    folder = tmp_path_factory.mktemp("web-world")
    db = folder / "world.duckdb"
    build_world(WORLD_PERSONS, 1, db, truth_path=folder / "truth.json", overwrite=True)
    return db


def make_client(db: Path, runs: Path, **settings: object) -> TestClient:
    app = create_app(WebSettings(db=str(db), runs=runs, **settings))  # type: ignore[arg-type]
    client = TestClient(app)
    client.get("/")  # receive the CSRF cookie
    return client


def csrf(client: TestClient) -> dict[str, str]:
    return {"X-CSRF-Token": client.cookies.get("follicle_csrf") or ""}


@pytest.fixture()
def client(world_db: Path, tmp_path: Path) -> TestClient:
    c = make_client(world_db, tmp_path / "runs")
    yield c
    c.app.state.runs.shutdown()
