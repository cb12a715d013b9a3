"""Dose with the renal and OAT3 step-downs, and the monitoring schedule as dated tasks."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from follicle.cds.engine import evaluate
from follicle.cds.facts import HistoryEntry, LabValue
from follicle.cds.kb import default_kb
from follicle.cds.schedule import add_months, build_schedule
from cds_helpers import healthy_facts, med


def test_baricitinib_dose_and_renal_step_down():
    # medscape / drugs.com: 2 mg once daily, 4 mg allowed; eGFR 30-<60: 4->2, 2->1 ([P], US label rows cut off)
    d = evaluate(healthy_facts(), "baricitinib", region="US").dose
    assert (d.mg, d.alternative_mg, d.frequency) == (2, 4, "once daily") and d.adjustments == []
    d = evaluate(healthy_facts(egfr=LabValue(value=45, unit="mL/min/1.73m2")), "baricitinib", region="US").dose
    assert (d.mg, d.alternative_mg) == (1, 2)
    assert d.adjustments[0].status == "P"


def test_eu_step_downs_not_compounded():
    # EU SmPC 4.2: 4 mg; 2 mg with strong OAT3 inhibitors, with CrCl 30-60 and from age 75. Each step-down
    # is applied to the sourced dose and the lowest kept; the label gives no compounding, so 4 mg never
    # becomes 1 mg from two step-downs.
    probenecid = [med("probenecid", "strong_oat3_inhibitor")]
    d = evaluate(healthy_facts(), "baricitinib", region="EU").dose
    assert (d.mg, d.alternative_mg) == (4, 2)
    d = evaluate(healthy_facts(concomitant=probenecid), "baricitinib", region="EU").dose
    assert (d.mg, d.alternative_mg) == (2, 2)
    d = evaluate(healthy_facts(concomitant=probenecid, age_years=80, crcl=LabValue(value=45, unit="mL/min")), "baricitinib", region="EU").dose
    assert (d.mg, d.alternative_mg) == (2, 2) and len(d.adjustments) == 3


@pytest.mark.parametrize("drug,mg,freq", [("ritlecitinib", 50, "once daily"), ("deuruxolitinib", 8, "twice daily")])
def test_fixed_doses(drug, mg, freq):
    d = evaluate(healthy_facts(), drug, region="US").dose
    assert (d.mg, d.frequency, d.alternative_mg) == (mg, freq, None)


def test_add_months_clips_to_month_end():
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)


def test_baricitinib_schedule_dates():
    start = date(2026, 1, 31)
    s = build_schedule(default_kb(), "baricitinib", start, as_of=start, horizon_months=12, region="US")
    by_rule = {}
    for t in s.tasks:
        by_rule.setdefault(t.rule_id, []).append(t)
    # lipids about 12 weeks after starting (Lilly Medical)
    assert by_rule["baricitinib.monitor.lipids_12w"][0].due_by == start + timedelta(weeks=12)
    # repeat labs 4-12 weeks (Cotter, practice guidance)
    rep = by_rule["baricitinib.monitor.repeat_4_12w"][0]
    assert (rep.due_from, rep.due_by) == (start + timedelta(weeks=4), start + timedelta(weeks=12))
    # every 3 months (JCAD 2025) up to 12 months
    assert [t.due_by for t in by_rule["baricitinib.monitor.every_3_months"]] == [
        date(2026, 4, 30), date(2026, 7, 31), date(2026, 10, 31), date(2027, 1, 31)]
    assert all(t.basis == "practice" for t in by_rule["baricitinib.monitor.every_3_months"])
    assert by_rule["baricitinib.monitor.cbc_baseline"][0].due_by == start


def test_ritlecitinib_week4_task():
    start = date(2026, 1, 1)
    s = build_schedule(default_kb(), "ritlecitinib", start, as_of=start)
    wk4 = [t for t in s.tasks if t.rule_id == "ritlecitinib.monitor.week4"][0]
    assert wk4.due_by == date(2026, 1, 29) and wk4.analytes == ["lymphocytes", "platelets"]


def test_overdue_found_from_lab_history():
    start = date(2026, 1, 1)
    hist = [HistoryEntry(analyte=a, date=date(2025, 12, 20)) for a in ("lymphocytes", "platelets")]
    hist += [HistoryEntry(analyte="lymphocytes", date=date(2026, 1, 26))]  # week-4 ALC but no platelets
    s = build_schedule(default_kb(), "ritlecitinib", start, as_of=date(2026, 2, 15), history=hist)
    st = {t.rule_id: t for t in s.tasks if t.rule_id != "ritlecitinib.monitor.every_3_months"}
    assert st["ritlecitinib.monitor.baseline"].status == "done"
    assert st["ritlecitinib.monitor.week4"].status == "overdue"
    assert st["ritlecitinib.monitor.week4"].missing_analytes == ["platelets"]
    first3m = [t for t in s.tasks if t.rule_id == "ritlecitinib.monitor.every_3_months"][0]
    assert first3m.status == "due"
    # platelets arrive at week 5: week-4 task done late
    hist.append(HistoryEntry(analyte="platelets", date=date(2026, 2, 5)))
    s = build_schedule(default_kb(), "ritlecitinib", start, as_of=date(2026, 2, 15), history=hist)
    assert [t for t in s.tasks if t.rule_id == "ritlecitinib.monitor.week4"][0].status == "done_late"


def test_periodic_interval_without_result_is_missed_or_overdue():
    start = date(2026, 1, 1)
    hist = [HistoryEntry(analyte=a, date=date(2026, 5, 10)) for a in ("lymphocytes", "platelets")]
    s = build_schedule(default_kb(), "ritlecitinib", start, as_of=date(2026, 5, 20), history=hist)
    per = [t for t in s.tasks if t.rule_id == "ritlecitinib.monitor.every_3_months"]
    assert [t.status for t in per[:2]] == ["missed", "done"]  # month 3 interval had no result; month 6 has
    s = build_schedule(default_kb(), "ritlecitinib", start, as_of=date(2026, 5, 20), history=[])
    per = [t for t in s.tasks if t.rule_id == "ritlecitinib.monitor.every_3_months"]
    assert [t.status for t in per[:3]] == ["overdue", "due", "upcoming"]


def test_upcoming_before_window_opens():
    start = date(2026, 1, 1)
    s = build_schedule(default_kb(), "baricitinib", start, as_of=date(2026, 1, 10))
    rep = [t for t in s.tasks if t.rule_id == "baricitinib.monitor.repeat_4_12w"][0]
    assert rep.status == "upcoming"


def test_engine_schedule_uses_dated_lab_facts():
    start = date(2026, 3, 1)
    d = evaluate(healthy_facts(), "baricitinib", start=start)
    base = [t for t in d.schedule.tasks if t.rule_id == "baricitinib.monitor.cbc_baseline"][0]
    assert base.status == "done" and base.done_on == date(2026, 3, 1)


def test_horizon_must_be_positive():
    with pytest.raises(ValueError, match="horizon_months"):
        build_schedule(default_kb(), "baricitinib", date(2026, 1, 1), as_of=date(2026, 1, 1), horizon_months=0)
