"""The study spec: YAML/JSON round trip, every problem reported at once with its field, hashes."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
import yaml

from follicle.causal import ipw_weights, match, stratify
from follicle.errors import SpecError
from follicle.study.hashing import part_hashes, spec_hash
from follicle.study.settings import AnalysisSettings, MatchingSettings
from follicle.study.spec import StudySpec, load_spec, parse_spec

HERE = Path(__file__).parent
BUNDLED = HERE.parents[1] / "studies" / "jaki_neuropsych.yaml"
SPECS = [HERE / "gibleed_spec.yaml", HERE / "contract_spec.yaml", BUNDLED]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_round_trip_yaml_and_json(path):
    spec = load_spec(path)
    assert StudySpec.from_yaml(spec.to_yaml()) == spec
    assert StudySpec.from_json(spec.to_json()) == spec
    assert spec_hash(StudySpec.from_json(spec.to_json())) == spec_hash(spec)


def test_hash_ignores_layout_but_not_content():
    data = yaml.safe_load((HERE / "gibleed_spec.yaml").read_text())
    a = parse_spec(data)
    reordered = parse_spec(dict(reversed(list(data.items()))))
    assert spec_hash(a) == spec_hash(reordered)
    data["cohorts"]["celecoxib"]["prior_observation_days"] = 364
    assert spec_hash(parse_spec(data)) != spec_hash(a)


def test_part_hashes_change_only_with_their_part():
    spec = load_spec(HERE / "contract_spec.yaml")
    before = part_hashes(spec, "cel_vs_dic")
    assert set(before) == {"population", "propensity", "adjustment:matching", "outcome:gi_bleed", "outcome:ankle_sprain",
                           "outcome:sinusitis"}
    data = spec.model_dump(mode="json")
    data["outcomes"]["ankle_sprain"]["prior_lookback_days"] = 30
    after = part_hashes(parse_spec(data), "cel_vs_dic")
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"outcome:ankle_sprain"}
    data["analysis"]["adjustments"][0]["caliper"] = 0.2
    after2 = part_hashes(parse_spec(data), "cel_vs_dic")
    assert after2["population"] == before["population"] and after2["propensity"] == before["propensity"]
    assert after2["adjustment:matching"] != before["adjustment:matching"]
    assert after2["outcome:gi_bleed"] == before["outcome:gi_bleed"]  # an estimate's key joins both
    data["analysis"]["propensity"]["penalty"] = "l2"
    after3 = part_hashes(parse_spec(data), "cel_vs_dic")
    assert after3["propensity"] != after2["propensity"] and after3["adjustment:matching"] != after2["adjustment:matching"]
    data["analysis"]["adjustments"].append({"kind": "crude", "name": "crude"})
    after4 = part_hashes(parse_spec(data), "cel_vs_dic")
    assert after4["adjustment:matching"] == after3["adjustment:matching"] and "adjustment:crude" in after4


def test_analysis_settings_field_names_are_the_step_arguments():
    m = MatchingSettings().model_dump()
    assert m == {"caliper": 0.1, "caliper_scale": "std_logit", "ratio": 1, "variable_ratio": False,
                 "order": "random", "seed": 0}
    a = AnalysisSettings().model_dump()
    assert a["propensity"] == {"penalty": "none", "cv_folds": 5, "max_iter": 1000}
    assert a["outcome_model"] == {"ties": "efron", "robust_se": True, "stratify_by_pair": False}
    assert a["balance_threshold"] == 0.1
    # no analysis given: one matching adjustment with the defaults, as before adjustments existed
    assert a["adjustments"] == [{"kind": "matching", "name": "matching", **m, "stratify_by_pair": None}]
    # each adjustment's step arguments are the keyword arguments of its causal function
    settings = AnalysisSettings.model_validate({"adjustments": [
        {"kind": "matching", "name": "m"}, {"kind": "stratification", "name": "s"},
        {"kind": "iptw", "name": "w", "truncate_percentile": 1}, {"kind": "crude", "name": "c"}]})
    for adj, fn in zip(settings.adjustments, (match, stratify, ipw_weights)):
        params = set(inspect.signature(fn).parameters) - {"ps", "t"}
        assert set(adj.step_args()) == params, adj.kind
    assert settings.adjustments[2].step_args()["truncate"] == (1, 99)
    assert settings.primary_adjustment.name == "m"


def test_a_single_matching_block_becomes_one_adjustment():
    data = yaml.safe_load(BUNDLED.read_text())
    assert "matching" in data["analysis"] and "adjustments" not in data["analysis"]
    spec = parse_spec(data)
    (adj,) = spec.analysis.adjustments
    assert adj.kind == "matching" and adj.name == "matching"
    assert adj.step_args() == data["analysis"]["matching"]
    assert spec.analysis.primary_adjustment is adj


ADJUSTMENTS = [
    {"kind": "crude", "name": "crude"},
    {"kind": "matching", "name": "matched", "caliper": 0.2, "order": "closest", "ratio": 3, "variable_ratio": True},
    {"kind": "stratification", "name": "strata", "n_strata": 5},
    {"kind": "iptw", "name": "iptw", "estimand": "att", "truncate_percentile": 1},
]


def test_adjustments_round_trip_and_name_the_primary():
    data = yaml.safe_load((HERE / "gibleed_spec.yaml").read_text())
    data["analysis"] = {"adjustments": ADJUSTMENTS, "primary": "strata"}
    spec = parse_spec(data)
    assert [a.kind for a in spec.analysis.adjustments] == ["crude", "matching", "stratification", "iptw"]
    assert spec.analysis.primary_adjustment.name == "strata"
    assert StudySpec.from_yaml(spec.to_yaml()) == spec


@pytest.mark.parametrize(("analysis", "message"), [
    ({"matching": {"caliper": 0.2}, "adjustments": ADJUSTMENTS[:1]}, "analysis: Value error, give the adjustments"),
    ({"adjustments": [ADJUSTMENTS[0], ADJUSTMENTS[0]]}, "adjustment names must be unique; repeated: crude"),
    ({"adjustments": ADJUSTMENTS, "primary": "ghost"}, "primary adjustment 'ghost' is not among the adjustments"),
    ({"adjustments": [{"kind": "weighting", "name": "w"}]}, "analysis.adjustments.0: Input tag 'weighting'"),
    ({"adjustments": [{"kind": "iptw", "name": "w", "truncate_percentile": 60}]},
     "analysis.adjustments.0.iptw.truncate_percentile: Input should be less than 50"),
    ({"adjustments": [{"kind": "stratification", "name": "s", "n_strata": 1}]},
     "analysis.adjustments.0.stratification.n_strata: Input should be greater than or equal to 2"),
    ({"adjustments": []}, "analysis.adjustments: List should have at least 1 item"),
])
def test_bad_adjustments_are_named(analysis, message):
    data = yaml.safe_load((HERE / "gibleed_spec.yaml").read_text())
    data["analysis"] = analysis
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    assert message in "\n".join(info.value.problems)


def test_propensity_adjustments_need_covariates():
    data = yaml.safe_load((HERE / "gibleed_spec.yaml").read_text())
    data["covariates"] = {"demographics": False}
    data["analysis"] = {"adjustments": ADJUSTMENTS}
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    text = "\n".join(info.value.problems)
    for i in (1, 2, 3):
        assert f"analysis.adjustments.{i}: needs a propensity score, but the spec's covariates select none" in text
    data["analysis"] = {"adjustments": ADJUSTMENTS[:1]}  # crude alone needs no covariates
    assert parse_spec(data).analysis.needs_propensity is False


BAD = {
    "name": "bad",
    "concept_sets": {"aa": {"include": ["ICD10CM:L63"]}, "empty": {"domain": "condition", "include": []}},
    "cohorts": {
        "loop": {
            "entry": {"concept_set": "nope"},
            "require": [{"concept_set": "aa", "window": {"start": 10, "end": -10}}],
            "exclude": [{"cohort": "loop"}],
            "colour": "blue",
        },
        "a": {"entry": {"concept_set": "aa"}, "exclude": [{"cohort": "b"}]},
        "b": {"entry": {"concept_set": "aa"}, "exclude": [{"cohort": "a"}], "prior_observation_days": -5},
    },
    "outcomes": {"dep": {"concept_set": "empty"}},
    "comparisons": {"x": {"target": "a", "comparator": "ghost", "outcomes": ["dep", "missing"]}},
}


def test_every_problem_is_reported_with_its_field():
    with pytest.raises(SpecError) as info:
        parse_spec(json.loads(json.dumps(BAD)), source="bad.yaml")
    problems = info.value.problems
    text = "\n".join(problems)
    expected = [
        "cohorts.loop.colour: Extra inputs are not permitted",  # unknown field
        "cohorts.b.prior_observation_days: Input should be greater than or equal to 0",  # negative days
        "cohorts.loop.entry.concept_set: unknown concept set 'nope'",
        "cohorts.loop.require.0.window: window ends before it starts",  # negative window
        "cohorts.loop.exclude.0.cohort: cohort 'loop' refers to itself",
        "cohorts.a: cohorts refer to each other in a cycle: a -> b -> a",
        "outcomes.dep: outcome has no codes",
        "comparisons.x.comparator: unknown cohort 'ghost'",
        "comparisons.x.outcomes.1: unknown outcome 'missing'",
    ]
    for e in expected:
        assert e in text, e
    assert info.value.render().startswith("bad.yaml: ")


def test_unknown_top_level_field_and_bad_code():
    data = yaml.safe_load((HERE / "gibleed_spec.yaml").read_text())
    data["threads"] = 4  # execution settings are not part of the spec
    data["concept_sets"]["gi_bleed"]["include"] = ["ICD10CM:K9"]
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    text = "\n".join(info.value.problems)
    assert "threads: Extra inputs are not permitted" in text
    assert "concept_sets.gi_bleed.include.0" in text and "not an ICD-10-CM code" in text


def test_load_spec_errors_name_the_file(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("name: [unclosed")
    with pytest.raises(SpecError, match="s.yaml: not valid YAML"):
        load_spec(p)
    p.write_text("- a list")
    with pytest.raises(SpecError, match="a study spec is a mapping"):
        load_spec(p)
