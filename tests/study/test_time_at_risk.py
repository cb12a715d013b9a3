"""Time at risk as CohortMethod and ATLAS state it, on the worked example of docs/time-at-risk.md.

A tiny CDM holds the example's people. The study engine's time at risk (anchors, exposure eras
with persistence window and surveillance days, censoring at observation end, min_days_at_risk)
and the pipeline's survival times are compared with an independent transcription of
CohortMethod's ``createStudyPopulation`` arithmetic (OHDSI/CohortMethod R/StudyPopulation.R:
riskStart/riskEnd from the anchors, riskEnd capped at daysToObsEnd, rows with
riskEnd - riskStart < minDaysAtRisk removed, timeAtRisk = riskEnd - riskStart + 1, survivalTime =
daysToEvent - riskStart + 1) and of ATLAS's custom era (OHDSI/circe-be customEraStrategy.sql:
exposures chained while the next starts within gapDays of the latest end, era end + offset). The
doc's table is read and checked row by row, so the doc cannot drift from the code.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb
import ibis
import numpy as np
import pandas as pd
import pytest

from follicle.cdm import schema
from follicle.run.estimate import survival_days
from follicle.study.population import build_population
from follicle.study.spec import parse_spec

DOC = Path(__file__).resolve().parents[2] / "docs" / "time-at-risk.md"
DRUG_A, DRUG_B, BLEED = 1118084, 1124300, 192671
D = dt.date.fromisoformat

#: person -> (drug, exposures (start, end), observation end, outcome dates); everyone is observed from 2015
PEOPLE = {
    1: (DRUG_A, [("2020-01-01", "2020-01-30"), ("2020-02-15", "2020-03-15")], "2021-12-31", ["2020-02-01"]),
    2: (DRUG_A, [("2020-01-01", "2020-01-10"), ("2020-03-01", "2020-03-30")], "2021-12-31", []),
    3: (DRUG_A, [("2020-05-05", "2020-05-05")], "2021-12-31", ["2020-05-05"]),
    4: (DRUG_A, [("2020-06-01", "2020-06-01")], "2020-06-01", []),
    5: (DRUG_A, [("2020-01-01", "2020-01-31")], "2021-12-31", ["2019-06-01", "2020-01-10"]),
    6: (DRUG_A, [("2020-01-01", "2020-03-01")], "2020-02-01", []),
    7: (DRUG_B, [("2020-01-01", "2020-01-01"), ("2020-01-20", "2020-01-20")], "2021-12-31", ["2020-01-25"]),
}
GAP, SURVEILLANCE, MIN_DAYS = 30, 7, 1


def spec(start_anchor: str = "cohort_start", end_anchor: str = "cohort_end", end_offset: int = 0):
    cohort = {"entry": {"concept_set": "a"}, "exposure_gap_days": GAP, "surveillance_days": SURVEILLANCE}
    return parse_spec({
        "name": "tar_example",
        "concept_sets": {"a": {"domain": "drug", "include": [f"OMOP:{DRUG_A}"]},
                         "b": {"domain": "drug", "include": [f"OMOP:{DRUG_B}"]},
                         "bleed": {"domain": "condition", "include": [f"OMOP:{BLEED}"]}},
        "cohorts": {"a": cohort, "b": {**cohort, "entry": {"concept_set": "b"}}},
        "outcomes": {"bleed": {"concept_set": "bleed"}},
        "time_at_risk": {"start_offset": 0, "start_anchor": start_anchor, "end_offset": end_offset,
                         "end_anchor": end_anchor, "min_days_at_risk": MIN_DAYS},
        "comparisons": {"a_vs_b": {"target": "a", "comparator": "b", "outcomes": ["bleed"]}},
        "analysis": {"adjustments": [{"kind": "crude", "name": "crude"}]},
    })


@pytest.fixture(scope="module")
def cdm(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tar") / "cdm.duckdb"
    con = duckdb.connect(str(path))
    for stmt in schema.create_statements("5.4", "duckdb"):
        con.execute(stmt)
    drug_id = cond_id = 0
    for pid, (drug, exposures, obs_end, outcomes) in PEOPLE.items():
        con.execute("INSERT INTO person (person_id, gender_concept_id, year_of_birth, race_concept_id, ethnicity_concept_id)"
                    " VALUES (?, 8532, 1960, 0, 0)", [pid])
        con.execute("INSERT INTO observation_period VALUES (?, ?, DATE '2015-01-01', ?, 32880)", [pid, pid, obs_end])
        for start, end in exposures:
            drug_id += 1
            con.execute("INSERT INTO drug_exposure (drug_exposure_id, person_id, drug_concept_id, drug_exposure_start_date,"
                        " drug_exposure_end_date, drug_type_concept_id) VALUES (?, ?, ?, ?, ?, 32838)",
                        [drug_id, pid, drug, start, end])
        for day in outcomes:
            cond_id += 1
            con.execute("INSERT INTO condition_occurrence (condition_occurrence_id, person_id, condition_concept_id,"
                        " condition_start_date, condition_type_concept_id) VALUES (?, ?, ?, ?, 32817)",
                        [cond_id, pid, BLEED, day])
    con.close()
    return path


def cohort_method_reference(start_anchor: str, end_anchor: str, end_offset: int) -> pd.DataFrame:
    """CohortMethod's createStudyPopulation (and ATLAS's custom era for the cohort end), by hand."""
    rows = []
    for pid, (_, exposures, obs_end, outcomes) in PEOPLE.items():
        spans = sorted((D(s), D(e)) for s, e in exposures)
        index = spans[0][0]
        era_end = spans[0][1]
        for start, end in spans[1:]:  # chained while the next starts within GAP days of the latest end
            if start <= era_end + dt.timedelta(days=GAP):
                era_end = max(era_end, end)
            else:
                break
        cohort_end = era_end + dt.timedelta(days=SURVEILLANCE)
        days_to_cohort_end = (cohort_end - index).days
        days_to_obs_end = (D(obs_end) - index).days
        risk_start = 0 + (days_to_cohort_end if start_anchor == "cohort_end" else 0)
        risk_end = end_offset + (days_to_cohort_end if end_anchor == "cohort_end" else 0)
        risk_end = min(risk_end, days_to_obs_end)
        if risk_end - risk_start < MIN_DAYS:
            rows.append({"person_id": pid, "kept": False})
            continue
        to_event = sorted((D(o) - index).days for o in outcomes)
        prior = any(d < risk_start for d in to_event)  # removeSubjectsWithPriorOutcome, lookback 99999
        in_window = [d for d in to_event if risk_start <= d <= risk_end]
        time_at_risk = risk_end - risk_start + 1
        survival = in_window[0] - risk_start + 1 if in_window else time_at_risk
        rows.append({"person_id": pid, "kept": True, "cohort_end": cohort_end, "risk_start": risk_start,
                     "risk_end": risk_end, "time_at_risk": time_at_risk, "outcome": int(bool(in_window)),
                     "survival_time": survival, "prior": prior})
    return pd.DataFrame(rows).set_index("person_id")


def ours(cdm: Path, **tar) -> pd.DataFrame:
    con = ibis.duckdb.connect(str(cdm), read_only=True)
    pop = build_population(spec(**tar), con, "a_vs_b")
    t = pop.table.set_index("person_id")
    return pd.DataFrame({
        "risk_start": t["tar_start_day"], "risk_end": t["followup_days"],
        "time_at_risk": t["followup_days"] - t["tar_start_day"] + 1,
        "outcome": t["bleed_event"], "survival_time": survival_days(t["bleed_days"], t["tar_start_day"]).astype(int),
        "prior": t["bleed_prior"].astype(bool),
    })


@pytest.mark.parametrize("tar", [
    {"start_anchor": "cohort_start", "end_anchor": "cohort_end", "end_offset": 0},  # on treatment
    {"start_anchor": "index", "end_anchor": "index", "end_offset": 99999},  # intention to treat
    {"start_anchor": "cohort_end", "end_anchor": "cohort_end", "end_offset": 60},  # after the era
])
def test_time_at_risk_equals_cohort_methods(cdm, tar):
    ref = cohort_method_reference(**tar)
    got = ours(cdm, **tar)
    assert set(got.index) == set(ref.index[ref["kept"]])  # min_days_at_risk removes the same people
    cols = ["risk_start", "risk_end", "time_at_risk", "outcome", "survival_time", "prior"]
    pd.testing.assert_frame_equal(got.loc[ref.index[ref["kept"]], cols], ref.loc[ref["kept"], cols].astype(got[cols].dtypes),
                                  check_names=False)


def _doc_table() -> pd.DataFrame:
    """The worked example's table in docs/time-at-risk.md (rows starting with '| P')."""
    text = DOC.read_text()
    lines = [ln for ln in text.splitlines() if re.match(r"^\| P\d", ln)]
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    cols = ["person", "exposures", "obs_end", "outcomes", "cohort_end", "risk_start", "risk_end", "time_at_risk",
            "survival_time", "note"]
    return pd.DataFrame(rows, columns=cols)


def test_the_docs_worked_example_is_what_the_code_computes(cdm):
    doc = _doc_table()
    assert list(doc["person"]) == [f"P{p}" for p in PEOPLE]
    ref = cohort_method_reference("cohort_start", "cohort_end", 0)
    got = ours(cdm, start_anchor="cohort_start", end_anchor="cohort_end", end_offset=0)
    for _, row in doc.iterrows():
        pid = int(row["person"][1:])
        r = ref.loc[pid]
        assert row["cohort_end"] == (str(r["cohort_end"]) if r["kept"] else row["cohort_end"]), pid
        if not r["kept"]:
            assert pid not in got.index and "removed" in row["note"], pid
            continue
        for col in ("risk_start", "risk_end", "time_at_risk", "survival_time"):
            assert int(row[col]) == int(got.loc[pid, col]) == int(r[col]), (pid, col)
        assert ("prior" in row["note"]) == bool(r["prior"]), pid


def test_one_day_exposures_on_treatment(cdm):
    """The GiBleed case: one-day exposures, on-treatment time at risk. Without surveillance days the
    window is 0 days (end - start) and CohortMethod's min_days_at_risk = 1 removes the person; with
    min_days_at_risk 0 the person has 1 day at risk (not half a day)."""
    con = ibis.duckdb.connect(str(cdm), read_only=True)
    data = spec().model_dump(mode="json")
    for c in data["cohorts"].values():
        c["surveillance_days"] = 0
    pop = build_population(parse_spec(data), con, "a_vs_b")
    assert 3 not in set(pop.table.person_id)  # 2020-05-05 only: end - start = 0 < 1
    data["time_at_risk"]["min_days_at_risk"] = 0
    pop = build_population(parse_spec(data), con, "a_vs_b")
    row = pop.table.set_index("person_id").loc[3]
    assert row["tar_start_day"] == row["followup_days"] == 0
    assert survival_days(np.array([row["bleed_days"]]), np.array([row["tar_start_day"]]))[0] == 1.0
    assert row["bleed_event"] == 1
