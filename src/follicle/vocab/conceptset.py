"""Concept sets as data: what a researcher writes, before it is resolved against a vocabulary.

A concept set lists codes the way researchers think of them (ICD-10-CM ``L63``, an RxNorm
ingredient by name or RXCUI, an ATC class, a LOINC code, or an OMOP concept id) and is resolved
into the concept ids of the CDM at hand by :mod:`follicle.vocab.resolve`.

In YAML an entry may be written in full (``{vocabulary: ICD10CM, code: L63}``) or as the
shorthand ``"ICD10CM:L63"``; append ``"!"`` (``"ICD10CM:L63!"``) to take the code alone
without its children or descendants.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Vocabulary = Literal["ICD10CM", "RxNorm", "ATC", "LOINC", "OMOP"]
Domain = Literal["condition", "drug", "measurement", "procedure", "observation"]

#: The CDM domain each source vocabulary is matched in (OMOP ids need an explicit domain).
VOCABULARY_DOMAIN: dict[str, str] = {
    "ICD10CM": "condition",
    "RxNorm": "drug",
    "ATC": "drug",
    "LOINC": "measurement",
}

_ICD10CM = re.compile(r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$")
_ATC = re.compile(r"^[A-Z]([0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?)?$")
_LOINC = re.compile(r"^[0-9]{1,7}-[0-9]$")
_ALIASES = {v.lower(): v for v in ("ICD10CM", "RxNorm", "ATC", "LOINC", "OMOP")}
_ALIASES.update({"icd10": "ICD10CM", "icd-10-cm": "ICD10CM", "concept_id": "OMOP", "rxcui": "RxNorm"})


def normalise_icd10(code: str) -> str:
    """An ICD-10-CM code upper-cased without its dot (``"l63.0"`` -> ``"L630"``), for matching."""
    return code.strip().upper().replace(".", "")


def expand_icd10_range(code: str) -> list[str]:
    """Expand a category range ``"F30-F39"`` into its categories; a single code is returned as is.

    Only ranges within one letter and over 3-character categories are accepted
    (the way ICD-10-CM blocks are written).
    """
    code = code.strip().upper()
    if "-" not in code:
        return [code]
    lo, hi = (c.strip() for c in code.split("-", 1))
    if not (re.fullmatch(r"[A-Z][0-9]{2}", lo) and re.fullmatch(r"[A-Z][0-9]{2}", hi) and lo[0] == hi[0]):
        raise ValueError(f"an ICD-10-CM range must join two categories of one letter, e.g. F30-F39; got {code!r}")
    a, b = int(lo[1:]), int(hi[1:])
    if b < a:
        raise ValueError(f"an ICD-10-CM range must run upwards; got {code!r}")
    return [f"{lo[0]}{n:02d}" for n in range(a, b + 1)]


class ConceptEntry(BaseModel):
    """One code in a concept set.

    ``descendants`` takes ICD-10-CM children (``L63`` covers ``L63.0``-``L63.9``), and for the
    other vocabularies the descendants through ``concept_ancestor`` (without it, through the routes
    of :mod:`follicle.vocab.source`: relationships, RxNorm drug names, ATC codes, ``drug_strength``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    vocabulary: Vocabulary
    code: str = Field(min_length=1)
    descendants: bool = True

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, int) and not isinstance(data, bool):
            return {"vocabulary": "OMOP", "code": str(data)}
        if isinstance(data, str):
            if ":" not in data:
                raise ValueError(f"write a code as VOCABULARY:CODE (e.g. ICD10CM:L63); got {data!r}")
            vocab, code = data.split(":", 1)
            descendants = not code.endswith("!")
            vocab_name = _ALIASES.get(vocab.strip().lower(), vocab.strip())
            return {"vocabulary": vocab_name, "code": code.rstrip("!").strip(), "descendants": descendants}
        return data

    @model_validator(mode="after")
    def _check_code(self) -> ConceptEntry:
        code = self.code.strip()
        if self.vocabulary == "ICD10CM":
            parts = expand_icd10_range(code) if "-" in code else [code.upper()]
            for part in parts:
                if not _ICD10CM.match(part):
                    raise ValueError(f"not an ICD-10-CM code: {code!r}")
        elif self.vocabulary == "ATC" and not _ATC.match(code.upper()):
            raise ValueError(f"not an ATC code: {code!r}")
        elif self.vocabulary == "LOINC" and not _LOINC.match(code):
            raise ValueError(f"not a LOINC code (digits-checkdigit, e.g. 718-7): {code!r}")
        elif self.vocabulary == "OMOP" and not code.isdigit():
            raise ValueError(f"an OMOP concept id must be a positive integer; got {code!r}")
        return self

    def label(self) -> str:
        """The shorthand form, for messages."""
        return f"{self.vocabulary}:{self.code}{'' if self.descendants else '!'}"


class ConceptSet(BaseModel):
    """Codes that together define one clinical idea, matched in one CDM domain.

    Attributes
    ----------
    description : str
        Free text.
    domain : {"condition", "drug", "measurement", "procedure", "observation"}, optional
        Where events are looked for; inferred from the vocabularies (required for OMOP ids alone).
    include, exclude : list of ConceptEntry
        Codes as ``VOCABULARY:CODE`` (``ICD10CM:L63``, ``RxNorm:baricitinib``, ``ATC:N06A``,
        ``LOINC:718-7``, ``OMOP:141933``); a trailing ``!`` takes the code without descendants.

    Examples
    --------
    >>> cs = ConceptSet(include=["ICD10CM:L63"], exclude=["ICD10CM:L63.8!"])
    >>> cs.domain, cs.exclude[0].descendants
    ('condition', False)
    """

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    domain: Domain | None = None
    include: list[ConceptEntry] = Field(default_factory=list)
    exclude: list[ConceptEntry] = Field(default_factory=list)

    @field_validator("include", "exclude", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, int, dict)) else value

    @model_validator(mode="after")
    def _infer_domain(self) -> ConceptSet:
        domains = {VOCABULARY_DOMAIN[e.vocabulary] for e in self.include if e.vocabulary in VOCABULARY_DOMAIN}
        if self.domain is None:
            if len(domains) > 1:
                raise ValueError(f"codes from several domains ({', '.join(sorted(domains))}); split the set")
            if not domains and self.include:
                raise ValueError("domain is required when only OMOP concept ids are listed")
            self.domain = next(iter(domains), None)  # type: ignore[assignment]
        elif domains - {self.domain}:
            raise ValueError(f"domain is {self.domain!r} but the codes belong to {', '.join(sorted(domains))}")
        return self
