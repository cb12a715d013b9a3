"""Fixtures of the study tests: GiBleed as a DuckDB CDM (and as a PostgreSQL schema)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cdmdata import copy_to_postgres, drop_postgres_schema, load_csv_cdm


@pytest.fixture(scope="session")
def gibleed_db(gibleed_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GiBleed (CDM 5.3) loaded into a fresh DuckDB file for this session."""
    return load_csv_cdm(gibleed_dir, tmp_path_factory.mktemp("gibleed") / "gibleed.duckdb", version="5.3")


@pytest.fixture(scope="session")
def gibleed_pg(gibleed_db: Path, pg_url: str):
    """GiBleed copied into a uniquely named PostgreSQL schema, dropped after the session."""
    con, name = copy_to_postgres(gibleed_db, pg_url)
    yield con, name
    drop_postgres_schema(con, name)
