"""Summary (aggregate only, small cells masked) and fingerprint."""

from __future__ import annotations

import json

import duckdb
import pandas as pd
from typer.testing import CliRunner

from follicle.cdm.connect import connect
from follicle.cdm.fingerprint import contents, fingerprint
from follicle.cdm.summary import summarise
from follicle.privacy import suppress_count as suppress
from follicle.cli import app

runner = CliRunner()


def _summary(db, **kw):
    con = connect(db, read_only=True)
    try:
        return summarise(con, **kw)
    finally:
        con.disconnect()


def test_gibleed_summary_agrees_with_pandas(gibleed_db, gibleed_dir):
    s = _summary(gibleed_db)
    person = pd.read_csv(gibleed_dir / "person.csv")
    op = pd.read_csv(gibleed_dir / "observation_period.csv",
                     parse_dates=["observation_period_start_date", "observation_period_end_date"])
    op = op[op.person_id.isin(person.person_id)]
    assert s.persons == len(person) == 2694  # README
    days = (op.observation_period_end_date - op.observation_period_start_date).dt.days + 1
    assert s.person_years == round(days.sum() / 365.25, 1)
    assert s.observation_start == op.observation_period_start_date.min().date()
    assert s.observation_end == op.observation_period_end_date.max().date()
    assert s.sex == {"FEMALE": int((person.gender_concept_id == 8532).sum()),
                     "MALE": int((person.gender_concept_id == 8507).sum())}
    decades = (person.year_of_birth // 10 * 10).value_counts()
    assert s.year_of_birth == {f"{d}-{d + 9}": suppress(int(n)) for d, n in sorted(decades.items())}
    cond = pd.read_csv(gibleed_dir / "condition_occurrence.csv", usecols=["person_id", "condition_concept_id"])
    counts = cond.groupby("condition_concept_id").agg(records=("person_id", "size"), persons=("person_id", "nunique"))
    counts = counts.reset_index().sort_values(["records", "condition_concept_id"], ascending=[False, True]).head(10)
    got = [(c.concept_id, c.records, c.persons) for c in s.top["conditions"]]
    assert got == [(int(r.condition_concept_id), int(r.records), int(r.persons)) for r in counts.itertuples()]
    assert s.top["conditions"][0].concept_name == "Viral sinusitis"


def test_small_cells_are_masked(synthea_load):
    s = _summary(synthea_load[0], min_cell_count=10)
    assert s.persons == 28
    values = list(s.year_of_birth.values())
    values += [v for rows in s.top.values() for c in rows for v in (c.records, c.persons)]
    assert "<10" in values
    assert all(v == "<10" or v == 0 or v >= 10 for v in values)
    s5 = _summary(synthea_load[0], min_cell_count=30)
    assert s5.persons == "<30"


def test_suppress_rule():
    assert [suppress(n) for n in (0, 1, 9, 10, 11)] == [0, "<10", "<10", 10, 11]


def test_fingerprint_is_stable_and_detects_change(synthea_load, tmp_path):
    db = synthea_load[0]
    first = fingerprint(db)
    assert fingerprint(db) == first and len(first) == 64
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(db.read_bytes())
    assert fingerprint(copy) == first  # contents, not file identity
    with duckdb.connect(str(copy)) as con:
        con.execute("DELETE FROM measurement WHERE measurement_id = (SELECT max(measurement_id) FROM measurement)")
    assert fingerprint(copy) != first
    data = contents(connect(db, read_only=True))
    assert len(data["tables"]["person"]) == 32 and data["cdm_source"]


def test_fingerprint_sees_a_changed_value_with_the_same_counts_and_dates(synthea_load, tmp_path):
    """Issue 14: a fingerprint of row counts and latest dates missed in-place edits."""
    copy = tmp_path / "edited.duckdb"
    copy.write_bytes(synthea_load[0].read_bytes())
    first = fingerprint(copy)
    with duckdb.connect(str(copy)) as con:
        con.execute("UPDATE person SET gender_concept_id = 8507")
    assert fingerprint(copy) != first


def test_cli_summary_json(gibleed_db):
    result = runner.invoke(app, ["cdm", "summary", "--db", str(gibleed_db), "--json", "--top", "3"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["persons"] == 2694 and len(payload["top"]["drugs"]) == 3
