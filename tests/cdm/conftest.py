"""Session fixtures: GiBleed and Synthea27Nj loaded once, and a private PostgreSQL schema."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from follicle.cdm.load import LoadResult, load_cdm


@pytest.fixture(scope="session")
def gibleed_load(gibleed_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LoadResult]:
    """GiBleed loaded into a DuckDB file once per session (about 3 s)."""
    db = tmp_path_factory.mktemp("gibleed") / "gibleed.duckdb"
    return db, load_cdm(gibleed_dir, db)


@pytest.fixture(scope="session")
def gibleed_db(gibleed_load: tuple[Path, LoadResult]) -> Path:
    return gibleed_load[0]


@pytest.fixture(scope="session")
def synthea_load(synthea_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LoadResult]:
    db = tmp_path_factory.mktemp("synthea") / "synthea.duckdb"
    return db, load_cdm(synthea_dir, db)


@pytest.fixture(scope="session")
def pg_schema_url(pg_url: str):
    """A fresh schema in the test database, dropped at the end of the session: ``<pg_url>/<schema>``."""
    import psycopg
    from psycopg import sql

    name = f"follicle_cdm_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    yield f"{pg_url.rstrip('/')}/{name}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def gibleed_pg(gibleed_dir: Path, pg_schema_url: str) -> tuple[str, LoadResult]:
    """GiBleed loaded into the session's PostgreSQL schema once."""
    return pg_schema_url, load_cdm(gibleed_dir, pg_schema_url)
