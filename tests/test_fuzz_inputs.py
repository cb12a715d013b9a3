"""Hypothesis fuzzing of what users and clients send (issue 14, point 6): CSV files (`cdm load`,
`analyze survival`, the registry), YAML specs and configs, and raw CDS Hooks request bodies.
Every input ends in a result or one FollicleError (CLI: exit 2, one message) / a 4xx
OperationOutcome; never another exception, a 5xx or a traceback."""

from __future__ import annotations

import json
import os
import shutil
import string
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from follicle.errors import FollicleError

REPO = Path(__file__).resolve().parents[1]
GIBLEED = Path(os.environ.get("FOLLICLE_SHARED", REPO.parent / "shared")) / "data" / "omop" / "gibleed"  # as conftest.shared_dir
sys.path.insert(0, str(Path(__file__).parent / "service"))
from service_helpers import make_app, order_request  # noqa: E402

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

cell = st.one_of(st.integers(-2**70, 2**70).map(str), st.floats(allow_nan=True).map(str),
                 st.text(alphabet=string.printable + "éü\u2028\x00", max_size=12), st.just(""),
                 st.sampled_from(["NA", "null", "2020-02-30", "1e400", '"', '""', "\r", ";", "\t"]))


def _csv(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(",".join(r) for r in [header, *rows]) + "\n"


@FUZZ
@given(header=st.lists(st.sampled_from(["person_id", "gender_concept_id", "year_of_birth", "race_concept_id",
                                        "ethnicity_concept_id", "junk", "", "Person_ID "]), min_size=1, max_size=6),
       rows=st.lists(st.lists(cell, min_size=0, max_size=7), max_size=4),
       raw=st.one_of(st.none(), st.binary(max_size=200)))
def test_cdm_load_of_a_fuzzed_csv_is_a_result_or_one_message(tmp_path_factory, header, rows, raw):
    from follicle.cdm.load import load_cdm

    tmp = tmp_path_factory.mktemp("f")
    src = tmp / "src"
    src.mkdir()
    shutil.copy(GIBLEED / "observation_period.csv", src / "observation_period.csv")
    (src / "person.csv").write_bytes(raw if raw is not None else _csv(header, rows).encode("utf-8", "surrogatepass"))
    try:
        load_cdm(src, tmp / "x.duckdb")
    except FollicleError as exc:
        assert str(exc)
        assert not (tmp / "x.duckdb").exists() and not list(tmp.glob(".x.duckdb.tmp-*"))


@FUZZ
@given(rows=st.lists(st.tuples(cell, cell, cell), max_size=30), header=st.sampled_from(
    [["time", "event", "group"], ["time", "event"], ["t", "event", "group"]]))
def test_analyze_survival_on_a_fuzzed_csv_is_a_result_or_one_message(tmp_path_factory, rows, header):
    from follicle.cli.analyze_survival import protect, run_survival

    path = tmp_path_factory.mktemp("s") / "d.csv"
    path.write_text(_csv(header, [list(r)[: len(header)] for r in rows]), encoding="utf-8", errors="surrogatepass")
    try:
        res = protect(run_survival(path, "time", "event", "group" if "group" in header else None, [], "efron", 0.95), 10)
    except FollicleError as exc:
        assert str(exc)
        return
    json.dumps(res)  # whatever comes out is plain JSON


@FUZZ
@given(text=st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-2**80, 2**80), st.floats(), st.text(max_size=8)),
                 lambda inner: st.one_of(st.lists(inner, max_size=4),
                                         st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                 max_leaves=20).map(json.dumps),
    st.sampled_from(["name: x\nconcept_sets: &a {b: *a}\n", "!!python/object:os.system {}\n", "\t- a",
                     "a: 1\na: 2\n", "- " * 500])))
def test_fuzzed_yaml_specs_and_configs_give_one_message(tmp_path_factory, text):
    from follicle.study.salt_cohort import load_spec as load_response_spec
    from follicle.study.spec import load_spec
    from follicle.synth.build import load_config
    from follicle.synthesis.spec import MetaSpec
    from follicle.textinput import load_data
    from pydantic import ValidationError

    path = tmp_path_factory.mktemp("y") / "spec.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    for load in (load_spec, load_config, load_response_spec, lambda p: MetaSpec.model_validate(load_data(p))):
        try:
            load(path)
        except (FollicleError, ValidationError) as exc:  # pydantic errors are rendered field by field by the CLI
            assert str(exc)


client = TestClient(make_app(max_body_bytes=20_000), raise_server_exceptions=False)
ORDER = "/cds-services/aa-jaki-order-check"


@FUZZ
@given(body=st.one_of(
    st.binary(max_size=400),
    st.text(max_size=400).map(str.encode),
    st.integers(1, 30_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(1, 30_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.just(json.dumps(order_request()).encode()).map(lambda b: b.replace(b'"order-sign"', b"1e999")),
    st.just(json.dumps(order_request()).encode()).map(lambda b: b.replace(b"4", b"99999999999999999999999999")),
), content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""]),
   path=st.sampled_from([ORDER, "/cds-services/aa-jaki-monitoring", "/cds-services/x/feedback", "/cds-services"]))
def test_fuzzed_cds_bodies_are_answered_with_4xx_or_200(body, content_type, path):
    r = client.post(path, content=body, headers={"Content-Type": content_type} if content_type else {})
    assert r.status_code < 500, r.text
    assert r.headers["cache-control"] == "no-store"
    if r.status_code >= 400:
        assert r.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("size", [19_999, 20_001])
def test_body_limit_is_exact(size):
    r = client.post(ORDER, content=b" " * size, headers={"Content-Type": "application/json"})
    assert (r.status_code == 413) == (size > 20_000)
