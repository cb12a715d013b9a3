"""``follicle cds check``: JSON and text output with the disclaimer; clear errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from follicle.cli import app

DATA = Path(__file__).parent / "data" / "patient_bundle.json"
DISCLAIMER = "This supports, and does not replace, the clinician's judgement."
runner = CliRunner()


def test_check_json():
    r = runner.invoke(app, ["cds", "check", str(DATA), "--drug", "baricitinib", "--start", "2026-01-15", "--as-of", "2026-05-01",
                            "--region", "US", "--json", "--max-result-age-days", "180"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["disclaimer"] == DISCLAIMER and out["decision"]["disclaimer"] == DISCLAIMER
    d = out["decision"]
    assert d["decision"] == "cannot-decide" and d["region"] == "US"  # Child-Pugh class, infection ... not in the record
    assert any(n.startswith("hepatic class") for n in d["needs"])
    assert d["dose"]["mg"] == 1 and d["dose"]["alternative_mg"] == 2  # eGFR 52: step-down [P]
    assert "baricitinib.us.renal_30_60" in d["partially_verified_rules"]
    overdue = {t["rule_id"] for t in d["schedule"]["tasks"] if t["status"] == "overdue"}
    assert "baricitinib.monitor.lipids_12w" in overdue
    # by default a result older than 90 days is not current: the January eGFR no longer sets the dose
    r = runner.invoke(app, ["cds", "check", str(DATA), "--drug", "baricitinib", "--as-of", "2026-05-01", "--region", "US", "--json"])
    out = json.loads(r.stdout)
    assert out["facts"]["egfr"] is None and any("Observation/egfr" in w and "older than 90 days" in w for w in out["warnings"])
    assert any(n.startswith("egfr") for n in out["decision"]["needs"])


def test_check_text_has_disclaimer_and_sources():
    r = runner.invoke(app, ["cds", "check", str(DATA), "--drug", "ritlecitinib", "--as-of", "2026-02-01"])
    assert r.exit_code == 0, r.output
    assert DISCLAIMER in " ".join(r.stdout.split())
    assert "pfizer" in r.stdout.lower()


def test_check_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    r = runner.invoke(app, ["cds", "check", str(bad), "--drug", "baricitinib"])
    assert r.exit_code == 2 and "not valid JSON" in " ".join(r.stderr.split())
    r = runner.invoke(app, ["cds", "check", str(DATA), "--drug", "aspirin"])
    assert r.exit_code == 2 and "'aspirin' is not in the drug catalogue" in " ".join(r.stderr.split())
    r = runner.invoke(app, ["cds", "check", str(DATA), "--drug", "tofacitinib", "--region", "US"])
    assert r.exit_code == 2 and "tofacitinib is refused under the US prescribing information" in " ".join(r.stderr.split())
    r = runner.invoke(app, ["cds", "check", str(DATA), "--drug", "deuruxolitinib", "--region", "EU"])
    assert r.exit_code == 2 and "No EU SmPC" in " ".join(r.stderr.split())
    r = runner.invoke(app, ["cds", "check", str(DATA), "--drug", "baricitinib", "--region", "JP"])
    assert r.exit_code == 2 and "--region" in " ".join(r.stderr.split())
    r = runner.invoke(app, ["cds", "check", str(DATA), "--drug", "baricitinib", "--start", "15/01/2026"])
    assert r.exit_code == 2 and "--start" in " ".join(r.stderr.split())
    r = runner.invoke(app, ["cds", "check", str(DATA), "--drug", "baricitinib", "--strict"])
    assert r.exit_code == 2 and "39156-5" in " ".join(r.stderr.split())
    r = runner.invoke(app, ["cds", "check", str(tmp_path / "missing.json"), "--drug", "baricitinib"])
    assert r.exit_code == 2


def test_serve_command_is_registered():
    r = runner.invoke(app, ["cds", "serve", "--help"])
    assert r.exit_code == 0 and "--port" in r.stdout and "--host" in r.stdout


def test_check_directory_is_a_clear_error(tmp_path):
    r = runner.invoke(app, ["cds", "check", str(tmp_path), "--drug", "baricitinib"])
    assert r.exit_code == 2 and "cannot read" in " ".join(r.stderr.split())


def test_check_with_given_facts():
    args = ["cds", "check", str(DATA), "--drug", "baricitinib", "--as-of", "2026-02-01", "--json", "--region", "EU",
            "--fact", "hepatic_class=C", "--fact", "vte_risk_factors=[\"obesity\"]", "--fact", "active_infection=false"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    d = out["decision"]
    assert d["decision"] == "do-not-start"
    assert {"baricitinib.eu.hepatic_severe", "baricitinib.eu.vte"} <= {x["rule_id"] for x in d["reasons"]}
    assert "active_infection" not in {n["fact"] for n in d["not_assessed"]}
    # the card lists what was assumed: the --fact values and the CrCl taken from the eGFR
    assert out["assumed_facts"][:3] == args[-5::2] and "creatinine clearance" in out["assumed_facts"][3]
    # --fact only fills what the record lacks: the bundle has an eGFR
    r = runner.invoke(app, ["cds", "check", str(DATA), "--drug", "baricitinib", "--as-of", "2026-02-01",
                            "--fact", 'egfr={"value": 90, "unit": "mL/min/1.73m2"}'])
    assert r.exit_code == 2 and "only fills what the record lacks" in " ".join(r.stderr.split())
    r = runner.invoke(app, ["cds", "check", str(DATA), "--drug", "baricitinib", "--fact", "shoe_size=9"])
    assert r.exit_code == 2 and "not a patient fact" in " ".join(r.stderr.split())
    r = runner.invoke(app, ["cds", "check", str(DATA), "--drug", "baricitinib", "--fact", "hepatic_class=Z"])
    assert r.exit_code == 2 and "hepatic_class" in " ".join(r.stderr.split())
