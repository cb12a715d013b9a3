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
    assert len(kb.rules) > 100
    for r in kb.rules:
        assert str(r.source.url).startswith("https://"), r.id
        assert r.status in ("V", "P", "G"), r.id
        assert r.checked.isoformat() == "2026-12-04", r.id
        assert r.message and r.source.label and r.regions and r.topic


def test_status_tags_are_honest():
    for r in default_kb().rules:
        if r.status == "V":  # a label statement is V only when quoted with its section
            assert r.basis == "label" and r.section and r.quote, r.id
        assert (r.status == "G") == (r.basis == "practice"), r.id
        if r.basis == "label":
            assert r.section, r.id
        if r.action == "cannot_decide":
            assert "not encoded" in r.message and "(not encoded)" in (r.section or ""), r.id


def test_no_unverified_facts_in_yaml():
    for path in KB_DIR.glob("*.yaml"):
        for raw in (yaml.safe_load(path.read_text()) or {}).get("rules", []):
            assert raw["status"] in ("V", "P", "G"), (path.name, raw["id"])


def test_each_offered_drug_has_both_labels_decided():
    kb = default_kb()
    for d in ("baricitinib", "ritlecitinib", "deuruxolitinib", "tofacitinib", "ruxolitinib", "upadacitinib"):
        for region in ("EU", "US"):
            lab = kb.label(d, region)
            assert lab is not None, (d, region)
            assert lab.encoded or lab.reason, (d, region)
            if lab.encoded:
                assert kb.for_drug(d, region=region, kinds={"dose"}), (d, region)
    assert set(kb.encoded_drugs("US")) == {"baricitinib", "ritlecitinib", "deuruxolitinib"}
    assert set(kb.encoded_drugs("EU")) == {"baricitinib", "ritlecitinib"}
    renal = [r for r in kb.rules if r.id.startswith("baricitinib.us.renal")]
    assert renal and all(r.status == "P" for r in renal)  # clinical.md §3.1: US AA renal rows [P]


def test_each_label_covers_the_safety_topics_or_says_why_not():
    """Every encoded label has a rule (or a cannot-decide rule) for each safety topic of the issue."""
    kb = default_kb()
    topics = {"tb_active", "active_infection", "hepatitis_active", "pregnancy", "lactation", "lymphocytes",
              "hepatic_severe", "live_vaccine", "dose"}
    for region in ("EU", "US"):
        for d in kb.encoded_drugs(region):
            have = {r.topic for r in kb.for_drug(d, region=region)}
            missing = topics - have
            assert not missing, (d, region, missing)


def test_rule_round_trips_json():
    r = default_kb().rules[0]
    again = Rule.model_validate(json.loads(r.model_dump_json(by_alias=True)))
    assert again == r


def test_invalid_kb_reports_every_problem(tmp_path: Path):
    (tmp_path / "drugs.yaml").write_text(yaml.safe_dump({"drugs": [{"name": "x", "names": ["x"], "approved_for_aa": True}]}))
    good = {"id": "x.a", "drug": "x", "region": "EU", "topic": "t", "kind": "lab_threshold", "phase": "start",
            "condition": {"fact": "lymphocytes", "op": "<"},
            "threshold": {"value": 5, "unit": "furlongs"}, "action": "do_not_start", "message": "m",
            "source": {"label": "l", "url": "https://e.org"}, "section": "4.2", "quote": "q", "status": "V", "basis": "label",
            "checked": "2026-11-21"}
    rules = [good, dict(good), dict(good, id="x.b", status="U"), dict(good, id="x.c", condition={"fact": "shoe_size", "op": "in", "values": [1]}, threshold=None),
             dict(good, id="x.d", drug="y"), dict(good, id="x.e", quote=None), dict(good, id="x.f", status="G")]
    (tmp_path / "x.yaml").write_text(yaml.safe_dump({"rules": rules}))
    with pytest.raises(SpecError) as exc:
        load_kb(tmp_path)
    text = exc.value.render()
    assert "furlongs" in text and "duplicate rule id 'x.a'" in text and "x.b" in text
    assert "'shoe_size' is not a known fact" in text and "drug 'y' is not in drugs.yaml" in text
    assert "x.e: status V needs basis 'label', a section and the quoted label sentence" in text
    assert "x.f: practice guidance is tagged G" in text


def test_a_key_given_twice_in_a_rule_is_rejected(tmp_path):
    """Second review: a YAML mapping with a key given twice loaded silently (the second value won), so a
    rule could carry an action or threshold nobody saw in review."""
    for path in KB_DIR.glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text())
    target = tmp_path / "ritlecitinib.yaml"
    text = target.read_text().replace("    action: do_not_start\n", "    action: do_not_start\n    action: caution\n", 1)
    target.write_text(text)
    with pytest.raises(SpecError) as exc:
        load_kb(tmp_path)
    assert "duplicate key 'action'" in exc.value.render() and "ritlecitinib.yaml" in exc.value.render()
