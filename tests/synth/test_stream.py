"""Streaming `follicle synth`: same seed, same data whatever the chunk size and the output (DuckDB,
Parquet loaded by `cdm load`, in memory); one chunk in memory at a time; no half-written output."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from follicle.cdm.load import load_cdm
from follicle.cli import app
from follicle.synth import simulate
from follicle.synth.build import build_world, stream_world
from follicle.synth.sinks import Sink

PERSONS, SEED = 10_000, 12  # the blocks world of conftest.py: 3 blocks of <= 4,000 persons
CLINICAL = ("person", "observation_period", "death", "visit_occurrence", "condition_occurrence", "drug_exposure",
            "measurement", "procedure_occurrence", "observation")


def frame(con: duckdb.DuckDBPyConnection, table: str) -> pd.DataFrame:
    df = con.execute(f"select * from {table}").df()
    return df.sort_values(list(df.columns)).reset_index(drop=True)


def same_tables(a, b, tables=CLINICAL + ("cdm_source", "concept")) -> None:
    with duckdb.connect(str(a), read_only=True) as ca, duckdb.connect(str(b), read_only=True) as cb:
        for t in tables:
            fa, fb = frame(ca, t), frame(cb, t)
            assert len(fa) > 0 or t in ("death", "procedure_occurrence"), t
            pd.testing.assert_frame_equal(fa, fb, obj=t)


def truth_json(truth: dict) -> str:
    return json.dumps(truth, sort_keys=True, default=str)  # NaN-safe comparison


@pytest.fixture(scope="module")
def one_chunk(blocks_config, tmp_path_factory):
    """The blocks world streamed in one chunk (all 3 blocks at once)."""
    folder = tmp_path_factory.mktemp("one_chunk")
    _, rows, truth = build_world(PERSONS, SEED, folder / "world.duckdb", config=blocks_config,
                                 chunk_persons=PERSONS, truth_path=folder / "truth.json")
    return folder / "world.duckdb", rows, truth


def test_chunk_size_does_not_change_the_tables_or_the_truth(streamed, one_chunk, tmp_path):
    assert streamed[1] == one_chunk[1]
    same_tables(streamed[0], one_chunk[0])
    assert truth_json(streamed[2]) == truth_json(one_chunk[2])
    assert len(streamed[2]["effects"]) == 40 and streamed[2]["persons"] == PERSONS


def test_parquet_loaded_equals_duckdb(blocks_config, streamed, tmp_path):
    folder = tmp_path / "world-pq"
    _, rows, _ = build_world(PERSONS, SEED, parquet=folder, config=blocks_config,
                             chunk_persons=4_000)
    assert rows == streamed[1]
    # one folder of part files per table, one part per chunk (3 chunks of one block here)
    assert sorted(p.name for p in (folder / "person.parquet").iterdir()) == [
        "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    loaded = load_cdm(folder, tmp_path / "loaded.duckdb")
    assert {t: loaded.rows[t] for t in CLINICAL} == {t: streamed[1][t] for t in CLINICAL}
    same_tables(streamed[0], tmp_path / "loaded.duckdb")


def test_in_memory_world_is_the_streamed_world(blocks_world, streamed, tmp_path):
    """`simulate` + `World.to_cdm` (the Python API) gives the tables and truth `follicle synth` streams."""
    from follicle.cdm.write import write_cdm

    write_cdm(blocks_world.to_cdm(), tmp_path / "mem.duckdb")
    same_tables(streamed[0], tmp_path / "mem.duckdb")
    assert truth_json(blocks_world.truth()) == truth_json(streamed[2])


def test_blocks_are_independent_draws_and_ids_continue(blocks_config, blocks_world, streamed):
    # the first block is the 4,000-person world of the same seed: later blocks do not change it
    first = simulate(blocks_config, persons=4_000, seed=SEED).persons
    pd.testing.assert_frame_equal(blocks_world.persons.iloc[:4_000], first)
    # ... and the other blocks are fresh draws, not copies of it
    ages = blocks_world.persons["birth_day"].to_numpy()
    assert not np.array_equal(ages[:2_000], ages[4_000:6_000])
    with duckdb.connect(str(streamed[0]), read_only=True) as con:
        for table, col in (("person", "person_id"), ("condition_occurrence", "condition_occurrence_id"),
                           ("visit_occurrence", "visit_occurrence_id"), ("measurement", "measurement_id")):
            lo, hi, n = con.execute(f"select min({col}), max({col}), count(distinct {col}) from {table}").fetchone()
            assert (lo, hi) == (1, n), table  # 1..n without gaps or repeats across blocks
        # every event's visit is a visit of the same person
        assert con.execute("""select count(*) from condition_occurrence c left join visit_occurrence v
            on v.visit_occurrence_id = c.visit_occurrence_id and v.person_id = c.person_id
            where v.person_id is null""").fetchone()[0] == 0


class Recorder(Sink):
    """Records the size of every chunk written; fails on chunk *fail_at* when given."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.rows, self.persons, self.fail_at = {}, [], fail_at

    def write(self, tables) -> None:
        if self.fail_at is not None and len(self.persons) == self.fail_at:
            raise RuntimeError("disk full")
        self.persons.append(tables["person"].num_rows if "person" in tables else 0)

    def commit(self) -> None:
        """Nothing to put in place: only the chunk sizes are kept."""

    def abort(self) -> None:
        """Nothing written to drop."""


def test_only_one_chunk_is_materialised_at_a_time(blocks_config):
    sink = Recorder()
    ticks: list[str] = []
    stream_world(blocks_config, PERSONS, SEED, sink, chunk_persons=5_000, progress=ticks.append)
    # chunks of whole blocks: 5,000 rounds up to 2 blocks of 4,000; then the vocabulary alone
    assert sink.persons == [8_000, 2_000, 0]
    assert ticks == ["persons 8,000/10,000", "persons 10,000/10,000"]


@pytest.mark.parametrize("output", ["db", "parquet"])
def test_a_failure_midway_leaves_no_output(blocks_config, tmp_path, monkeypatch, output):
    import follicle.synth.build as build

    target = tmp_path / ("w.duckdb" if output == "db" else "w-pq")
    calls = {"n": 0}
    real = build.build_tables

    def failing(block, ids):
        calls["n"] += 1
        if calls["n"] == 2:
            raise MemoryError("out of memory in block 2")
        return real(block, ids)

    monkeypatch.setattr(build, "build_tables", failing)
    kwargs = {"parquet": target} if output == "parquet" else {}
    with pytest.raises(MemoryError):
        build_world(PERSONS, 1, target if output == "db" else None, config=blocks_config,
                    chunk_persons=4_000, truth_path=tmp_path / "truth.json", **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no target, no temporary, no truth


def test_overwrite_replaces_a_parquet_folder_whole(blocks_config, tmp_path):
    target = tmp_path / "pq"
    build_world(5_000, 1, parquet=target, config=blocks_config, chunk_persons=4_000)
    assert len(list((target / "person.parquet").iterdir())) == 2
    build_world(3_000, 1, parquet=target, config=blocks_config, overwrite=True)
    parts = list((target / "person.parquet").iterdir())
    assert len(parts) == 1 and pq.read_table(parts[0]).num_rows == 3_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pq"]


def test_cli_parquet_then_cdm_load(tmp_path):
    runner = CliRunner()
    folder, db = tmp_path / "pq", tmp_path / "loaded.duckdb"
    res = runner.invoke(app, ["synth", "--persons", "1500", "--seed", "4", "--parquet", str(folder),
                              "--chunk-persons", "500", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["parquet"] == str(folder) and out["db"] is None and out["rows"]["person"] == 1500
    res = runner.invoke(app, ["cdm", "load", str(folder), "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["rows"]["person"] == 1500
    res = runner.invoke(app, ["synth", "--persons", "10", "--parquet", str(folder)])
    assert res.exit_code == 2 and "exists" in res.output


@pytest.fixture()
def pg_schema(pg_url):
    """A fresh PostgreSQL schema, dropped afterwards: ``<pg_url>/<schema>``."""
    import os
    import uuid

    import psycopg
    from psycopg import sql

    name = f"follicle_synth_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    yield f"{pg_url.rstrip('/')}/{name}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def test_streamed_into_postgres_equals_duckdb(blocks_config, streamed, pg_schema, pg_url):
    import psycopg

    _, rows, _ = build_world(PERSONS, SEED, pg_schema, config=blocks_config, chunk_persons=4_000)
    assert rows == streamed[1]
    schema = pg_schema.rsplit("/", 1)[1]
    with psycopg.connect(pg_url) as pg, duckdb.connect(str(streamed[0]), read_only=True) as duck:
        for table, cols in (("person", "person_id, year_of_birth, gender_concept_id, race_source_value"),
                            ("condition_occurrence", "condition_occurrence_id, person_id, condition_start_date, "
                                                     "visit_occurrence_id, condition_source_value")):
            got = pg.execute(f"select {cols} from {schema}.{table} order by 1").fetchall()
            want = duck.execute(f"select {cols} from {table} order by 1").fetchall()
            assert got == want, table


def test_the_truth_part_kept_across_chunks_shares_no_memory_with_its_block(blocks_config):
    """What stream_world keeps of a block after writing it is small and its own (a view of the block's
    arrays would keep the whole block alive until the end)."""
    from follicle.synth.blocks import truth_part
    from follicle.synth.world import simulate_block

    block = simulate_block(blocks_config, 4_000, SEED, 1)
    part = truth_part(block)
    assert 0 < part.n < block.n / 5
    for f in ("_p", "_d", "_t", "_cov", "_first", "_resp", "_rx", "_records", "_salt_rows", "_lab_rows"):
        for k, v in getattr(part, f).items():
            if isinstance(v, np.ndarray):
                assert v.base is None and not np.shares_memory(v, getattr(block, f)[k]), (f, k)  # not a view
                assert f not in ("_rx", "_records", "_salt_rows", "_lab_rows") or v.size == 0, (f, k)
