"""The study-spec reference (``docs/spec-reference.md``), generated from the pydantic models.

Every model reachable from :class:`~follicle.study.spec.StudySpec` gets a section (its docstring,
where it sits in a spec) and every field a row: its type with constraints, its default and its
meaning. The meaning is the field's ``description`` when the model gives one
(``Field(description=...)``), else the entry of :data:`FIELD_DOCS`. A test fails when the file is
stale or a field has no meaning; regenerate with::

    .venv/bin/python -m follicle.study.reference --write docs/spec-reference.md
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from follicle.study.spec import StudySpec

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"

#: the meaning of each field ("Model.field"), for fields whose model gives no description
FIELD_DOCS: dict[str, str] = {
    "StudySpec.name": "Identifier of the study; names results and caches.",
    "StudySpec.description": "Free text, shown at the top of the report.",
    "StudySpec.concept_sets": "The codes of each clinical idea, by name; cohorts, outcomes and covariates refer to these names.",
    "StudySpec.cohorts": "The cohorts, by name.",
    "StudySpec.outcomes": "The outcomes, by name.",
    "StudySpec.time_at_risk": "Start and end of follow-up, shared by every comparison.",
    "StudySpec.covariates": "Covariates of the propensity model and of Table 1.",
    "StudySpec.comparisons": "Target vs comparator cohorts, by name.",
    "StudySpec.analysis": "Statistical settings (propensity model, adjustments, outcome model, balance).",
    "StudySpec.min_cell_count": "Counts from 1 to this minus 1 leave the machine as \"<min_cell_count\"; estimates that would reveal them are withheld.",
    "ConceptSet.description": "Free text.",
    "ConceptSet.domain": "CDM domain the events are looked for in; inferred from the vocabularies of `include` (required when it lists OMOP ids only).",
    "ConceptSet.include": "Codes as `VOCABULARY:CODE` (`ICD10CM:L63`, `ICD10CM:F30-F39`, `RxNorm:baricitinib` or an RXCUI, `ATC:N06A`, `LOINC:718-7`, `OMOP:141933`), each with its descendants unless it ends in `!`.",
    "ConceptSet.exclude": "Codes removed from the set (same form as `include`).",
    "ConceptEntry.vocabulary": "ICD10CM (matched on source values and source concepts), RxNorm, ATC, LOINC or OMOP (a concept id).",
    "ConceptEntry.code": "The code; an RxNorm ingredient may be given by name; an ICD-10-CM range as `F30-F39`.",
    "ConceptEntry.descendants": "Take the code's children (ICD-10-CM) or descendants (other vocabularies); `!` after a shorthand code sets it false.",
    "CohortSpec.description": "Free text, used in the generated methods.",
    "CohortSpec.entry": "The index event: each person's first event of a concept set.",
    "CohortSpec.route": "Which drug exposures count as entry exposures (e.g. no topical forms).",
    "CohortSpec.prior_observation_days": "Days of observation required before the index date.",
    "CohortSpec.washout_days": "New users: no event of the washout concept sets in this many days before index (null: no washout).",
    "CohortSpec.washout_concept_sets": "Concept sets of the washout (default: the entry concept set).",
    "CohortSpec.min_exposures": "At least this many exposures (distinct days) to the entry concept set in a window.",
    "CohortSpec.require": "Criteria a member must meet (an event of a concept set, or membership of another cohort, in a window).",
    "CohortSpec.age": "Age at index, in whole years.",
    "CohortSpec.exclude": "Criteria that exclude a person (same form as `require`).",
    "CohortSpec.exposure_gap_days": "Persistence window: entry exposures starting within this many days of the latest end so far form one exposure era (its end is the cohort end).",
    "CohortSpec.surveillance_days": "Days added to the end of the exposure era to give the cohort end (ATLAS's surveillance window).",
    "EntryEvent.concept_set": "Name of the concept set whose first event is the index event.",
    "EntryEvent.occurrence": "Which event is the index: the first.",
    "RouteFilter.include": "Keep only exposures with these `route_concept_id` values.",
    "RouteFilter.exclude": "Drop exposures with these `route_concept_id` values.",
    "RouteFilter.exclude_concept_set": "Drop exposures to the drugs of this concept set (e.g. a topical dose form).",
    "RouteFilter.keep_unknown": "Keep exposures whose route is unknown (0 or null).",
    "MinExposures.count": "Minimum number of exposures (distinct days).",
    "MinExposures.window": "Days relative to index in which they are counted.",
    "Window.start": "First day relative to index (negative: before); null: all history.",
    "Window.end": "Last day relative to index; null: open-ended.",
    "Criterion.concept_set": "A concept set with at least one event in the window (or give `cohort`).",
    "Criterion.cohort": "Another cohort whose index date falls in the window (or give `concept_set`).",
    "Criterion.window": "Days relative to index (default: any time before index).",
    "AgeRange.min": "Youngest age at index (years).",
    "AgeRange.max": "Oldest age at index (years).",
    "OutcomeSpec.concept_set": "Concept set whose first event in the time at risk is the outcome.",
    "OutcomeSpec.description": "Free text.",
    "OutcomeSpec.prior_lookback_days": "People with the outcome this many days before the time at risk are left out of its analysis (null: any time before).",
    "TimeAtRisk.start_offset": "Days after the start anchor when follow-up starts.",
    "TimeAtRisk.start_anchor": "`index` or `cohort_start` (the index date), or `cohort_end` (the end of the exposure era holding the index, plus surveillance days).",
    "TimeAtRisk.end_offset": "Days after the end anchor when follow-up ends (a large number such as 99999: the end of observation).",
    "TimeAtRisk.end_anchor": "`index`, `cohort_start` or `cohort_end`.",
    "TimeAtRisk.censor_at_observation_end": "End follow-up at the end of the observation period.",
    "TimeAtRisk.censor_at_death": "End follow-up at death.",
    "TimeAtRisk.max_follow_up_days": "Longest follow-up in days (null: no limit).",
    "TimeAtRisk.min_days_at_risk": "People with fewer days than this between the start and the end of the time at risk (end minus start) are left out (CohortMethod's minDaysAtRisk).",
    "CovariateSpec.default_set": "The FeatureExtraction-like default covariate set (`true` for its defaults): sex, age group, index year and every condition, drug ingredient, procedure and measurement concept in the long- and short-term windows.",
    "DefaultCovariates.demographics": "Add sex, 5-year age group and index year.",
    "DefaultCovariates.domains": "Domains whose concepts become covariates: `condition`, `drug` (rolled up to ingredients), `procedure`, `measurement`.",
    "DefaultCovariates.long_term_start_days": "First day of the long-term window relative to index.",
    "DefaultCovariates.short_term_start_days": "First day of the short-term window relative to index.",
    "DefaultCovariates.end_days": "Last day of both windows relative to index.",
    "DefaultCovariates.excluded_concept_sets": "Concept sets (with descendants) left out of the covariates, besides the compared cohorts' entry concept sets.",
    "CovariateSpec.demographics": "Add age and sex.",
    "CovariateSpec.concept_sets": "One 0/1 covariate per concept set: an event in the covariate window.",
    "CovariateSpec.window": "Days relative to index in which covariates are measured.",
    "CovariateSpec.all_conditions": "Every condition concept in the window as a sparse covariate (as OHDSI FeatureExtraction).",
    "CovariateSpec.all_drugs": "Every drug concept in the window as a sparse covariate (the compared drugs left out).",
    "ComparisonSpec.target": "Name of the target cohort (treatment = 1).",
    "ComparisonSpec.comparator": "Name of the comparator cohort (treatment = 0).",
    "ComparisonSpec.outcomes": "Outcomes estimated in this comparison.",
    "ComparisonSpec.negative_controls": "Outcomes not caused by either treatment (true HR 1), for empirical calibration.",
    "ComparisonSpec.overlap": "People in both cohorts: `exclude` drops them; `first_exposure` keeps them in the cohort entered first.",
    "AnalysisSettings.propensity": "The propensity-score model.",
    "AnalysisSettings.adjustments": "The adjustments, each estimated for every outcome: `crude`, `matching`, `stratification` or `iptw` (an older single `matching:` block is one matching adjustment named `matching`).",
    "AnalysisSettings.primary": "Name of the adjustment whose numbers fill the top-level results fields (default: the first).",
    "CrudeAdjustment.kind": "`crude`: no adjustment.",
    "CrudeAdjustment.name": "The researcher's name of the adjustment (unique).",
    "MatchingAdjustment.kind": "`matching`: propensity-score matching.",
    "MatchingAdjustment.name": "The researcher's name of the adjustment (unique).",
    "MatchingAdjustment.stratify_by_pair": "Cox model stratified by matched set (null: `outcome_model.stratify_by_pair`).",
    "MatchingAdjustment.caliper": "Largest allowed distance between matched people, on `caliper_scale`.",
    "MatchingAdjustment.caliper_scale": "`std_logit` (standard deviations of the logit of the PS), `logit` or `ps`.",
    "MatchingAdjustment.ratio": "Comparators per target (1:ratio).",
    "MatchingAdjustment.variable_ratio": "Allow fewer than `ratio` comparators when not enough are within the caliper.",
    "MatchingAdjustment.order": "Greedy matching order: `random` or `closest` pair first.",
    "MatchingAdjustment.seed": "Seed of the random order.",
    "StratificationAdjustment.kind": "`stratification`: strata at propensity-score quantiles, Cox model stratified by stratum.",
    "StratificationAdjustment.name": "The researcher's name of the adjustment (unique).",
    "StratificationAdjustment.n_strata": "Number of strata.",
    "StratificationAdjustment.base": "Whose PS quantiles cut the strata: `all`, `treated` or `untreated`.",
    "IptwAdjustment.kind": "`iptw`: inverse probability of treatment weighting (weighted Cox model, robust SE).",
    "IptwAdjustment.name": "The researcher's name of the adjustment (unique).",
    "IptwAdjustment.estimand": "`ate` (everyone) or `att` (the treated).",
    "IptwAdjustment.stabilized": "Multiply the weights by the marginal treatment probabilities.",
    "IptwAdjustment.truncate_percentile": "Cap the weights at this percentile and its mirror (100 minus it); null: no truncation.",
    "AnalysisSettings.outcome_model": "The Cox outcome model.",
    "AnalysisSettings.balance_threshold": "Largest acceptable absolute standardised mean difference after adjustment.",
    "PropensitySettings.penalty": "`none` (plain logistic regression), `l1` or `l2` (penalised, strength by cross-validation).",
    "PropensitySettings.cv_folds": "Folds of the cross-validation of the penalty strength.",
    "PropensitySettings.max_iter": "Iteration limit of the fit.",
    "MatchingSettings.caliper": "Largest allowed distance between matched people, on `caliper_scale`.",
    "MatchingSettings.caliper_scale": "`std_logit` (standard deviations of the logit of the PS), `logit` or `ps`.",
    "MatchingSettings.ratio": "Comparators per target (1:ratio).",
    "MatchingSettings.variable_ratio": "Allow fewer than `ratio` comparators when not enough are within the caliper.",
    "MatchingSettings.order": "Greedy matching order: `random` or `closest` pair first.",
    "MatchingSettings.seed": "Seed of the random order.",
    "OutcomeModelSettings.ties": "Handling of tied event times: `efron` or `breslow`.",
    "OutcomeModelSettings.robust_se": "Robust (sandwich) standard errors clustered on matched sets.",
    "OutcomeModelSettings.stratify_by_pair": "Stratify the Cox model by matched set.",
}


def models() -> list[tuple[type[BaseModel], str]]:
    """Every model reachable from StudySpec, breadth-first, with the path where it first appears."""
    out: list[tuple[type[BaseModel], str]] = [(StudySpec, "(top level)")]
    seen = {StudySpec}
    i = 0
    while i < len(out):
        model, path = out[i]
        i += 1
        for name, info in model.model_fields.items():
            here = name if path == "(top level)" else f"{path}.{name}"
            for sub, suffix in _submodels(info.annotation):
                if sub not in seen:
                    seen.add(sub)
                    out.append((sub, here + suffix))
    return out


def _submodels(annotation: Any, suffix: str = "") -> list[tuple[type[BaseModel], str]]:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return [(annotation, suffix)]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _submodels(args[0], suffix)
    if origin is dict:
        return _submodels(args[1], suffix + ".<name>")
    if origin is list:
        return _submodels(args[0], suffix + "[]")
    return [m for a in args for m in _submodels(a, suffix)]


def type_text(annotation: Any, metadata: list[Any] | None = None) -> str:
    """A reader's description of a field type, with its constraints."""
    if annotation is str and any(getattr(m, "pattern", None) == NAME_PATTERN for m in metadata or []):
        return "name"
    text = _type(annotation)
    bounds = _constraints(metadata or [])
    return f"{text} ({bounds})" if bounds else text


def _type(a: Any) -> str:
    origin, args = typing.get_origin(a), typing.get_args(a)
    if origin is typing.Annotated:
        if args[0] is str and any(getattr(m, "pattern", None) == NAME_PATTERN for m in args[1:]):
            return "name"
        return type_text(args[0], list(args[1:]))
    if origin in (typing.Union, types.UnionType):
        rest = [x for x in args if x is not type(None)]
        inner = " or ".join(_type(x) for x in rest)
        return inner + (" or null" if len(rest) < len(args) else "")
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{v}`" for v in args)
    if origin is dict:
        return f"mapping of {_type(args[0])} to {_type(args[1])}"
    if origin is list:
        return f"list of {_type(args[0])}"
    if inspect.isclass(a) and issubclass(a, BaseModel):
        return f"[{a.__name__}](#{a.__name__.lower()})"
    return {int: "integer", float: "number", str: "text", bool: "true/false"}.get(a, getattr(a, "__name__", str(a)))


def _constraints(metadata: list[Any]) -> str:
    parts = []
    for m in metadata:
        if isinstance(m, FieldInfo):
            parts.append(_constraints(list(m.metadata)))
            continue
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("min_length", "length >="),
                           ("max_length", "length <=")):
            value = getattr(m, attr, None)
            if value is not None:
                parts.append(f"{sign} {value}")
        if getattr(m, "pattern", None):
            parts.append(f"pattern `{m.pattern}`")
    return ", ".join(p for p in parts if p)


def default_text(info: FieldInfo) -> str:
    """The default as the YAML a researcher would write (``required`` when there is none)."""
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    text = json.dumps(value, separators=(", ", ": "))
    return f"`{text}`" if len(text) <= 60 else f"`{text[:57]}...`"


def describe(model: type[BaseModel], name: str, info: FieldInfo) -> str | None:
    """The meaning of a field: its description, else :data:`FIELD_DOCS` (None when neither)."""
    return info.description or FIELD_DOCS.get(f"{model.__name__}.{name}")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def reference_markdown() -> str:
    """The whole reference, as Markdown."""
    lines = [
        "# Study spec reference",
        "",
        "Every field of a study spec (`follicle run`, `follicle cohorts`), generated from the pydantic models",
        "of `follicle.study.spec` by `follicle.study.reference`; do not edit by hand. Regenerate after a",
        "change to the models with:",
        "",
        "```bash",
        ".venv/bin/python -m follicle.study.reference --write docs/spec-reference.md",
        "```",
        "",
        "A spec is YAML or JSON; unknown fields are errors, and every problem is reported at once with",
        "its path (`cohorts.jaki.entry.concept_set: ...`). Bundled examples: `studies/*.yaml`. A *name*",
        "(of the study, a concept set, cohort, outcome or comparison) is lower case letters, digits and `_`,",
        "starting with a letter, at most 40 characters.",
        "",
        "Sections: " + ", ".join(f"[{m.__name__}](#{m.__name__.lower()})" for m, _ in models()),
    ]
    for model, path in models():
        doc = inspect.cleandoc(model.__doc__ or "").split("\n\nAttributes\n", 1)[0].split("\n\nExamples\n", 1)[0]
        doc = doc.replace("``", "`")
        lines += ["", f"## {model.__name__}", "", f"Where: `{path}`" if path != "(top level)" else "Where: the top level",
                  "", doc, "", "| field | type | default | meaning |", "|---|---|---|---|"]
        for name, info in model.model_fields.items():
            meaning = describe(model, name, info) or "(undocumented)"
            lines.append(f"| `{name}` | {_cell(type_text(info.annotation, list(info.metadata)))} | "
                         f"{_cell(default_text(info))} | {_cell(meaning)} |")
    return "\n".join(lines) + "\n"


def undocumented() -> list[str]:
    """``Model.field`` of every field without a meaning."""
    return [f"{m.__name__}.{n}" for m, _ in models() for n, i in m.model_fields.items() if not describe(m, n, i)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m follicle.study.reference", description=__doc__.split("\n")[0])
    parser.add_argument("--write", metavar="PATH", help="write the reference to PATH (default: print it)")
    args = parser.parse_args(argv)
    text = reference_markdown()
    if args.write:
        path = Path(args.write)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    else:
        sys.stdout.write(text)
    missing = undocumented()
    if missing:
        print(f"fields without a meaning (add Field(description=...) or a FIELD_DOCS entry): {', '.join(missing)}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
