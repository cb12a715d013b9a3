"""The knowledge base: every rule sourced, dated, V or P; invalid files rejected with every problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from follicle.cds.kb import KB_DIR, Rule, default_kb, load_kb
from follicle.errors import SpecError


def test_every_rule_is_sourced_dated_and_tagged():
    kb = default_kb()
    assert len(kb.rules) > 60
    for r in kb.rules:
        assert str(r.source.url).startswith("https://"), r.id
        assert r.status in ("V", "P"), r.id
        assert r.checked.isoformat() == "2026-11-21", r.id
        assert r.message and r.source.label


def test_no_unverified_facts_in_yaml():
    for path in KB_DIR.glob("*.yaml"):
        for raw in (yaml.safe_load(path.read_text()) or {}).get("rules", []):
            assert raw["status"] in ("V", "P"), (path.name, raw["id"])


def test_covers_the_three_approved_drugs_and_flags_partial_renal_rows():
    kb = default_kb()
    assert {"baricitinib", "ritlecitinib", "deuruxolitinib"} <= set(kb.drugs_with_rules)
    assert {d.name for d in kb.drugs if d.approved_for_aa} == {"baricitinib", "ritlecitinib", "deuruxolitinib"}
    renal = [r for r in kb.rules if r.id.startswith("baricitinib.renal")]
    assert renal and all(r.status == "P" for r in renal)  # clinical.md §3.1: US AA renal rows [P]


def test_rule_round_trips_json():
    r = default_kb().rules[0]
    again = Rule.model_validate(json.loads(r.model_dump_json(by_alias=True)))
    assert again == r


def test_invalid_kb_reports_every_problem(tmp_path: Path):
    (tmp_path / "drugs.yaml").write_text(yaml.safe_dump({"drugs": [{"name": "x", "names": ["x"], "approved_for_aa": True}]}))
    good = {"id": "x.a", "drug": "x", "kind": "lab_threshold", "phase": "start", "condition": {"fact": "lymphocytes", "op": "<"},
            "threshold": {"value": 5, "unit": "furlongs"}, "action": "do_not_start", "message": "m",
            "source": {"label": "l", "url": "https://e.org"}, "status": "V", "basis": "label", "checked": "2026-11-21"}
    rules = [good, dict(good), dict(good, id="x.b", status="U"), dict(good, id="x.c", condition={"fact": "shoe_size", "op": "in", "values": [1]}, threshold=None),
             dict(good, id="x.d", drug="y")]
    (tmp_path / "x.yaml").write_text(yaml.safe_dump({"rules": rules}))
    with pytest.raises(SpecError) as exc:
        load_kb(tmp_path)
    text = exc.value.render()
    assert "furlongs" in text and "duplicate rule id 'x.a'" in text and "x.b" in text
    assert "'shoe_size' is not a known fact" in text and "drug 'y' is not in drugs.yaml" in text
