"""The building blocks of Circe definitions: the base model (Circe's key spelling, unknown
non-empty keys refused, keys matched case-insensitively), concepts and concept sets, ranges,
windows and occurrence counts. See :mod:`follicle.study.atlas.model`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


class _Circe(BaseModel):
    """Base: Circe's key spelling, unknown non-empty keys refused, keys matched case-insensitively."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _normalise_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        names: dict[str, str] = {}
        for name, f in cls.model_fields.items():
            for alias in (name, f.alias or name):
                names[alias.lower()] = f.alias or name
        out: dict[str, Any] = {}
        for key, value in data.items():
            canonical = names.get(str(key).lower())
            if canonical is None:
                if _empty(value):
                    continue  # an empty unknown element has no effect (e.g. "ProviderSpecialty": [])
                out[key] = value  # refused by extra="forbid", with its path
            else:
                out[canonical] = value
        return out

    def dump(self) -> dict[str, Any]:
        """Circe JSON (aliases, empty parts left out)."""
        return self.model_dump(by_alias=True, exclude_none=True)


def _f(alias: str, default: Any = ..., **kw: Any) -> Any:
    """A field under Circe's key *alias*; without a default it is required."""
    if "default_factory" in kw:
        return Field(alias=alias, validation_alias=AliasChoices(alias), **kw)
    return Field(default, alias=alias, validation_alias=AliasChoices(alias), **kw)


# -- vocabulary ---------------------------------------------------------------------------------
class Concept(BaseModel):
    """A concept of a concept set or a filter list; only ``CONCEPT_ID`` has meaning, the names,
    codes and vocabulary are descriptions ATLAS keeps (and so does Follicle, unread)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)
    concept_id: int = Field(alias="CONCEPT_ID")
    concept_name: str | None = Field(None, alias="CONCEPT_NAME")

    @model_validator(mode="before")
    @classmethod
    def _upper(cls, data: Any) -> Any:
        return {str(k).upper(): v for k, v in data.items()} if isinstance(data, dict) else data


class ConceptSetItem(_Circe):
    concept: Concept = _f("concept")
    is_excluded: bool = _f("isExcluded", False)
    include_descendants: bool = _f("includeDescendants", False)
    include_mapped: bool = _f("includeMapped", False)


class ConceptSetExpression(_Circe):
    items: list[ConceptSetItem] = _f("items", default_factory=list)


class ConceptSet(_Circe):
    id: int = _f("id")
    name: str = _f("name", "")
    expression: ConceptSetExpression = _f("expression", default_factory=ConceptSetExpression)


# -- ranges and windows -------------------------------------------------------------------------
RangeOp = Literal["lt", "lte", "eq", "!eq", "gt", "gte", "bt", "!bt"]


class NumericRange(_Circe):
    value: float = _f("Value")
    op: RangeOp = _f("Op")
    extent: float | None = _f("Extent", None)

    @model_validator(mode="after")
    def _between_has_extent(self) -> NumericRange:
        if self.op.endswith("bt") and self.extent is None:
            raise ValueError(f"Op {self.op!r} needs an Extent")
        return self


class DateRange(_Circe):
    value: str = _f("Value", pattern=r"^\d{4}-\d{2}-\d{2}$")
    op: RangeOp = _f("Op")
    extent: str | None = _f("Extent", None, pattern=r"^\d{4}-\d{2}-\d{2}$")

    @model_validator(mode="after")
    def _between_has_extent(self) -> DateRange:
        if self.op.endswith("bt") and self.extent is None:
            raise ValueError(f"Op {self.op!r} needs an Extent")
        return self


class DateAdjustment(_Circe):
    @model_validator(mode="before")
    @classmethod
    def _upper(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {k: (v.upper() if str(k).lower().endswith("with") and isinstance(v, str) else v) for k, v in data.items()}
        return data

    start_with: Literal["START_DATE", "END_DATE"] = _f("StartWith", "START_DATE")
    start_offset: int = _f("StartOffset", 0)
    end_with: Literal["START_DATE", "END_DATE"] = _f("EndWith", "END_DATE")
    end_offset: int = _f("EndOffset", 0)


class Endpoint(_Circe):
    """A window end: ``Days`` (None: unbounded, i.e. the observation period's edge) times ``Coeff``."""

    days: int | None = _f("Days", None)
    coeff: int = _f("Coeff", 1)
    time_unit: Literal["day"] = _f("TimeUnit", "day")
    time_unit_value: int | None = _f("TimeUnitValue", None)

    @model_validator(mode="after")
    def _unit_days(self) -> Endpoint:
        if self.time_unit_value is not None and self.days is None:
            object.__setattr__(self, "days", self.time_unit_value)
        return self


class Window(_Circe):
    start: Endpoint = _f("Start")
    end: Endpoint = _f("End")
    use_index_end: bool | None = _f("UseIndexEnd", None)
    use_event_end: bool | None = _f("UseEventEnd", None)


class Occurrence(_Circe):
    """0 exactly, 1 at most, 2 at least ``Count`` events (distinct values of ``CountColumn``)."""

    type: Literal[0, 1, 2] = _f("Type", 2)
    count: int = _f("Count", 1, ge=0)
    is_distinct: bool = _f("IsDistinct", False)
    count_column: Literal["DOMAIN_CONCEPT", "START_DATE", "VISIT_ID"] | None = _f("CountColumn", None)


class ConceptSetSelection(_Circe):
    codeset_id: int = _f("CodesetId")
    is_exclusion: bool = _f("IsExclusion", False)
