"""``follicle network package | run | pool`` on a small network of synthetic worlds (issue 18,
points 1-3): what a bundle holds (aggregates only), what pooling refuses, what it writes."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from follicle.cli import app
from follicle.network.archive import MANIFEST
from follicle.study.spec import load_spec
from follicle.synth.build import build_world

REPO = Path(__file__).resolve().parents[2]
STUDY = REPO / "studies" / "jaki_neuropsych.yaml"
#: (site, persons, seed): different seeds and sizes, the last one small
SITES = [("north", 9000, 21), ("south", 6000, 22), ("clinic", 2500, 23)]


def cli(*args: str) -> tuple[int, dict]:
    res = CliRunner().invoke(app, [*args, "--json"])
    try:
        return res.exit_code, json.loads(res.stdout)
    except json.JSONDecodeError:
        raise AssertionError(res.stdout + str(res.exception)) from None


@pytest.fixture(scope="module")
def network(tmp_path_factory) -> dict:
    """One comparison, two adjustments (matching, crude), min cell count 5; a package, three bundles."""
    root = tmp_path_factory.mktemp("net")
    spec = load_spec(STUDY)
    data = spec.model_dump(mode="json")
    data["comparisons"] = {"jaki_vs_corticosteroid": data["comparisons"]["jaki_vs_corticosteroid"]}
    data["analysis"]["adjustments"] = [{"kind": "matching", "name": "matching"}, {"kind": "crude", "name": "crude"}]
    data["min_cell_count"] = 5
    spec_path = root / "study.yaml"
    spec_path.write_text(type(spec).model_validate(data).to_yaml())
    code, out = cli("network", "package", str(spec_path), "--out", str(root / "pkg.zip"))
    assert code == 0, out
    bundles = []
    for site, persons, seed in SITES:
        db = root / f"{site}.duckdb"
        build_world(persons, seed, db)
        code, out = cli("network", "run", str(root / "pkg.zip"), "--db", str(db), "--site", site,
                        "--out", str(root / f"{site}.zip"))
        assert code == 0, out
        bundles.append(root / f"{site}.zip")
    return {"root": root, "spec": spec_path, "package": root / "pkg.zip", "bundles": bundles, "package_id": out["package_id"]}


def test_package_holds_spec_hash_and_versions(network):
    with zipfile.ZipFile(network["package"]) as zf:
        assert sorted(zf.namelist()) == [MANIFEST, "spec.json"]
        manifest = json.loads(zf.read(MANIFEST))
    assert manifest["spec_hash"] == manifest["package_id"] == network["package_id"]
    assert manifest["cdm_version"] == "5.4" and manifest["follicle_version"]
    assert manifest["files"]["spec.json"]["sha256"]


def test_bundle_holds_aggregates_only(network):
    with zipfile.ZipFile(network["bundles"][0]) as zf:
        assert sorted(zf.namelist()) == ["aggregates.json", MANIFEST, "summary.html"]
        doc = json.loads(zf.read("aggregates.json"))
        summary = zf.read("summary.html").decode()
    text = json.dumps(doc)
    assert "person_id" not in text and "birth" not in text
    comp = doc["comparisons"][0]
    estimates = [e for o in comp["outcomes"] for e in o["estimates"]]
    assert {e["name"] for e in estimates} == {"matching", "crude"}
    shown = [e for e in estimates if e["log_hr"] is not None]
    assert shown, "no estimate shared at the largest site"
    for e in estimates:
        counts = [e[k] for k in ("n_target", "n_comparator", "events_target", "events_comparator")]
        assert all(c is None or c == 0 or (isinstance(c, int) and c >= 5) or c == "<5" for c in counts), counts
        if e["log_hr"] is None:
            assert e["profile"] is None and e["km"] is None  # a withheld estimate sends no likelihood
        else:
            assert len(e["profile"]["beta"]) >= 20 and max(e["profile"]["loglik"]) == 0
            names = {d["name"] for d in e["diagnostics"]}
            assert any("SMD" in n for n in names) and any("MDRR" in n or "detectable" in n for n in names)
    km = [e["km"] for e in shown if e["km"]]
    assert km and all(set(k) == {"days", "target", "comparator"} for k in km)
    for k in km:  # numbers at risk rounded to multiples of the min cell count
        assert all(n % 5 == 0 for arm in ("target", "comparator") for n in k[arm]["at_risk"])
    assert all("count" in a or "persons" in a for a in comp["attrition"])
    assert "no person id" in summary and "north" in summary


def test_pool_writes_results_and_report(network, tmp_path):
    out = tmp_path / "pooled"
    code, res = cli("network", "pool", *map(str, network["bundles"]), "--out", str(out))
    assert code == 0, res
    doc = json.loads((out / "results.json").read_text())
    assert [s["site"] for s in doc["sites"]] == [s for s, _, _ in SITES]
    outcomes = doc["comparisons"][0]["outcomes"]
    assert {o["adjustment"] for o in outcomes} == {"matching", "crude"}
    pooled = [o for o in outcomes if o["pooled"]]
    assert pooled
    for o in pooled:
        assert {"outcome", "negative_control", "pooled", "sites"} <= set(o)
        methods = {p["method"] for p in o["pooled"]}
        assert {"fixed", "likelihood"} <= methods
        for p in o["pooled"]:
            assert p["hr_ci_low"] <= p["hr"] <= p["hr_ci_high"]
        included = [s for s in o["sites"] if s["included"]]
        left = [s for s in o["sites"] if not s["included"]]
        assert len(o["left_out"]) == len(left) and all(s["reason"] for s in left)
        if len(included) == 1 and included[0]["profile_shared"]:  # one site: its own Cox estimate back
            lik = next(p for p in o["pooled"] if p["method"] == "likelihood")
            assert abs(lik["log_hr"] - included[0]["log_hr"]) < 2e-3
        if len(included) >= 2:
            assert {"random"} <= methods
    crude = [s for o in outcomes if o["adjustment"] == "crude" for s in o["sites"] if s["log_hr"] is not None]
    assert crude and all(not s["included"] and s["reason"].startswith("failed diagnostics: max |SMD|") for s in crude)
    html = (out / "report.html").read_text()
    assert html.count("<svg") >= len(pooled) and "Pooled, likelihood" in html


def test_pool_refuses_bundles_of_different_packages(network, tmp_path):
    spec = load_spec(network["spec"])
    other = tmp_path / "other.yaml"
    other.write_text(spec.model_copy(update={"min_cell_count": 6}).to_yaml())
    code, _ = cli("network", "package", str(other), "--out", str(tmp_path / "pkg2.zip"))
    assert code == 0
    # a bundle of the other package, forged cheaply from a real one (its manifest and id rewritten)
    forged = _rewrite(network["bundles"][1], tmp_path / "forged.zip", package_id="f" * 64)
    code, res = cli("network", "pool", str(network["bundles"][0]), str(forged), "--out", str(tmp_path / "out"))
    assert code != 0 and "different study packages" in res["error"]
    assert not (tmp_path / "out").exists()


def test_pool_refuses_the_same_site_twice(network, tmp_path):
    b = str(network["bundles"][0])
    code, res = cli("network", "pool", b, b, "--out", str(tmp_path / "out"))
    assert code != 0 and "appears twice" in res["error"]


def test_pool_refuses_altered_and_hostile_bundles(network, tmp_path):
    src = network["bundles"][0]
    with zipfile.ZipFile(src) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    altered = tmp_path / "altered.zip"
    with zipfile.ZipFile(altered, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b.replace(b'"north"', b'"n0rth"') if n == "aggregates.json" else b)
    code, res = cli("network", "pool", str(altered), "--out", str(tmp_path / "o1"))
    assert code != 0 and "SHA-256" in res["error"]
    traversal = tmp_path / "traversal.zip"
    with zipfile.ZipFile(traversal, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b)
        zf.writestr("../evil.json", b"{}")
    code, res = cli("network", "pool", str(traversal), "--out", str(tmp_path / "o2"))
    assert code != 0 and "unexpected member" in res["error"]
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, members[MANIFEST])
        zf.writestr("summary.html", members["summary.html"])
        zf.writestr("aggregates.json", b" " * (65 * 1024 * 1024))
    code, res = cli("network", "pool", str(bomb), "--out", str(tmp_path / "o3"))
    assert code != 0 and "the limit is" in res["error"]
    code, res = cli("network", "pool", str(tmp_path / "nothing.zip"), "--out", str(tmp_path / "o4"))
    assert code != 0 and "not found" in res["error"]
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 5))


def test_run_refuses_a_bad_site_name_and_an_altered_package(network, tmp_path):
    code, res = cli("network", "run", str(network["package"]), "--db", "x.duckdb", "--site", "../x",
                    "--out", str(tmp_path / "s.zip"))
    assert code != 0 and "--site" in res["error"]
    with zipfile.ZipFile(network["package"]) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    spec = json.loads(members["spec.json"])
    spec["min_cell_count"] = 11
    with zipfile.ZipFile(tmp_path / "pkg.zip", "w") as zf:
        zf.writestr(MANIFEST, members[MANIFEST])
        zf.writestr("spec.json", json.dumps(spec))
    code, res = cli("network", "run", str(tmp_path / "pkg.zip"), "--db", "x.duckdb", "--site", "a",
                    "--out", str(tmp_path / "s.zip"))
    assert code != 0 and "SHA-256" in res["error"]
    assert not (tmp_path / "s.zip").exists()


def _rewrite(src: Path, dst: Path, *, package_id: str) -> Path:
    """A copy of the bundle at *src* claiming another package (manifest hashes recomputed)."""
    from follicle.network.archive import json_bytes, sha256

    with zipfile.ZipFile(src) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    doc = json.loads(members["aggregates.json"])
    doc["package_id"] = package_id
    members["aggregates.json"] = json_bytes(doc)
    manifest = json.loads(members[MANIFEST])
    manifest["package_id"] = package_id
    manifest["files"] = {n: {"sha256": sha256(b), "bytes": len(b)} for n, b in members.items() if n != MANIFEST}
    with zipfile.ZipFile(dst, "w") as zf:
        zf.writestr(MANIFEST, json_bytes(manifest))
        for n, b in members.items():
            if n != MANIFEST:
                zf.writestr(n, b)
    return dst


def test_pooled_likelihood_equals_site_stratified_cox_on_the_union_of_the_sites_rows(network, tmp_path):
    """Whole pipeline: for each outcome of the crude adjustment pooled from two sites or more, the
    likelihood pool equals a Cox model stratified by site on the union of those sites' analysis rows
    (rebuilt here from each site's CDM; reference: lifelines CoxPHFitter with strata, Efron ties)."""
    import numpy as np
    import pandas as pd
    from lifelines import CoxPHFitter

    from follicle.cdm.connect import connect
    from follicle.run.estimate import outcome_frame
    from follicle.study.population import build_population

    out = tmp_path / "pooled"  # crude fails balance by design: kept in the pool here
    assert cli("network", "pool", *map(str, network["bundles"]), "--out", str(out), "--include-failing")[0] == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["excluding_diagnostics"] == []
    spec = load_spec(network["spec"])
    comp = doc["comparisons"][0]
    tables = {}
    for site, _, _ in SITES:
        con = connect(network["root"] / f"{site}.duckdb", read_only=True)
        try:
            tables[site] = build_population(spec, con, comp["id"]).table
        finally:
            con.disconnect()
    checked = 0
    for o in comp["outcomes"]:
        included = [s["site"] for s in o["sites"] if s["included"] and s["profile_shared"]]
        if o["adjustment"] != "crude" or len(included) < 2:
            continue
        name = o["outcome"]
        crude = lambda table: SimpleNamespace(groups=None, weights=np.ones(len(table)))  # noqa: E731
        frames = [outcome_frame(tables[site], name, crude(tables[site]))[["time", "event", "treatment"]].assign(site=i)
                  for i, site in enumerate(included)]
        ref = CoxPHFitter().fit(pd.concat(frames), "time", "event", strata=["site"]).params_["treatment"]
        lik = next(p for p in o["pooled"] if p["method"] == "likelihood" and p["model"] == "fixed")
        assert abs(lik["log_hr"] - ref) < 1e-3, (name, lik["log_hr"], ref)
        checked += 1
    assert checked >= 1, "no crude outcome was pooled from two sites"
