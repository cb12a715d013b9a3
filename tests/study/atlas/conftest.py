"""Fixtures of the ATLAS (Circe) tests: GiBleed with every table a Circe definition may read (as
DuckDB and as a PostgreSQL schema), the definitions with their sources, and the circepy oracle."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from atlas_defs import CIRCE_TABLES
from cdmdata import copy_to_postgres, drop_postgres_schema, load_csv_cdm


def _unavailable(reason: str) -> None:
    if os.environ.get("FOLLICLE_REQUIRE_ALL") == "1":
        pytest.fail(f"required in CI but unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def gibleed_full_db(gibleed_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return load_csv_cdm(gibleed_dir, tmp_path_factory.mktemp("gibleed_full") / "gibleed.duckdb", version="5.3",
                        tables=CIRCE_TABLES)


@pytest.fixture(scope="session")
def gibleed_full_pg(gibleed_full_db: Path, pg_url: str):
    con, name = copy_to_postgres(gibleed_full_db, pg_url, tables=CIRCE_TABLES)
    yield con, name
    drop_postgres_schema(con, name)


@pytest.fixture(scope="session")
def circepy() -> None:
    """ohdsi-circepy, installed by .ci/run (``pip install --no-deps``: it pins sqlglot < 30.18)."""
    try:
        import circe.api  # noqa: F401
    except ImportError:
        _unavailable("ohdsi-circepy is not installed (pip install --no-deps ohdsi-circepy==0.3.0)")
