"""Property tests (hypothesis): any single bad cell is named by file, line and column; clean data round-trip."""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from follicle.cdm.load import load_cdm
from follicle.errors import InputError

OP_HEADER = ["observation_period_id", "person_id", "observation_period_start_date",
             "observation_period_end_date", "period_type_concept_id"]
PERSON_HEADER = ["person_id", "gender_concept_id", "year_of_birth", "birth_datetime"]

people = st.lists(
    st.tuples(st.integers(1, 2**31 - 1), st.sampled_from([8507, 8532]), st.integers(1900, 2020),
              st.dates(dt.date(1900, 1, 1), dt.date(2020, 12, 31)), st.integers(0, 5000)),
    min_size=1, max_size=30,
)


def _write(folder: Path, rows: list[tuple]) -> None:
    with (folder / "PERSON.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(PERSON_HEADER)
        for pid, sex, yob, birth, _ in rows:
            w.writerow([pid, sex, yob, f"{birth} 00:00:00"])
    with (folder / "observation_period.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(OP_HEADER)
        for i, (pid, _, _, birth, length) in enumerate(rows, start=1):
            w.writerow([i, pid, birth, birth + dt.timedelta(days=length), 32817])


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=people)
def test_clean_data_round_trips(rows):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _write(folder, rows)
        result = load_cdm(folder, folder / "cdm.duckdb")
        assert result.rows["person"] == result.rows["observation_period"] == len(rows)
        with duckdb.connect(str(folder / "cdm.duckdb"), read_only=True) as con:
            got = con.execute("SELECT sum(person_id::BIGINT), sum(year_of_birth), min(birth_datetime)::DATE, "
                              "sum(observation_period_end_date - observation_period_start_date) "
                              "FROM person JOIN (SELECT * FROM observation_period) USING (person_id)").fetchone()
    if len({r[0] for r in rows}) == len(rows):  # the join duplicates rows when person ids repeat
        assert got == (sum(r[0] for r in rows), sum(r[2] for r in rows), min(r[3] for r in rows),
                       sum(r[4] for r in rows))


@settings(max_examples=10, deadline=None)
@given(rows=people, data=st.data(), junk=st.sampled_from(["abc", "1e", "12x", "--1", "2020-02-30", "99999999999"]))
def test_one_bad_cell_is_named(rows, data, junk):
    line = data.draw(st.integers(2, len(rows) + 1), label="line")
    col = data.draw(st.sampled_from(["person_id", "gender_concept_id", "year_of_birth", "birth_datetime"]))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _write(folder, rows)
        path = folder / "PERSON.csv"
        lines = path.read_text().splitlines()
        cells = lines[line - 1].split(",")
        cells[PERSON_HEADER.index(col)] = junk
        lines[line - 1] = ",".join(cells)
        path.write_text("\n".join(lines) + "\n")
        with pytest.raises(InputError) as info:
            load_cdm(folder, folder / "cdm.duckdb")
        assert f"PERSON.csv, row {line - 1} (line {line}), column {col}: '{junk}'" in info.value.render()
        assert sorted(p.name for p in folder.iterdir()) == ["PERSON.csv", "observation_period.csv"]
