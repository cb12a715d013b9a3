"""Corrupted sources: one clear message naming file, line and column; non-zero exit; nothing left behind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cdm_helpers import pg_tables, replace_line, small_copy
from typer.testing import CliRunner

from follicle.cdm.pg import split_url
from follicle.cli import app

runner = CliRunner()


def _drop_person(src: Path) -> str:
    (src / "PERSON.csv").unlink()
    return r"no file for table\(s\) person"


def _non_numeric_person_id(src: Path) -> str:
    replace_line(src / "DRUG_EXPOSURE.csv", 5, lambda line: re.sub(r"^(\d+),\d+,", r"\1,abc,", line))
    return r"DRUG_EXPOSURE\.csv, row 4 \(line 5\), column person_id: 'abc' is not an integer"


def _end_before_start(src: Path) -> str:
    # OBSERVATION_PERIOD.csv line 3: observation_period_id,person_id,start,end,type -> end = start - years
    replace_line(src / "OBSERVATION_PERIOD.csv", 3,
                 lambda line: ",".join(p if i != 3 else "1900-01-01" for i, p in enumerate(line.split(","))))
    return (r"OBSERVATION_PERIOD\.csv, row 2 \(line 3\), column observation_period_end_date: 1900-01-01 is before "
            r"observation_period_start_date")


def _truncated(src: Path) -> str:
    path = src / "CONDITION_OCCURRENCE.csv"
    data = path.read_bytes()
    cut = data.rfind(b"\n", 0, len(data) // 2) + 40  # 40 bytes into a row in the middle of the file
    path.write_bytes(data[:cut])
    line = data[:cut].count(b"\n") + 1
    return (rf"CONDITION_OCCURRENCE\.csv, row {line - 1} \(line {line}\): \d+ fields, expected 16 "
            r"\(truncated or badly quoted row\)")


def _unreadable(src: Path) -> str:
    (src / "DEATH.csv").write_bytes(bytes(range(256)) * 8)  # binary garbage where a CSV should be
    return r"DEATH\.csv: not a UTF-8 text file"


def _bad_date(src: Path) -> str:
    replace_line(src / "PERSON.csv", 4, lambda line: line.replace(" 00:00:00", "T25:99:00", 1))
    return r"PERSON\.csv, row 3 \(line 4\), column birth_datetime: '[^']+' is not a timestamp"


CORRUPTIONS = {
    "missing person table": _drop_person,
    "non-numeric person_id": _non_numeric_person_id,
    "end before start": _end_before_start,
    "truncated CSV": _truncated,
    "unreadable file": _unreadable,
    "bad timestamp": _bad_date,
}


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_corrupt_duckdb_load_fails_cleanly(kind, synthea_dir, tmp_path):
    src = small_copy(synthea_dir, tmp_path / "src")
    pattern = CORRUPTIONS[kind](src)
    out = tmp_path / "out"
    out.mkdir()
    db = out / "cdm.duckdb"
    result = runner.invoke(app, ["cdm", "load", str(src), "--db", str(db)])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())  # undo Rich's line wrapping
    assert re.search(pattern, message), message
    assert "Traceback" not in result.output
    assert list(out.iterdir()) == []  # no database, no temporary file, no WAL


def test_corrupt_parquet_is_named(synthea_dir, tmp_path):
    src = small_copy(synthea_dir, tmp_path / "src")
    (src / "DEATH.csv").unlink()
    (src / "death.parquet").write_bytes(b"PAR1 this is not parquet")
    result = runner.invoke(app, ["cdm", "load", str(src), "--db", str(tmp_path / "x.duckdb")])
    assert result.exit_code == 2
    assert "death.parquet: not a readable Parquet file" in " ".join(result.output.split())
    assert not (tmp_path / "x.duckdb").exists()


@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["non-numeric person_id", "end before start", "truncated CSV"])
def test_corrupt_postgres_load_leaves_no_tables(kind, synthea_dir, tmp_path, pg_url):
    import uuid

    import psycopg
    from psycopg import sql

    src = small_copy(synthea_dir, tmp_path / "src")
    pattern = CORRUPTIONS[kind](src)
    schema = f"follicle_corrupt_{uuid.uuid4().hex[:8]}"
    target = f"{pg_url.rstrip('/')}/{schema}"
    try:
        result = runner.invoke(app, ["cdm", "load", str(src), "--db", target])
        assert result.exit_code == 2, result.output
        assert re.search(pattern, " ".join(result.output.split()))
        assert pg_tables(split_url(target)[0], schema) == []
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.mark.postgres
def test_postgres_failure_inside_transaction_rolls_back(synthea_dir, tmp_path, pg_url, monkeypatch):
    """A failure after some tables were copied (here: injected on the 3rd COPY) leaves no table."""
    import uuid

    import psycopg
    from psycopg import sql

    from follicle.cdm import pg
    from follicle.cdm.load import load_cdm
    from follicle.errors import DatabaseError

    src = small_copy(synthea_dir, tmp_path / "src")
    schema = f"follicle_rollback_{uuid.uuid4().hex[:8]}"
    target = f"{pg_url.rstrip('/')}/{schema}"
    calls = {"n": 0}
    real_copy = psycopg.Cursor.copy

    def failing_copy(self, statement, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise psycopg.errors.DiskFull("injected failure")
        return real_copy(self, statement, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "copy", failing_copy)
    try:
        with pytest.raises(DatabaseError, match="nothing written"):
            load_cdm(src, target)
        assert calls["n"] == 3
        assert pg_tables(pg.split_url(target)[0], schema) == []
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def test_values_that_look_like_markup_are_printed_verbatim(synthea_dir, tmp_path):
    src = small_copy(synthea_dir, tmp_path / "src")
    replace_line(src / "PERSON.csv", 2, lambda line: re.sub(r"^\d+,", "[/x],", line))
    result = runner.invoke(app, ["cdm", "load", str(src), "--db", str(tmp_path / "x.duckdb")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "PERSON.csv, row 1 (line 2), column person_id: '[/x]' is not an integer" in " ".join(result.output.split())
