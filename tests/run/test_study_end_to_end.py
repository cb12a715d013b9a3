"""The bundled JAKi study end to end on a small synthetic world: outputs, privacy, caching,
atomic failure, and the report in a real browser (headless Chromium)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from follicle.run import study as study_mod
from follicle.run.results import COUNT_KEYS
from follicle.run.study import run_study
from follicle.study.spec import load_spec, parse_spec
from follicle.synth.build import build_world

REPO = Path(__file__).resolve().parents[2]
STUDY = REPO / "studies" / "jaki_neuropsych.yaml"
SMALL = re.compile(r"^\s*[1-9]\s*$")  # a bare count from 1 to 9 (min_cell_count 10)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("world") / "world.duckdb"
    build_world(15_000, 7, db)
    return db


@pytest.fixture(scope="module")
def first_run(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    return run_study(load_spec(STUDY), world, out)


def test_outputs_exist_with_documented_fields(first_run):
    out = first_run.out_dir
    doc = json.loads((out / "results.json").read_text())
    assert doc["spec_hash"] and doc["cdm_fingerprint"] and doc["follicle_version"]
    assert doc["spec"]["name"] == "jaki_neuropsych"
    assert {c["id"] for c in doc["comparisons"]} == {"jaki_vs_immunosuppressant", "jaki_vs_corticosteroid"}
    for comp in doc["comparisons"]:
        assert comp["attrition"] and comp["table1"] and comp["diagnostics"]
        assert {d["status"] for d in comp["diagnostics"]} <= {"PASS", "FAIL", "NOT_EVALUATED"}
        assert len(comp["outcomes"]) == 15
        for o in comp["outcomes"]:
            for key in ("n_target", "n_comparator", "events_target", "events_comparator", "hr", "hr_ci_low",
                        "hr_ci_high", "p", "logrank_p", "ph_test_p", "evalue", "rd", "rr", "or",
                        "person_years_target", "mean_followup_days_target", "calibrated_p"):
                assert key in o, key
    for name in ("estimates", "attrition", "table1", "diagnostics", "balance"):
        assert (out / "tables" / f"{name}.parquet").exists()
    assert (out / "report.html").stat().st_size > 50_000


def test_no_count_from_1_to_9_leaves_the_machine(first_run):
    out = first_run.out_dir
    doc = json.loads((out / "results.json").read_text())

    def walk(obj, path=""):
        if isinstance(obj, dict):
            for k, v in obj.items():
                if k in COUNT_KEYS and not isinstance(v, (str, type(None))):
                    assert not 1 <= v <= 9, f"{path}.{k} = {v}"
                walk(v, f"{path}.{k}")
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                walk(v, f"{path}[{i}]")

    walk({k: v for k, v in doc.items() if k != "spec"})  # the spec holds settings, not counts
    assert "<10" in json.dumps(doc), "a 15k-person world has small cells; expected some suppressed"
    for name in ("estimates", "attrition"):
        frame = pd.read_parquet(out / "tables" / f"{name}.parquet")
        for col in set(frame.columns) & set(COUNT_KEYS):
            values = pd.to_numeric(frame[col], errors="coerce").dropna()
            assert not values.between(1, 9).any(), f"{name}.{col}"
    html = (out / "report.html").read_text()
    cells = re.findall(r'class="count">([^<]*)<', html)
    assert cells, "report has no count cells"
    assert not [c for c in cells if SMALL.match(c.replace(",", ""))]


def test_changing_one_outcome_recomputes_only_that_outcome(world, first_run, tmp_path):
    out = first_run.out_dir
    spec = load_spec(STUDY)
    again = run_study(spec, world, out)
    assert sum(again.store.computed.values()) == 0, again.store.computed

    data = spec.model_dump(mode="json")
    data["concept_sets"]["ankle_sprain"]["include"].append("ICD10CM:S93.5")
    changed = parse_spec(data)
    rerun = run_study(changed, world, out)
    # ankle_sprain is a negative control in both comparisons: two extractions, two estimates; and
    # the concept-set resolution report, which covers every set
    # (and which event tables the spec reads, a function of its concept sets)
    assert dict(rerun.store.computed) == {"outcome_extract": 2, "outcome": 2, "concept_sets": 1, "tables_read": 1}
    assert rerun.store.reused["population"] == 2 and rerun.store.reused["propensity"] == 2


def test_changed_cdm_is_detected(world, first_run, monkeypatch):
    monkeypatch.setattr(study_mod, "cdm_fingerprint", lambda *args, **kwargs: "another-cdm")
    rerun = run_study(load_spec(STUDY), world, first_run.out_dir)
    assert rerun.store.computed["population"] == 2 and not rerun.store.reused


def test_failed_run_leaves_previous_results_intact(world, first_run, monkeypatch):
    out = first_run.out_dir
    before = (out / "results.json").read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("report failed")

    monkeypatch.setattr(study_mod, "study_report_html", boom)
    with pytest.raises(RuntimeError):
        run_study(load_spec(STUDY), world, out)
    assert (out / "results.json").read_bytes() == before
    assert not list(out.glob(".tmp-results-*"))


@pytest.mark.chromium
def test_report_renders_in_chromium(first_run, chromium, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright (test extra) not installed")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        problems: list[str] = []
        page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
        page.goto((first_run.out_dir / "report.html").as_uri())
        images = page.evaluate("Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0])")
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert len(images) >= 5, images
    assert all(ok for _, ok in images), [alt for alt, ok in images if not ok]
    assert problems == []
    assert shot.stat().st_size > 20_000
