"""Follicle: an open evidence engine for JAK-inhibitor therapy in alopecia areata.

The public Python API, for a data scientist working in a notebook (walked through in
``docs/python-api.md``). Every name is imported on first use (PEP 562), so ``import follicle``
and ``follicle --help`` stay fast.

OMOP CDM
    :func:`connect`, :func:`load_cdm`, :func:`load_vocabulary`, :func:`run_checks`, :func:`summarise`
Study specs
    :class:`StudySpec`, :func:`load_spec`, :func:`parse_spec`, :class:`ConceptSet`
Cohorts and the analysis table
    :func:`resolve_concept_sets`, :func:`cohort_counts`, :class:`StudySession`, :func:`build_population`
Comparative study
    :func:`run_study`, :func:`result_tables`
Evidence synthesis
    :func:`binary_effects`, :func:`generic_effects`, :func:`meta_analysis`, :func:`evidence_profile`
Response analytics
    :func:`salt_score`, :func:`aa_iga`
Decision support
    :func:`parse_fhir_bundle`, :func:`cds_decision`
Synthetic world
    :func:`build_world`
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> "module:attribute" (imported lazily)
_API: dict[str, str] = {
    # OMOP CDM
    "connect": "follicle.cdm.connect:connect",
    "load_cdm": "follicle.cdm.load:load_cdm",
    "load_vocabulary": "follicle.cdm.vocabulary:load_vocabulary",
    "run_checks": "follicle.cdm.check:run_checks",
    "summarise": "follicle.cdm.summary:summarise",
    # study specs
    "StudySpec": "follicle.study.spec:StudySpec",
    "load_spec": "follicle.study.spec:load_spec",
    "parse_spec": "follicle.study.spec:parse_spec",
    "ConceptSet": "follicle.vocab.conceptset:ConceptSet",
    # cohorts and the analysis table
    "resolve_concept_sets": "follicle.vocab.resolve:resolve_concept_sets",
    "cohort_counts": "follicle.study.counts:cohort_counts",
    "StudySession": "follicle.study.session:StudySession",
    "build_population": "follicle.study.population:build_population",
    # comparative study
    "run_study": "follicle.run.study:run_study",
    "result_tables": "follicle.run.results:tables",
    # evidence synthesis
    "binary_effects": "follicle.synthesis.effect_sizes:binary_effects",
    "generic_effects": "follicle.synthesis.effect_sizes:generic_effects",
    "meta_analysis": "follicle.synthesis.pooling:meta_analysis",
    "evidence_profile": "follicle.synthesis.grade:evidence_profile",
    # response analytics
    "salt_score": "follicle.response.salt:salt_score",
    "aa_iga": "follicle.response.salt:aa_iga",
    # decision support
    "parse_fhir_bundle": "follicle.cds.fhir:parse_bundle",
    "cds_decision": "follicle.cds.engine:evaluate",
    # synthetic world
    "build_world": "follicle.synth.build:build_world",
}

__all__ = ["__version__", *sorted(_API)]


def _version() -> str:
    """The installed version (read from the package metadata on first use: ~0.1 s of imports)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("follicle")
    except PackageNotFoundError:  # running from a source tree without installation
        return "0.1.0"


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562) and keep it in the module namespace."""
    if name == "__version__":
        globals()[name] = value = _version()
        return value
    target = _API.get(name)
    if target is None:
        raise AttributeError(f"module 'follicle' has no attribute {name!r}")
    module, attr = target.split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
