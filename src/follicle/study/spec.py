"""The study specification: pydantic models that round-trip YAML and JSON.

A study is data: concept sets, cohorts, outcomes, time at risk, covariates, comparisons and
analysis settings. Execution settings (paths, threads, connections) are not part of it. All
problems of a spec are reported at once, each naming its field (see :mod:`follicle.study.validate`
for the rules that relate fields to each other).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from follicle.textinput import load_data
from follicle.errors import InputError, SpecError
from follicle.study.settings import AnalysisSettings
from follicle.vocab.conceptset import ConceptSet

Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]
Days = Annotated[int, Field(ge=0, le=1_000_000)]


#: An OMOP concept id: the CDM's INTEGER column (local concepts from 2,000,000,000 included).
ConceptId = Annotated[int, Field(ge=0, le=2_147_483_647)]
#: A day offset (may be negative): bounded so that no value overflows the database's integer types.
Offset = Annotated[int, Field(ge=-1_000_000, le=1_000_000)]
#: A day offset on or before index (the start of a covariate window), bounded as :data:`Offset`.
PastOffset = Annotated[int, Field(ge=-1_000_000, le=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Window(_Model):
    """Days relative to the index date, both ends inclusive; ``None`` leaves that end open."""

    start: Offset | None = None
    end: Offset | None = 0


class Criterion(_Model):
    """At least one event of a concept set (or membership of another cohort) in a window."""

    concept_set: Name | None = None
    cohort: Name | None = None
    window: Window = Field(default_factory=lambda: Window(start=None, end=-1))


class EntryEvent(_Model):
    """The index event: the first event of ``concept_set`` (first exposure or first diagnosis)."""

    concept_set: Name
    occurrence: Literal["first"] = "first"


class MinExposures(_Model):
    """At least ``count`` exposures (distinct days) to the entry concept set within ``window``."""

    count: int = Field(2, ge=1)
    window: Window = Field(default_factory=lambda: Window(start=0, end=None))


class RouteFilter(_Model):
    """Which drug exposures count as entry exposures.

    ``include`` keeps only these ``route_concept_id`` values, ``exclude`` drops them, and
    ``exclude_concept_set`` drops exposures to those drug concepts (e.g. a topical dose form).
    Exposures with an unknown route (0 or NULL) are kept unless ``keep_unknown`` is false.
    """

    include: list[ConceptId] = Field(default_factory=list)
    exclude: list[ConceptId] = Field(default_factory=list)
    exclude_concept_set: Name | None = None
    keep_unknown: bool = True


class AgeRange(_Model):
    """Age at index in whole years (year of index minus year of birth, the OHDSI convention)."""

    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)


class AtlasCohort(_Model):
    """A cohort given as an OHDSI ATLAS (Circe) definition: ``path`` of the JSON file (relative to
    the spec's folder) and the ``definition`` read from it when the spec is loaded, so that the
    spec, its hash and its results carry the definition itself (see :mod:`follicle.study.atlas`)."""

    path: str = Field(description="The Circe JSON file (as ATLAS exports it), relative to the spec's folder.")
    definition: dict[str, Any] | None = Field(
        None, description="The Circe definition read from `path` when the spec is loaded (kept so that the spec, "
                          "its hash and its results carry the definition itself).")

    @model_validator(mode="before")
    @classmethod
    def _from_path(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, str):
            data = {"path": data}
        if isinstance(data, dict) and data.get("definition") is None and isinstance(data.get("path"), str):
            from follicle.study.atlas.model import load_definition

            base = Path((info.context or {}).get("spec_dir", "."))
            path = Path(data["path"]) if Path(data["path"]).is_absolute() else base / data["path"]
            if not path.is_file():
                raise ValueError(f"ATLAS definition file not found: {path}")
            try:
                data = {**data, "definition": load_definition(path).dump()}
            except SpecError as exc:
                raise ValueError(exc.render()) from None
        return data

    @field_validator("definition")
    @classmethod
    def _valid(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        from follicle.study.atlas.model import parse_definition

        if value is not None:
            try:
                return parse_definition(value).dump()
            except SpecError as exc:
                raise ValueError(exc.render()) from None
        return value


class CohortSpec(_Model):
    """A cohort: entry event, then inclusion and exclusion steps, each counted in the attrition;
    or an ATLAS definition (``atlas: path/to/def.json``), whose first entry per person is the index.

    The cohort end (used by a time at risk anchored on ``cohort_end``) is the end of the exposure era
    that holds the index, as ATLAS's "end of continuous exposure" builds it: entry exposures are
    chained while the next starts within ``exposure_gap_days`` (the persistence window) of the
    latest end so far, and ``surveillance_days`` are added to the era's last exposure end.
    """

    description: str = ""
    entry: EntryEvent | None = None
    atlas: AtlasCohort | None = Field(
        None, description="Instead of `entry` and the steps: an OHDSI ATLAS (Circe) definition, `atlas: path/to/def.json`; "
                          "each person's first cohort entry is the index date (see docs/atlas.md).")
    route: RouteFilter | None = None
    prior_observation_days: Days = 0
    washout_days: Days | None = None
    washout_concept_sets: list[Name] = Field(default_factory=list)
    min_exposures: MinExposures | None = None
    require: list[Criterion] = Field(default_factory=list)
    age: AgeRange | None = None
    exclude: list[Criterion] = Field(default_factory=list)
    exposure_gap_days: Days = 30
    surveillance_days: Days = 0

    @model_validator(mode="after")
    def _entry_or_atlas(self) -> CohortSpec:
        if (self.entry is None) == (self.atlas is None):
            raise ValueError("a cohort has either an entry event (entry) or an ATLAS definition (atlas), exactly one")
        if self.atlas is not None:
            steps = ("route", "prior_observation_days", "washout_days", "washout_concept_sets", "min_exposures",
                     "require", "age", "exclude")
            fields = type(self).model_fields
            given = [f for f in steps if getattr(self, f) != fields[f].get_default(call_default_factory=True)]
            if given:
                raise ValueError(f"an ATLAS cohort takes its steps from its definition; remove {', '.join(sorted(given))}")
        return self


class OutcomeSpec(_Model):
    """An outcome: its first event in the time at risk; people with an event before the time at
    risk (within ``prior_lookback_days``, all history when None) are flagged ``<name>_prior`` and
    belong out of that outcome's analysis."""

    concept_set: Name
    description: str = ""
    prior_lookback_days: Days | None = None


Anchor = Literal["index", "cohort_start", "cohort_end"]


class TimeAtRisk(_Model):
    """Start and end of follow-up, as CohortMethod's ``createStudyPopulation`` states them.

    ``start = anchor + start_offset`` and ``end = anchor + end_offset`` (days), the anchor being
    the cohort start (``index`` or, in CohortMethod's words, ``cohort_start``: the index date) or
    the ``cohort_end`` (see :class:`CohortSpec`). The end is censored at the end of the observation
    period, at death and at ``start + max_follow_up_days``; people with fewer than
    ``min_days_at_risk`` days between start and end (``end - start``, CohortMethod's rule) are
    removed. Follow-up is counted in days with both ends included (``end - start + 1``), see
    docs/time-at-risk.md.
    """

    start_offset: Offset = 1
    start_anchor: Anchor = "index"
    end_offset: Offset = 99999
    end_anchor: Anchor = "index"
    censor_at_observation_end: bool = True
    censor_at_death: bool = True
    max_follow_up_days: Annotated[int, Field(gt=0)] | None = None
    min_days_at_risk: Days = 1


CovariateDomain = Literal["condition", "drug", "procedure", "measurement"]


class DefaultCovariates(_Model):
    """The default covariate set, as OHDSI FeatureExtraction's ``createDefaultCovariateSettings``
    (simplified): sex, 5-year age group and index year; and every condition, drug ingredient,
    procedure and measurement concept with a record in the long-term (``long_term_start_days`` ..
    ``end_days``) and short-term (``short_term_start_days`` .. ``end_days``) windows around index,
    one 0/1 covariate per concept and window. Drugs are rolled up to their ingredients through
    ``concept_ancestor`` (the drug concept itself when it has none) and count when the exposure
    overlaps the window. The concepts of the compared cohorts' entry concept sets (with their
    descendants) and of ``excluded_concept_sets`` are left out automatically (an ATLAS cohort has no
    entry concept set: list its drugs in ``excluded_concept_sets``). Computed in the database; the
    propensity model gets them as a sparse matrix.
    """

    demographics: bool = True
    domains: list[CovariateDomain] = Field(default_factory=lambda: ["condition", "drug", "procedure", "measurement"])
    long_term_start_days: PastOffset = -365
    short_term_start_days: PastOffset = -30
    end_days: Offset = 0
    excluded_concept_sets: list[Name] = Field(default_factory=list)


class CovariateSpec(_Model):
    """Covariates for the propensity model.

    ``demographics`` adds age and sex; ``concept_sets`` adds one 0/1 column per set (any event in
    ``window``); ``default_set`` adds the FeatureExtraction-like default set (see
    :class:`DefaultCovariates`; ``true`` for its defaults); ``all_conditions`` / ``all_drugs`` add
    every condition / drug concept in ``window`` as sparse features (the compared drugs left out).
    """

    demographics: bool = True
    concept_sets: list[Name] = Field(default_factory=list)
    window: Window = Field(default_factory=lambda: Window(start=-365, end=0))
    default_set: DefaultCovariates | None = None
    all_conditions: bool = False
    all_drugs: bool = False

    @field_validator("default_set", mode="before")
    @classmethod
    def _true_means_defaults(cls, value: Any) -> Any:
        if value is True:
            return {}
        return None if value is False else value


class ComparisonSpec(_Model):
    """Target vs comparator cohort, the outcomes to estimate, and negative-control outcomes.

    ``overlap`` says what happens to people in both cohorts: ``exclude`` drops them;
    ``first_exposure`` keeps them in the cohort they entered first (same-day entries dropped).
    """

    target: Name
    comparator: Name
    outcomes: list[Name] = Field(default_factory=list)
    negative_controls: list[Name] = Field(default_factory=list)
    overlap: Literal["exclude", "first_exposure"] = "exclude"


class StudySpec(_Model):
    """A comparative cohort study, as data (round-trips YAML and JSON; every field in
    ``docs/spec-reference.md``).

    Attributes
    ----------
    name : str
        Identifier (lower case, digits, underscores).
    concept_sets : dict of str to ConceptSet
        The codes of each clinical idea.
    cohorts : dict of str to CohortSpec
        Entry event and inclusion steps of each cohort.
    outcomes : dict of str to OutcomeSpec
        Outcomes, by name.
    time_at_risk, covariates, analysis
        Follow-up, propensity covariates and statistical settings.
    comparisons : dict of str to ComparisonSpec
        Target vs comparator cohorts with their outcomes and negative controls.
    min_cell_count : int
        Counts from 1 to ``min_cell_count - 1`` leave the machine as ``"<min_cell_count"``.

    Examples
    --------
    >>> spec = StudySpec.model_validate({
    ...     "name": "demo",
    ...     "concept_sets": {"bari": {"include": ["RxNorm:baricitinib"]},
    ...                      "mtx": {"include": ["RxNorm:methotrexate"]}},
    ...     "cohorts": {"bari": {"entry": {"concept_set": "bari"}}, "mtx": {"entry": {"concept_set": "mtx"}}},
    ...     "comparisons": {"bari_vs_mtx": {"target": "bari", "comparator": "mtx"}}})
    >>> spec.time_at_risk.end_anchor, spec.min_cell_count
    ('index', 10)
    """

    name: Name
    description: str = ""
    concept_sets: dict[Name, ConceptSet]
    cohorts: dict[Name, CohortSpec]
    outcomes: dict[Name, OutcomeSpec] = Field(default_factory=dict)
    time_at_risk: TimeAtRisk = Field(default_factory=TimeAtRisk)
    covariates: CovariateSpec = Field(default_factory=CovariateSpec)
    comparisons: dict[Name, ComparisonSpec]
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)
    min_cell_count: int = Field(10, ge=1)

    @model_validator(mode="wrap")
    @classmethod
    def _every_problem(cls, data: Any, handler: Any) -> StudySpec:
        from follicle.study.validate import combine, cross_field_problems

        cross = cross_field_problems(data)
        try:
            spec = handler(data)
        except ValidationError as exc:
            raise combine(exc.errors(), cross) from None
        if cross:
            raise combine([], cross)
        return spec

    # -- serialisation --------------------------------------------------------------------------
    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)

    @classmethod
    def from_yaml(cls, text: str) -> StudySpec:
        return cls.model_validate(yaml.safe_load(text))

    @classmethod
    def from_json(cls, text: str) -> StudySpec:
        return cls.model_validate_json(text)


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a study spec from a YAML or JSON file.

    Parameters
    ----------
    path : str or Path
        A ``.yaml``/``.yml`` or ``.json`` file.

    Returns
    -------
    StudySpec
        The validated spec.

    Raises
    ------
    SpecError
        Every problem at once, each naming its field (``cohorts.jaki.entry.concept_set: ...``).
    """
    path = Path(path)
    try:
        data = load_data(path, what="study spec")
    except InputError as exc:
        raise SpecError(str(exc)) from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a study spec is a mapping of fields; got {type(data).__name__}")
    return parse_spec(data, source=str(path), spec_dir=path.parent)


def parse_spec(data: dict[str, Any], *, source: str = "study spec", spec_dir: Path | None = None) -> StudySpec:
    """Validate *data* (a spec as Python dicts and lists) as a :class:`StudySpec`.

    Parameters
    ----------
    data : dict
        The spec, as YAML would give it.
    source : str
        What to call it in messages.
    spec_dir : Path, optional
        Folder that relative paths (ATLAS definitions) are read from; the working folder if None.

    Returns
    -------
    StudySpec
        The validated spec.

    Raises
    ------
    SpecError
        Every problem at once, each naming its field.
    """
    try:
        return StudySpec.model_validate(data, context={"spec_dir": str(spec_dir or ".")})
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()]
        raise SpecError(f"{source}: {len(problems)} problem(s)", problems=problems) from None
