"""Fixtures of the vocabulary tests: small in-memory CDMs built from data frames."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import ibis
import pandas as pd
import pytest


def _make(tables: dict[str, pd.DataFrame]):
    con = ibis.duckdb.connect()
    for name, frame in tables.items():
        con.con.register(f"_src_{name}", frame)
        con.con.execute(f"CREATE TABLE {name} AS SELECT * FROM _src_{name}")
        con.con.unregister(f"_src_{name}")
    return con


@pytest.fixture
def make_db() -> Callable[[dict[str, pd.DataFrame]], object]:
    """Build an Ibis DuckDB connection holding the given tables."""
    return _make


@pytest.fixture(scope="session")
def synthea_vocab(synthea_dir: Path):
    """Synthea27Nj's vocabulary tables (concept_ancestor is empty there) in an in-memory DuckDB."""
    con = ibis.duckdb.connect()
    for name in ("CONCEPT", "CONCEPT_RELATIONSHIP", "CONCEPT_ANCESTOR"):
        path = synthea_dir / f"{name}.csv"
        con.con.execute(
            f"CREATE TABLE {name.lower()} AS SELECT * FROM read_csv(?, header=true, all_varchar=true)", [str(path)]
        )
    for table, cols in {"concept": ["concept_id"], "concept_relationship": ["concept_id_1", "concept_id_2"]}.items():
        for col in cols:
            con.con.execute(f"ALTER TABLE {table} ALTER {col} TYPE BIGINT")
    con.con.execute("CREATE OR REPLACE TABLE concept_ancestor (ancestor_concept_id BIGINT, descendant_concept_id BIGINT,"
                    " min_levels_of_separation INT, max_levels_of_separation INT)")
    return con


__all__ = ["duckdb"]
