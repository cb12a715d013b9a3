"""Issue 19 points 2 and 3 through the HTTP interface: every page reachable from the home page, the
numbers they show come from the library, and no count from 1 to min_cell_count - 1 is shown."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from conftest import csrf

PAGES = ("/data", "/concepts", "/studies", "/runs", "/meta", "/nma", "/cds")


def small_counts(html: str) -> list[str]:
    """Integer cells of numeric columns that are small counts (1..9)."""
    cells = re.findall(r'<td class="n"[^>]*>([^<]*)</td>', html)
    return [c for c in cells if re.fullmatch(r"\s*[1-9]\s*", c)]


def test_home_links_every_page(client) -> None:
    home = client.get("/").text
    for page in PAGES:
        assert f'href="{page}"' in home
        r = client.get(page)
        assert r.status_code == 200, page
        assert 'aria-current="page"' in r.text and '<main id="main"' in r.text and 'class="skip"' in r.text


def test_data_page_summary_and_checks(client) -> None:
    from follicle.cdm.connect import connect
    from follicle.cdm.summary import summarise

    page = client.get("/data").text
    con = connect(client.app.state.settings.db, read_only=True)
    try:
        s = summarise(con, top_n=15, min_cell_count=10)
    finally:
        con.disconnect()
    assert f">{s.persons:,}<" in page
    assert not small_counts(page)
    checks = client.get("/data/checks").text
    assert "PASS" in checks and "person_present" in checks
    assert not small_counts(checks)


def test_check_rows_suppress_small_violations() -> None:
    from follicle.cdm.check import CheckResult
    from follicle.web.routers.data import check_rows

    r = CheckResult(id="x", category="c", description="d", severity="warn", threshold=0, violating=3, total=5000,
                    share=0.06, status="WARN")
    row = check_rows([r], 10)[0]
    assert row["violating"] == "<10" and row["share"] is None and row["total"] == 5000


def test_concept_search_and_counts(client) -> None:
    r = client.get("/concepts", params={"q": "RxNorm:baricitinib"})
    ids = set(re.findall(r'href="/concepts/(\d+)"', r.text))
    assert "1510627" in ids
    r = client.get("/concepts", params={"q": "alopecia"})
    assert "Alopecia areata" in r.text
    page = client.get("/concepts/1510627").text
    assert "descendant" in page and not small_counts(page)
    m = re.search(r'id="persons-desc">([^<]+)<', page)
    assert m and (m.group(1) == "<10" or int(m.group(1).replace(",", "")) >= 10)
    bad = client.get("/concepts", params={"q": "x" * 300})
    assert "at most 200" in bad.text


def test_search_parses_codes() -> None:
    from follicle.vocab.search import parse_query

    assert parse_query("201826") == {"id": 201826}
    assert parse_query("ICD10CM:L63.1") == {"vocabulary": "ICD10CM", "code": "L63.1", "prefix": False}
    assert parse_query("icd10cm: L63*") == {"vocabulary": "ICD10CM", "code": "L63", "prefix": True}
    assert parse_query("  alopecia   areata ") == {"text": "alopecia areata"}


def test_cds_form_gives_the_service_cards(client) -> None:
    """The same FHIR record through the CDS Hooks service and through the web form: the same cards."""
    import sys

    from fastapi.testclient import TestClient

    sys.path.insert(0, str(Path(__file__).parents[1] / "service"))
    from service_helpers import BUNDLE, make_app, order_request  # the service tests' own request builder

    svc = make_app()  # region US, evaluation date 2026-02-01, no JWT (as the service tests)
    body = order_request()  # the bundle's patient, labs and medications; a draft baricitinib 4 mg order
    pre = body["prefetch"]
    record = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": pre["patient"]}] + [
        e for k in ("labs", "medications") for e in pre[k]["entry"]]}
    assert len(record["entry"]) > 3 and BUNDLE.is_file()
    answer = TestClient(svc).post("/cds-services/aa-jaki-order-check", json=body)
    assert answer.status_code == 200, answer.text
    service_cards = answer.json()["cards"]
    web = client.post("/cds", data={"drug": "baricitinib", "region": "US", "mode": "start", "as_of": "2026-02-01",
                                    "dose_mg": "4", "patient_id": "pt1"},
                      files={"bundle": ("record.json", json.dumps(record), "application/json")},
                      headers=csrf(client) | {"HX-Request": "true"})
    assert web.status_code == 200, web.text
    web_summaries = re.findall(r'<p class="summary">([^<]*)</p>', web.text)
    from markupsafe import escape

    assert [str(escape(c["summary"])) for c in service_cards] == web_summaries


@pytest.mark.parametrize("region", ["EU", "US"])
def test_cds_form_cannot_decide_and_assumed(client, region: str) -> None:
    h = csrf(client) | {"HX-Request": "true"}
    r = client.post("/cds", data={"drug": "baricitinib", "region": region, "age_years": "40", "age_years_assumed": "on"},
                    headers=h)
    assert r.status_code == 200
    assert "cannot-decide" in r.text and "Assumed (not from the record)" in r.text and "age (years): 40" in r.text
    assert "does not replace" in r.text
    refused = client.post("/cds", data={"drug": "deuruxolitinib", "region": "EU"}, headers=h)
    assert "label not encoded" in refused.text


def test_meta_bundled_and_upload(client) -> None:
    h = csrf(client) | {"HX-Request": "true"}
    r = client.post("/meta", data={"source": "bundled"}, headers=h)
    assert r.status_code == 200
    assert "GRADE" in r.text and "Heterogeneity" in r.text and 'data-src="/meta/r/' in r.text
    src = re.search(r'data-src="(/meta/r/[^"]+)"', r.text).group(1)
    zoomed = client.get(src, params={"xmin": 2, "xmax": 20})
    assert zoomed.status_code == 200 and 'data-x0="2"' in zoomed.text
    csv = "study,events_t,total_t,events_c,total_c\nA,10,100,5,100\nB,20,200,8,190\nC,15,90,9,95\n"
    r = client.post("/meta", data={"source": "upload", "measure": "RR", "method": "DL"},
                    files={"csv": ("trials.csv", csv, "text/csv")}, headers=h)
    from follicle.synthesis.effect_sizes import binary_effects
    from follicle.synthesis.pooling import meta_analysis
    import numpy as np

    es = binary_effects([10, 20, 15], [100, 200, 90], [5, 8, 9], [100, 190, 95], measure="RR", labels=["A", "B", "C"])
    res = meta_analysis(es, method="DL")
    assert f"RR {np.exp(res.estimate):.2f} ({np.exp(res.ci_low):.2f} to {np.exp(res.ci_high):.2f})" in r.text


def test_nma_bundled(client) -> None:
    r = client.post("/nma", data={"source": "bundled"}, headers=csrf(client) | {"HX-Request": "true"})
    assert r.status_code == 200
    for part in ("Network graph", "League table", "P-score", "deuruxolitinib 12 mg BID", "Confidence"):
        assert part in r.text


def test_designer_flow_and_results_pages(client) -> None:
    h = csrf(client)
    assert client.post("/studies/new", data={"name": "neuro", "template": "jaki_neuropsych"}, headers=h,
                       follow_redirects=False).status_code == 303
    page = client.get("/studies/neuro").text
    assert "The spec is valid" in page
    # an outcome naming a missing concept set is accepted as a draft and reported by validation
    client.post("/studies/neuro/outcomes", data={"outcome_name": "ghost", "concept_set": "no_such_set"}, headers=h)
    assert "unknown concept set &#39;no_such_set&#39;" in client.post("/studies/neuro/validate", headers=h).text
    assert client.get("/studies/neuro/spec.yaml").status_code == 400
    client.post("/studies/neuro/outcomes/ghost/delete", headers=h)
    spec = client.get("/studies/neuro/spec.yaml")
    assert spec.status_code == 200 and spec.text.startswith("name: neuro")
    # live attrition reacts to an edit
    base = {"entry": "jak_inhibitors", "prior_observation_days": "365", "n_require": "1", "require_0_set": "alopecia_areata",
            "require_0_end": "0", "n_exclude": "0"}
    a1 = client.post("/studies/neuro/cohorts/jaki/attrition", data=base, headers=h | {"HX-Request": "true"}).text
    a2 = client.post("/studies/neuro/cohorts/jaki/attrition", data=base | {"n_exclude": "1", "exclude_0_set":
                     "psychiatric_sleep_history", "exclude_0_end": "-1"}, headers=h | {"HX-Request": "true"}).text
    last = lambda t: re.findall(r'<td class="n">([^<]*)</td>', t)[-2]  # noqa: E731
    assert int(last(a2).replace(",", "")) < int(last(a1).replace(",", ""))
    assert not small_counts(a1) and not small_counts(a2)
    # run it and read every result page
    loc = client.post("/studies/neuro/run", headers=h, follow_redirects=False).headers["location"]
    run_id = loc.rsplit("/", 1)[1]
    for _ in range(600):
        state = client.app.state.runs.status(run_id).get("state")
        if state in ("done", "failed"):
            break
        time.sleep(0.5)
    assert state == "done", client.app.state.runs.status(run_id)
    for tab in ("summary", "attrition", "table1", "balance", "ps", "km", "diagnostics", "downloads"):
        r = client.get(loc, params={"tab": tab})
        assert r.status_code == 200, tab
        assert not small_counts(r.text), tab
    km = client.get(loc, params={"tab": "km"}).text
    assert "data-km=" in km and "Number at risk" in km
    files = re.findall(r'href="(/runs/[^"]+/files/[^"]+)"', client.get(loc, params={"tab": "downloads"}).text)
    assert any(f.endswith("results.json") for f in files) and any(f.endswith("km.parquet") for f in files)
    for f in files:
        assert client.get(f).status_code == 200


def test_attrition_chain_protection() -> None:
    """No difference of two shown attrition counts is a small count (1..9)."""
    from follicle.privacy import protect_chain  # what the cohort editor's live attrition uses

    assert protect_chain([554, 551, 540, 3, 0], 10) == [554, None, 540, "<10", 0]
    chains = [[1000, 995, 990, 985, 900, 899, 15, 12, 0], [50, 50, 41, 30, 29, 5]]
    for chain in chains:
        shown = [v for v in protect_chain(chain, 10) if isinstance(v, int)]
        for a in shown:
            for b in shown:
                assert not 0 < abs(a - b) < 10


def test_loading_specs(client) -> None:
    """A spec file is loaded as a draft even when it has problems (the designer lists them), but a file
    whose sections are not the right shape is refused with the fields named."""
    h = csrf(client)
    bad_shape = "name: shapes\ncohorts: [1, 2]\nanalysis: 3\n"
    r = client.post("/studies/upload", files={"spec": ("s.yaml", bad_shape, "application/x-yaml")}, headers=h)
    assert r.status_code == 400 and "cohorts: expected a mapping" in r.text and "analysis: expected a mapping" in r.text
    unfinished = ("name: unfinished\nconcept_sets: {aa: {include: ['ICD10CM:L63']}}\n"
                  "cohorts: {c1: {entry: {concept_set: aa}}, c2: {entry: {concept_set: missing}}}\n"
                  "comparisons: {x: {target: c1, comparator: c3}}\n")
    r = client.post("/studies/upload", files={"spec": ("u.yaml", unfinished, "application/x-yaml")}, headers=h,
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/studies/unfinished"
    page = client.get("/studies/unfinished")
    assert page.status_code == 200
    assert "unknown concept set &#39;missing&#39;" in page.text and "unknown cohort &#39;c3&#39;" in page.text
    assert client.get("/studies/unfinished/cohorts/c2").status_code == 200
    assert client.get("/studies").status_code == 200


def settings_form(html: str) -> dict[str, str]:
    """The fields the settings form of a designer page would submit as it stands (what a browser sends:
    text and number inputs, checked boxes, each select's selected option)."""
    from html.parser import HTMLParser

    class Form(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.inside, self.fields, self.select, self.option = False, {}, None, None
            self.options: list[tuple[str, bool]] = []

        def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
            a = dict(attrs)
            if tag == "form" and a.get("id") == "settings":
                self.inside = True
            if not self.inside:
                return
            if tag == "option" and self.select:
                self.option = a
            elif tag == "input" and a.get("name") and a.get("type") == "checkbox":
                if "checked" in a:
                    self.fields[a["name"]] = "on"
            elif tag == "input" and a.get("name"):
                self.fields[a["name"]] = a.get("value") or ""
            elif tag == "textarea" and a.get("name"):
                self.fields[a["name"]] = ""
            elif tag == "select":
                self.select, self.options = a["name"], []

        def handle_data(self, data):  # type: ignore[no-untyped-def]
            if self.option is not None:
                self.options.append((self.option.get("value") or data.strip(), "selected" in self.option))
                self.option = None

        def handle_endtag(self, tag):  # type: ignore[no-untyped-def]
            if tag == "option" and self.option is not None:  # an empty option
                self.options.append((self.option.get("value") or "", "selected" in self.option))
                self.option = None
            if tag == "select" and self.select:
                chosen = [v for v, sel in self.options if sel] or [v for v, _ in self.options[:1]]
                if chosen:
                    self.fields[self.select] = chosen[0]
                self.select = None
            if tag == "form":
                self.inside = False

    parser = Form()
    parser.feed(html)
    return {k: v for k, v in parser.fields.items() if v is not None}


def test_designer_edits_the_list_of_adjustments(client) -> None:
    """Issue 15 in the designer: the template's single matching block is one adjustment; rows add,
    remove, rename and change the kind of adjustments, edit each kind's main options and choose the
    primary one; the draft stays a valid spec with those adjustments."""
    import yaml

    h = csrf(client)
    client.post("/studies/new", data={"name": "adjust", "template": "jaki_neuropsych"}, headers=h)
    page = client.get("/studies/adjust").text
    assert 'id="adj_0_name" value="matching"' in page and 'id="new-adjustment-name"' in page
    form = settings_form(page)
    assert form["n_adjustments"] == "1" and form["adj_0_kind"] == "matching" and form["adj_0_caliper"] == "0.1"
    # add a crude adjustment, then an IPTW one
    r = client.post("/studies/adjust/settings", data=form | {"adj_1_name": "unadjusted", "adj_1_kind": "crude"},
                    headers=h, follow_redirects=False)
    assert r.status_code == 303, r.text
    form = settings_form(client.get("/studies/adjust").text)
    assert form["n_adjustments"] == "2" and form["adj_1_kind"] == "crude"
    client.post("/studies/adjust/settings", data=form | {"adj_2_name": "weighted", "adj_2_kind": "iptw"}, headers=h)
    page = client.get("/studies/adjust").text
    form = settings_form(page)
    assert form["adj_2_estimand"] == "ate" and form["adj_2_stabilized"] == "on"  # the kind's options, at defaults
    # edit options, make the IPTW one primary, and turn the crude one into 4 PS strata on the treated
    form |= {"adj_0_caliper": "0.2", "adj_0_ratio": "3", "adj_0_variable_ratio": "on", "adj_2_estimand": "att",
             "adj_2_truncate_percentile": "1", "primary": "weighted", "adj_1_kind": "stratification",
             "adj_1_name": "strata"}
    client.post("/studies/adjust/settings", data=form, headers=h)
    form = settings_form(client.get("/studies/adjust").text)
    client.post("/studies/adjust/settings", data=form | {"adj_1_n_strata": "4", "adj_1_base": "treated"}, headers=h)
    spec = client.get("/studies/adjust/spec.yaml")
    assert spec.status_code == 200, spec.text
    analysis = yaml.safe_load(spec.text)["analysis"]
    assert "matching" not in analysis and analysis["primary"] == "weighted"
    by = {a["name"]: a for a in analysis["adjustments"]}
    assert list(by) == ["matching", "strata", "weighted"]
    assert by["matching"]["kind"] == "matching" and by["matching"]["caliper"] == 0.2 and by["matching"]["ratio"] == 3
    assert by["matching"]["variable_ratio"] is True and by["matching"]["seed"] == 0  # not in the form: kept
    assert (by["strata"]["kind"], by["strata"]["n_strata"], by["strata"]["base"]) == ("stratification", 4, "treated")
    assert (by["weighted"]["estimand"], by["weighted"]["truncate_percentile"]) == ("att", 1.0)
    # remove the matching one: the list shrinks, the primary stays
    form = settings_form(client.get("/studies/adjust").text)
    client.post("/studies/adjust/settings", data=form | {"adj_0_remove": "on"}, headers=h)
    analysis = yaml.safe_load(client.get("/studies/adjust/spec.yaml").text)["analysis"]
    assert [a["name"] for a in analysis["adjustments"]] == ["strata", "weighted"] and analysis["primary"] == "weighted"
    # bad rows are refused with the field named, and nothing is saved
    form = settings_form(client.get("/studies/adjust").text)
    bad = client.post("/studies/adjust/settings", data=form | {"adj_0_name": "Bad Name", "adj_1_truncate_percentile": "60"},
                      headers=h)
    assert bad.status_code == 400 and "adj_0_name" in bad.text and "adj_1_truncate_percentile" in bad.text
    everything_removed = client.post("/studies/adjust/settings", data=form | {"adj_0_remove": "on", "adj_1_remove": "on"},
                                     headers=h)
    assert everything_removed.status_code == 400 and "at least one adjustment" in everything_removed.text
    # two adjustments of one name: the draft keeps them, validation names the problem
    client.post("/studies/adjust/settings", data=form | {"adj_1_name": "strata"}, headers=h)
    assert "adjustment names must be unique" in client.post("/studies/adjust/validate", headers=h).text
