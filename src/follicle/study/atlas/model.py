"""OHDSI Circe cohort definitions (the JSON that ATLAS exports) as pydantic data.

Only what the compiler implements is declared. A key that is not declared is refused by its JSON
path (``$.PrimaryCriteria.CriteriaList[0].ConditionOccurrence.ProviderSpecialty``) unless its
value is empty (null, ``[]``, ``{}``), which has no effect in Circe either; nothing that changes a
cohort is ever ignored. Keys are matched case-insensitively, so that the PascalCase and camelCase
spellings of a key both read.

References
----------
OHDSI circe-be, ``org.ohdsi.circe.cohortdefinition`` (CohortExpression, Criteria, Window,
Occurrence, CriteriaGroup, EndStrategy) -- the definition of the format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from follicle.errors import SpecError
from follicle.study.atlas.values import (  # noqa: F401 - the vocabulary of the model, re-exported
    Concept,
    ConceptSet,
    ConceptSetExpression,
    ConceptSetItem,
    ConceptSetSelection,
    DateAdjustment,
    DateRange,
    Endpoint,
    NumericRange,
    Occurrence,
    RangeOp,
    Window,
    _Circe,
    _f,
)


# -- criteria -----------------------------------------------------------------------------------
Concepts = list[Concept]


class _Criterion(_Circe):
    """Fields every domain criterion of Circe has."""

    codeset_id: int | None = _f("CodesetId", None)
    first: bool | None = _f("First", None)
    correlated_criteria: CriteriaGroup | None = _f("CorrelatedCriteria", None)
    gender: Concepts | None = _f("Gender", None)
    gender_cs: ConceptSetSelection | None = _f("GenderCS", None)


class _Adjustable(_Criterion):
    """A criterion whose event dates Circe can shift (``DateAdjustment``)."""

    date_adjustment: DateAdjustment | None = _f("DateAdjustment", None)


class _Occurrence(_Criterion):
    age: NumericRange | None = _f("Age", None)
    occurrence_start_date: DateRange | None = _f("OccurrenceStartDate", None)
    occurrence_end_date: DateRange | None = _f("OccurrenceEndDate", None)


class ConditionOccurrence(_Occurrence, _Adjustable):
    condition_type: Concepts | None = _f("ConditionType", None)
    condition_type_exclude: bool = _f("ConditionTypeExclude", False)
    condition_source_concept: int | None = _f("ConditionSourceConcept", None)
    condition_status: Concepts | None = _f("ConditionStatus", None)


class DrugExposure(_Occurrence, _Adjustable):
    drug_type: Concepts | None = _f("DrugType", None)
    drug_type_exclude: bool = _f("DrugTypeExclude", False)
    drug_source_concept: int | None = _f("DrugSourceConcept", None)
    route_concept: Concepts | None = _f("RouteConcept", None)
    refills: NumericRange | None = _f("Refills", None)
    quantity: NumericRange | None = _f("Quantity", None)
    days_supply: NumericRange | None = _f("DaysSupply", None)


class ProcedureOccurrence(_Occurrence):
    procedure_type: Concepts | None = _f("ProcedureType", None)
    procedure_type_exclude: bool = _f("ProcedureTypeExclude", False)
    procedure_source_concept: int | None = _f("ProcedureSourceConcept", None)
    modifier: Concepts | None = _f("Modifier", None)
    quantity: NumericRange | None = _f("Quantity", None)


class Measurement(_Occurrence, _Adjustable):
    measurement_type: Concepts | None = _f("MeasurementType", None)
    measurement_type_exclude: bool = _f("MeasurementTypeExclude", False)
    measurement_source_concept: int | None = _f("MeasurementSourceConcept", None)
    operator: Concepts | None = _f("Operator", None)
    value_as_number: NumericRange | None = _f("ValueAsNumber", None)
    value_as_concept: Concepts | None = _f("ValueAsConcept", None)
    unit: Concepts | None = _f("Unit", None)
    range_low: NumericRange | None = _f("RangeLow", None)
    range_high: NumericRange | None = _f("RangeHigh", None)


class Observation(_Occurrence):
    observation_type: Concepts | None = _f("ObservationType", None)
    observation_type_exclude: bool = _f("ObservationTypeExclude", False)
    observation_source_concept: int | None = _f("ObservationSourceConcept", None)
    value_as_number: NumericRange | None = _f("ValueAsNumber", None)
    value_as_concept: Concepts | None = _f("ValueAsConcept", None)
    unit: Concepts | None = _f("Unit", None)
    qualifier: Concepts | None = _f("Qualifier", None)


class VisitOccurrence(_Occurrence, _Adjustable):
    visit_type: Concepts | None = _f("VisitType", None)
    visit_type_exclude: bool = _f("VisitTypeExclude", False)
    visit_source_concept: int | None = _f("VisitSourceConcept", None)
    visit_length: NumericRange | None = _f("VisitLength", None)


class Death(_Criterion):
    age: NumericRange | None = _f("Age", None)
    occurrence_start_date: DateRange | None = _f("OccurrenceStartDate", None)
    death_type: Concepts | None = _f("DeathType", None)
    death_type_exclude: bool = _f("DeathTypeExclude", False)
    death_source_concept: int | None = _f("DeathSourceConcept", None)

    @model_validator(mode="after")
    def _no_first(self) -> Death:
        if self.first:
            raise ValueError("a Death criterion has no First (a person dies once)")
        return self


class _Era(_Adjustable):
    era_start_date: DateRange | None = _f("EraStartDate", None)
    era_end_date: DateRange | None = _f("EraEndDate", None)
    occurrence_count: NumericRange | None = _f("OccurrenceCount", None)
    era_length: NumericRange | None = _f("EraLength", None)
    age_at_start: NumericRange | None = _f("AgeAtStart", None)
    age_at_end: NumericRange | None = _f("AgeAtEnd", None)


class ConditionEra(_Era):
    pass


class DrugEra(_Era):
    pass


class ObservationPeriod(_Adjustable):
    period_start_date: DateRange | None = _f("PeriodStartDate", None)
    period_end_date: DateRange | None = _f("PeriodEndDate", None)
    period_type: Concepts | None = _f("PeriodType", None)
    period_length: NumericRange | None = _f("PeriodLength", None)
    age_at_start: NumericRange | None = _f("AgeAtStart", None)
    age_at_end: NumericRange | None = _f("AgeAtEnd", None)

    @model_validator(mode="after")
    def _no_codeset(self) -> ObservationPeriod:
        # Circe's ObservationPeriod has no CodesetId, Gender or GenderCS
        given = [k for k, v in (("CodesetId", self.codeset_id), ("Gender", self.gender), ("GenderCS", self.gender_cs)) if v]
        if given:
            raise ValueError(f"an ObservationPeriod criterion has no {', '.join(given)}")
        return self


DOMAIN_CLASSES: dict[str, type[_Criterion]] = {
    "ConditionOccurrence": ConditionOccurrence,
    "DrugExposure": DrugExposure,
    "ProcedureOccurrence": ProcedureOccurrence,
    "Measurement": Measurement,
    "Observation": Observation,
    "VisitOccurrence": VisitOccurrence,
    "Death": Death,
    "ConditionEra": ConditionEra,
    "DrugEra": DrugEra,
    "ObservationPeriod": ObservationPeriod,
}


class Criterion(_Circe):
    """One Circe criterion: an object with exactly one key, the domain."""

    condition_occurrence: ConditionOccurrence | None = _f("ConditionOccurrence", None)
    drug_exposure: DrugExposure | None = _f("DrugExposure", None)
    procedure_occurrence: ProcedureOccurrence | None = _f("ProcedureOccurrence", None)
    measurement: Measurement | None = _f("Measurement", None)
    observation: Observation | None = _f("Observation", None)
    visit_occurrence: VisitOccurrence | None = _f("VisitOccurrence", None)
    death: Death | None = _f("Death", None)
    condition_era: ConditionEra | None = _f("ConditionEra", None)
    drug_era: DrugEra | None = _f("DrugEra", None)
    observation_period: ObservationPeriod | None = _f("ObservationPeriod", None)

    @model_validator(mode="before")
    @classmethod
    def _one_domain(cls, data: Any) -> Any:
        if isinstance(data, dict):
            # "{"ObservationPeriod": {}}" is a criterion (any period): keep empty domain objects
            return {k: ({} if v is None else v) for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> Criterion:
        set_ = [n for n in type(self).model_fields if getattr(self, n) is not None]
        if len(set_) != 1:
            raise ValueError(f"a criterion names exactly one domain; got {len(set_)}")
        return self

    @property
    def domain(self) -> str:
        return next(type(self).model_fields[n].alias for n in type(self).model_fields  # type: ignore[misc]
                    if getattr(self, n) is not None)

    @property
    def body(self) -> _Criterion:
        return next(getattr(self, n) for n in type(self).model_fields if getattr(self, n) is not None)


class CorelatedCriteria(_Circe):
    """A criterion counted in a window around the index event (Circe's spelling)."""

    criteria: Criterion = _f("Criteria")
    start_window: Window | None = _f("StartWindow", None)
    end_window: Window | None = _f("EndWindow", None)
    restrict_visit: bool = _f("RestrictVisit", False)
    ignore_observation_period: bool = _f("IgnoreObservationPeriod", False)
    occurrence: Occurrence = _f("Occurrence", default_factory=Occurrence)


class DemographicCriteria(_Circe):
    age: NumericRange | None = _f("Age", None)
    gender: Concepts | None = _f("Gender", None)
    race: Concepts | None = _f("Race", None)
    ethnicity: Concepts | None = _f("Ethnicity", None)
    occurrence_start_date: DateRange | None = _f("OccurrenceStartDate", None)
    occurrence_end_date: DateRange | None = _f("OccurrenceEndDate", None)


class CriteriaGroup(_Circe):
    type: Literal["ALL", "ANY", "AT_LEAST", "AT_MOST"] = _f("Type", "ALL")
    count: int | None = _f("Count", None)
    criteria_list: list[CorelatedCriteria] = _f("CriteriaList", default_factory=list)
    demographic_criteria_list: list[DemographicCriteria] = _f("DemographicCriteriaList", default_factory=list)
    groups: list[CriteriaGroup] = _f("Groups", default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _upper_type(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {k: (v.upper() if str(k).lower() == "type" and isinstance(v, str) else v) for k, v in data.items()}
        return data

    @property
    def is_empty(self) -> bool:
        return not (self.criteria_list or self.demographic_criteria_list or self.groups)


class InclusionRule(_Circe):
    name: str = _f("name", "")
    description: str | None = _f("description", None)
    expression: CriteriaGroup = _f("expression", default_factory=CriteriaGroup)


# -- the expression -----------------------------------------------------------------------------
LimitType = Annotated[str, Field(pattern=r"(?i)^(first|last|all)$")]


class Limit(_Circe):
    type: LimitType = _f("Type", "First")

    @property
    def kind(self) -> str:
        return self.type.upper()


class ObservationWindow(_Circe):
    prior_days: int = _f("PriorDays", 0)
    post_days: int = _f("PostDays", 0)


class PrimaryCriteria(_Circe):
    criteria_list: list[Criterion] = _f("CriteriaList", min_length=1)
    observation_window: ObservationWindow = _f("ObservationWindow", default_factory=ObservationWindow)
    primary_limit: Limit = _f("PrimaryCriteriaLimit", default_factory=Limit)


class DateOffsetStrategy(_Circe):
    date_field: Literal["StartDate", "EndDate"] = _f("DateField", "StartDate")
    offset: int = _f("Offset", 0)
    offset_unit: Literal["day"] = _f("OffsetUnit", "day")
    offset_unit_value: int | None = _f("OffsetUnitValue", None)

    @model_validator(mode="after")
    def _unit(self) -> DateOffsetStrategy:
        # circe-be 1.11+ writes OffsetUnitValue (in days when the unit is "day")
        if self.offset_unit_value is not None:
            object.__setattr__(self, "offset", self.offset_unit_value)
        return self


class CustomEraStrategy(_Circe):
    drug_codeset_id: int = _f("DrugCodesetId")
    gap_days: int = _f("GapDays", 0)
    offset: int = _f("Offset", 0)
    days_supply_override: int | None = _f("DaysSupplyOverride", None)
    gap_unit: Literal["day"] = _f("GapUnit", "day")
    gap_unit_value: int | None = _f("GapUnitValue", None)
    offset_unit: Literal["day"] = _f("OffsetUnit", "day")
    offset_unit_value: int | None = _f("OffsetUnitValue", None)

    @model_validator(mode="before")
    @classmethod
    def _units(cls, data: Any) -> Any:
        # circe-be 1.11+ writes GapUnitValue / OffsetUnitValue (in days when the unit is "day")
        if isinstance(data, dict):
            low = {str(k).lower(): k for k in data}
            for value_key, plain in (("gapunitvalue", "GapDays"), ("offsetunitvalue", "Offset")):
                if value_key in low and plain.lower() not in low and data[low[value_key]] is not None:
                    data = {**data, plain: data[low[value_key]]}
        return data


class EndStrategy(_Circe):
    date_offset: DateOffsetStrategy | None = _f("DateOffset", None)
    custom_era: CustomEraStrategy | None = _f("CustomEra", None)

    @model_validator(mode="after")
    def _one(self) -> EndStrategy:
        if self.date_offset is not None and self.custom_era is not None:
            raise ValueError("an end strategy is either DateOffset or CustomEra, not both")
        return self


class CollapseSettings(_Circe):
    collapse_type: Literal["ERA"] = _f("CollapseType", "ERA")
    era_pad: int = _f("EraPad", 0)
    era_pad_unit: Literal["day"] = _f("EraPadUnit", "day")
    era_pad_unit_value: int | None = _f("EraPadUnitValue", None)

    @model_validator(mode="after")
    def _unit(self) -> CollapseSettings:
        if self.era_pad_unit_value is not None:
            object.__setattr__(self, "era_pad", self.era_pad_unit_value)
        return self


class CensorWindow(_Circe):
    start_date: str | None = _f("StartDate", None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    end_date: str | None = _f("EndDate", None, pattern=r"^\d{4}-\d{2}-\d{2}$")


class CohortExpression(_Circe):
    """A Circe cohort definition."""

    title: str | None = _f("Title", None)
    cdm_version_range: str | None = _f("cdmVersionRange", None)
    concept_sets: list[ConceptSet] = _f("ConceptSets", default_factory=list)
    primary_criteria: PrimaryCriteria = _f("PrimaryCriteria")
    additional_criteria: CriteriaGroup | None = _f("AdditionalCriteria", None)
    qualified_limit: Limit = _f("QualifiedLimit", default_factory=Limit)
    expression_limit: Limit = _f("ExpressionLimit", default_factory=Limit)
    inclusion_rules: list[InclusionRule] = _f("InclusionRules", default_factory=list)
    end_strategy: EndStrategy | None = _f("EndStrategy", None)
    censoring_criteria: list[Criterion] = _f("CensoringCriteria", default_factory=list)
    collapse_settings: CollapseSettings = _f("CollapseSettings", default_factory=CollapseSettings)
    censor_window: CensorWindow | None = _f("CensorWindow", None)

    @model_validator(mode="after")
    def _codesets_exist(self) -> CohortExpression:
        ids = [cs.id for cs in self.concept_sets]
        if len(ids) != len(set(ids)):
            raise ValueError("concept set ids must be unique")
        missing = sorted({i for i in _codeset_refs(self.model_dump()) if i not in ids})
        if missing:
            raise ValueError(f"criteria refer to concept set id(s) {missing} that ConceptSets does not define")
        return self


def _codeset_refs(obj: Any) -> list[int]:
    """Every concept set id some criterion of a dumped expression refers to."""
    out: list[int] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ("codeset_id", "drug_codeset_id") and isinstance(v, int):
                out.append(v)
            elif k.endswith("_source_concept") and isinstance(v, int):
                out.append(v)
            else:
                out += _codeset_refs(v)
    elif isinstance(obj, list):
        for v in obj:
            out += _codeset_refs(v)
    return out


for _m in (_Criterion, _Adjustable, _Occurrence, _Era, *DOMAIN_CLASSES.values(), Criterion, CorelatedCriteria, CriteriaGroup, InclusionRule,
           PrimaryCriteria, CohortExpression):
    _m.model_rebuild()


def _json_path(loc: tuple[Any, ...]) -> str:
    path = "$"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def parse_definition(data: Any, *, source: str = "cohort definition") -> CohortExpression:
    """Validate Circe JSON data; every problem is listed with its JSON path in one :class:`SpecError`."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a Circe cohort definition is a JSON object; got {type(data).__name__}")
    if "expression" in data and "PrimaryCriteria" not in data and isinstance(data["expression"], dict):
        data = data["expression"]  # a WebAPI cohort definition wraps the expression
    try:
        return CohortExpression.model_validate(data)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            path = _json_path(tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-"))))
            if e["type"] == "extra_forbidden":
                problems.append(f"{path}: not supported by Follicle's Circe compiler (refused, not ignored)")
            else:
                problems.append(f"{path}: {e['msg']}")
        raise SpecError(f"{source}: {len(problems)} problem(s) in the Circe definition", problems=problems) from None


def load_definition(path: str | Path) -> CohortExpression:
    """Read and validate a Circe JSON file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path}: not valid JSON: {exc}") from None
    return parse_definition(data, source=str(path))
