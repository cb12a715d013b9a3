"""Local Spark as a CDM target: atomic load, a quiet CLI, and the Spark pitfalls, each checked
against DuckDB (and PostgreSQL where the engines differ by default).

Pitfalls: the session time zone; DATE vs TIMESTAMP from day arithmetic; temporary tables that
must outlive a query (Spark has none; its temporary views die with their session); NULLs in
in-memory tables and their ordering; counts over no rows; day differences beyond int32.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import ibis
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from follicle.cdm.connect import connect
from follicle.cdm.write import write_cdm
from follicle.cli import app
from follicle.errors import DatabaseError
from follicle.study.atlas.domains import dateadd

pytestmark = pytest.mark.spark
REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

PERSON = pd.DataFrame({"person_id": [1, 2, 3], "gender_concept_id": [8507, 8532, 8532],
                       "year_of_birth": [1980, 1990, 2000], "race_concept_id": 0, "ethnicity_concept_id": 0,
                       "birth_datetime": pd.to_datetime(["1980-01-01 00:30:00", "1990-06-30 23:59:59", None])})
PERIOD = pd.DataFrame({"observation_period_id": [1, 2, 3], "person_id": [1, 2, 3], "period_type_concept_id": 0,
                       "observation_period_start_date": pd.to_datetime(["2001-01-01", "1900-01-01", "2010-03-01"]).date,
                       "observation_period_end_date": pd.to_datetime(["2020-12-31", "2099-12-31", "2010-03-01"]).date})
EVENTS = pa.table({"k": pa.array([2, None, 1, None, 3], pa.int64()), "i": [1, 2, 3, 4, 5],
                   "d": pa.array([dt.date(2000, 1, 2), None, dt.date(1, 1, 1), None, dt.date(9999, 12, 31)])})


@pytest.fixture(scope="module")
def tiny(spark_home: Path) -> str:
    target = f"spark://{spark_home / 'tiny'}"
    write_cdm({"person": PERSON, "observation_period": PERIOD}, target)
    return target


@pytest.fixture(scope="module")
def engines(tiny: str):
    """A DuckDB and a Spark connection (PostgreSQL is added by the tests that compare it)."""
    duck, spark = ibis.duckdb.connect(), connect(tiny)
    yield {"duckdb": duck, "spark": spark}
    spark.disconnect()


def test_target_layout_and_errors(tiny: str, spark_home: Path):
    folder = spark_home / "tiny"
    tables = sorted(p.name for p in (folder / "warehouse").iterdir())
    assert "person" in tables and "drug_exposure" in tables  # every CDM table, empty ones too
    assert not [p for p in folder.iterdir() if p.name != "warehouse"]  # no metastore, derby.log or temporaries
    with pytest.raises(DatabaseError, match="already holds a CDM"):
        write_cdm({"person": PERSON}, tiny)


def test_what_spark_targets_refuse_is_named(world_folder: Path, tmp_path: Path):
    """Needs no Java: each refusal comes before Spark starts."""
    from follicle.cdm.load import load_cdm
    from follicle.cdm.vocabulary import load_vocabulary

    with pytest.raises(DatabaseError, match="three slashes"):
        connect("spark://relative/dir")
    with pytest.raises(DatabaseError, match="Spark Connect is not supported"):
        load_cdm(world_folder, "sc://127.0.0.1:15002")
    with pytest.raises(DatabaseError, match="vocab load into Spark is not supported"):
        load_vocabulary(tmp_path, f"spark://{tmp_path}")


def test_time_zone_is_utc_and_timestamps_round_trip(engines, tiny: str):
    spark = engines["spark"]
    assert spark._session.conf.get("spark.sql.session.timeZone") == "UTC"
    got = spark.table("person").order_by("person_id").execute()
    assert got.birth_datetime.tolist()[:2] == PERSON.birth_datetime.tolist()[:2]  # not shifted by a zone
    assert got.birth_datetime.isna().tolist() == [False, False, True]
    dates = spark.table("observation_period").order_by("person_id").observation_period_start_date.execute()
    assert [d.date() if hasattr(d, "date") else d for d in dates] == list(PERIOD.observation_period_start_date)


def test_day_arithmetic_gives_dates_and_int64_days(engines):
    """date - days is a DATE (a TIMESTAMP on some engines unless cast back), and day differences
    across 0001-9999 (3.65 million days) come back whole, as int64, on every engine."""
    out = {}
    for name, con in engines.items():
        t = ibis.memtable(EVENTS)
        t = t.filter(t.d.notnull())
        expr = t.select("i", plus=dateadd(ibis.date("2000-03-01"), -t.i),
                        days=ibis.date("9999-12-31").delta(t.d, unit="day").cast("int64"))
        assert expr.plus.type().is_date()
        out[name] = con.execute(expr.order_by("i"))
    for frame in out.values():
        assert frame.days.tolist() == [2921938, 3652058, 0]  # Python: (date(9999, 12, 31) - date(2000, 1, 2)).days, ...
        assert frame.days.dtype == "int64"
    pd.testing.assert_frame_equal(out["spark"], out["duckdb"])


def test_in_memory_nulls_and_null_ordering(engines, pg_url):
    """NULLs of an in-memory table stay NULL (Ibis 12 lost them through pandas on Spark) and sort
    where Ibis says (last, unless nulls_first) though each engine's default differs."""
    cons = {**engines, "postgres": ibis.connect(pg_url)}
    try:
        orders = {}
        for name, con in cons.items():
            t = ibis.memtable(EVENTS)
            orders[name] = [con.execute(t.order_by([o, "i"])).i.tolist()
                            for o in ("k", ibis.desc("k"), ibis.asc("k", nulls_first=True), ibis.desc("d"))]
            assert con.execute(t.k.count()) == 3
    finally:
        cons["postgres"].disconnect()
    assert orders["duckdb"] == [[3, 1, 5, 2, 4], [5, 1, 3, 2, 4], [2, 4, 3, 1, 5], [5, 1, 3, 2, 4]]
    assert orders["spark"] == orders["postgres"] == orders["duckdb"]


def test_conditional_count_of_no_rows_is_zero(engines):
    for con in engines.values():
        t = ibis.memtable(EVENTS).filter(ibis._.i > 99)
        row = con.execute(t.aggregate(n=t.count(), bad=t.count(where=t.k > 1))).iloc[0]
        assert (int(row.n), int(row.bad)) == (0, 0)


def test_cached_step_is_a_table_that_outlives_the_query_and_is_dropped(tiny: str, spark_home: Path):
    """A study's cached steps are real tables (Spark has no temporary tables; a temporary view
    would be recomputed at each use and dies with its session) in the process's scratch database,
    not the CDM's folder: readable from another connection, gone once dropped."""
    con, other = connect(tiny), connect(tiny)
    try:
        name = ibis.util.gen_name("follicle_step")
        t = con.create_table(name, con.table("person").select("person_id"), temp=True)
        scratch = con.scratch_database
        assert t.get_name() == f"{scratch}.{name}"
        assert [x.isTemporary for x in other._session.catalog.listTables(scratch) if x.name == name] == [False]
        assert other.table(name, database=scratch).count().execute() == 3
        assert not (spark_home / "tiny" / "warehouse" / name).exists()
        con.drop_table(name, force=True)
        assert name not in other.list_tables(database=scratch)
    finally:
        con.disconnect()
        other.disconnect()


def test_failed_load_keeps_previous_cdm(tiny: str, spark_home: Path, monkeypatch, tmp_path):
    """A load that fails mid-way (here: the fourth table cannot be written) leaves the previous
    CDM as it was and no temporary folder."""
    import follicle.cdm.spark as spark_mod

    before = _files(spark_home / "tiny")
    calls = {"n": 0}
    real = spark_mod._sql_path

    def failing(path):
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError("disk full (simulated)")
        return real(path)

    monkeypatch.setattr(spark_mod, "_sql_path", failing)
    bigger = pd.concat([PERSON, PERSON.assign(person_id=PERSON.person_id + 10)])
    with pytest.raises(DatabaseError, match="previous CDM kept"):
        write_cdm({"person": bigger}, tiny, overwrite=True)
    assert calls["n"] == 4
    monkeypatch.undo()
    assert _files(spark_home / "tiny") == before
    assert connect(tiny).table("person").count().execute() == 3
    assert sorted(p.name for p in (spark_home / "tiny").iterdir()) == ["warehouse"]


def test_cli_load_and_commands_leave_stdout_and_cwd_clean(world_folder: Path, spark_home: Path, monkeypatch, tmp_path):
    """docs/scale.md's commands (``cdm load``, ``cdm summary``) on Spark: stdout is only the JSON
    document, and nothing (spark-warehouse, metastore_db, derby.log) lands in the working folder."""
    monkeypatch.chdir(tmp_path)
    block = (REPO / "docs" / "scale.md").read_text().split("```bash\n", 1)[1].split("```", 1)[0]
    folder = spark_home / "cli"
    commands = [line.split("#")[0].replace("omop-export/", str(world_folder)).replace("/data/cdm-spark", str(folder))
                .split()[1:] for line in block.strip().splitlines()]
    assert [c[:2] for c in commands] == [["cdm", "load"], ["cdm", "summary"]]
    outputs = []
    for args in commands:
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        outputs.append(json.loads(result.stdout))
    assert outputs[0]["rows"]["person"] == 3
    assert outputs[1]["persons"] == "<10"  # three persons: a small count, suppressed
    again = runner.invoke(app, commands[0])
    assert again.exit_code != 0 and "--overwrite" in again.stdout
    assert os.listdir(tmp_path) == []


@pytest.fixture
def world_folder(tmp_path: Path) -> Path:
    folder = tmp_path.parent / f"{tmp_path.name}-csv"
    folder.mkdir()
    PERSON.to_csv(folder / "person.csv", index=False)
    PERIOD.to_csv(folder / "OBSERVATION_PERIOD.csv", index=False)
    return folder


def _files(folder: Path) -> dict[str, str]:
    """Every file under *folder* with the SHA-256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}
