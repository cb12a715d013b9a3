"""CSV registry readers: every bad cell is reported with file, row (spreadsheet numbering) and column."""

import pandas as pd
import pytest

from follicle.errors import InputError
from follicle.registry import read_events, read_exposure, read_patients, read_visits


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_visits_regions_give_salt(tmp_path):
    p = write(tmp_path, "visits.csv",
              "patient_id,date,top,back,left,right,on_drug\nA,2023-01-01,100,100,100,50,yes\nA,2023-06-01,10,0,0,0,1\n")
    v = read_visits(p)
    assert v.index.tolist() == [2, 3]
    assert v["salt"].tolist() == pytest.approx([91.0, 4.0])
    assert v["on_drug"].tolist() == [1, 1]


def test_region_120_named(tmp_path):
    p = write(tmp_path, "visits.csv",
              "patient_id,date,top,back,left,right,on_drug\nA,2023-01-01,100,120,100,50,1\n")
    with pytest.raises(InputError, match=r"visits.csv: row 2, column 'back': must be in \[0, 100\]; got 120"):
        read_visits(p)


def test_all_problems_reported_at_once(tmp_path):
    p = write(tmp_path, "visits.csv",
              "patient_id,date,salt,on_drug\nA,2023-13-01,50,1\n,2023-01-01,abc,maybe\n")
    with pytest.raises(InputError) as err:
        read_visits(p)
    text = err.value.render()
    assert "4 problems" in text
    for part in ("row 2, column 'date'", "row 3, column 'patient_id'", "row 3, column 'salt'", "row 3, column 'on_drug'"):
        assert part in text


def test_dates_out_of_order_named(tmp_path):
    p = write(tmp_path, "visits.csv",
              "patient_id,date,salt,on_drug\nA,2023-01-01,50,1\nB,2023-01-01,60,1\nA,2022-12-01,40,1\n")
    with pytest.raises(InputError, match="row 4, column 'date'.*patient 'A'.*out of order"):
        read_visits(p)


def test_missing_column_and_partial_regions(tmp_path):
    p = write(tmp_path, "visits.csv", "patient_id,date,salt\nA,2023-01-01,50\n")
    with pytest.raises(InputError, match="visits.csv: missing column.*'on_drug'"):
        read_visits(p)
    p = write(tmp_path, "v2.csv", "patient_id,date,top,back,left,right,on_drug\nA,2023-01-01,10,,5,5,1\n")
    with pytest.raises(InputError, match="row 2, column 'back'.*all four"):
        read_visits(p)
    p = write(tmp_path, "v3.csv", "patient_id,date,top,back,left,right,salt,on_drug\nA,2023-01-01,10,10,10,10,50,1\n")
    with pytest.raises(InputError, match="row 2, column 'salt'.*disagrees"):
        read_visits(p)


def test_patients(tmp_path):
    p = write(tmp_path, "patients.csv", "patient_id,age,sex,y\nA,40,F,1\nB,,M,0\n")
    d = read_patients(p, required=["y"])
    assert d["age"].dtype.kind == "f" and pd.isna(d.loc[3, "age"])
    assert d["sex"].tolist() == ["F", "M"]
    p = write(tmp_path, "dup.csv", "patient_id,y\nA,1\nA,0\n")
    with pytest.raises(InputError, match="row 3, column 'patient_id': duplicate"):
        read_patients(p)
    with pytest.raises(InputError, match="missing column.*'z'"):
        read_patients(p, required=["z"])
    with pytest.raises(InputError, match="not found"):
        read_patients(tmp_path / "nope.csv")


def test_events_and_exposure(tmp_path):
    agg, is_agg = read_events(write(tmp_path, "e.csv", "event_type,events,person_years\nzoster,34,1868\n"))
    assert is_agg and agg.loc[2, "events"] == 34
    with pytest.raises(InputError, match="row 2, column 'events': must be a whole number"):
        read_events(write(tmp_path, "e2.csv", "event_type,events,person_years\nzoster,3.5,10\n"))
    ev, is_agg = read_events(write(tmp_path, "e3.csv", "patient_id,event_type,date\nA,zoster,2023-01-01\n"))
    assert not is_agg and ev["date"].iloc[0] == pd.Timestamp("2023-01-01")
    with pytest.raises(InputError, match="row 3, column 'end_date'.*out of order"):
        read_exposure(write(tmp_path, "x.csv", "patient_id,start_date,end_date\nA,2023-01-01,2023-02-01\nB,2023-05-01,2023-02-01\n"))
