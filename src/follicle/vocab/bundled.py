"""The bundled vocabulary subset: every concept the synthetic world writes, as CDM tables.

Data files live in ``follicle/vocab/data`` (see its README for provenance and the local id
ranges). This module reads them once, adds reverse relationships and self ``Maps to`` rows,
computes ``concept_ancestor`` as the transitive closure of the child -> parent edges, and
offers look-ups by source code for the generator.
"""

from __future__ import annotations

import functools
from collections import deque
from importlib import resources

import pyarrow as pa
import pyarrow.csv as pacsv

from follicle.errors import InputError

VALID_START = "1970-01-01"
VALID_END = "2099-12-31"

# forward relationship -> (reverse, is_hierarchical, defines_ancestry, child->parent for ancestry)
_RELATIONSHIPS: dict[str, tuple[str, int, int]] = {
    "Maps to": ("Mapped from", 0, 0),
    "Is a": ("Subsumes", 1, 1),
    "RxNorm has ing": ("RxNorm ing of", 0, 1),
    "RxNorm has dose form": ("RxNorm dose form of", 0, 0),
    "RxNorm - ATC": ("ATC - RxNorm", 0, 1),
}

_VOCABULARIES = {
    "Gender": "OMOP Gender", "Race": "Race and Ethnicity Code Set (USBC)", "Ethnicity": "OMOP Ethnicity",
    "Visit": "OMOP Visit", "Type Concept": "OMOP Type Concept", "SNOMED": "Systematic Nomenclature of Medicine",
    "UCUM": "Unified Code for Units of Measure", "LOINC": "Logical Observation Identifiers Names and Codes",
    "ICD10CM": "International Classification of Diseases, Tenth Revision, Clinical Modification",
    "RxNorm": "RxNorm", "ATC": "WHO Anatomic Therapeutic Chemical Classification",
    "Follicle": "Follicle local concepts (concept_id >= 2,000,000,000)", "None": "OMOP Standardized Vocabularies",
}
_DOMAINS = ["Gender", "Race", "Ethnicity", "Visit", "Type Concept", "Route", "Unit", "Measurement",
            "Observation", "Procedure", "Condition", "Drug", "Metadata"]


def _read(name: str) -> pa.Table:
    path = resources.files("follicle.vocab") / "data" / name
    with path.open("rb") as fh:
        opts = pacsv.ConvertOptions(strings_can_be_null=True,
                                    column_types={"concept_code": pa.string(), "standard_concept": pa.string()})
        return pacsv.read_csv(fh, convert_options=opts)


@functools.cache
def _concept_rows() -> list[dict]:
    return _read("concept.csv").to_pylist()


@functools.cache
def _edges() -> list[tuple[int, int, str]]:
    rows = _read("concept_relationship.csv").to_pylist()
    return [(r["concept_id_1"], r["concept_id_2"], r["relationship_id"]) for r in rows]


@functools.cache
def _by_code() -> dict[tuple[str, str], int]:
    return {(r["vocabulary_id"], str(r["concept_code"])): r["concept_id"] for r in _concept_rows()}


def concept_id(vocabulary_id: str, code: str) -> int:
    """The concept id of *code* in *vocabulary_id*; raise :class:`InputError` naming it if unknown."""
    try:
        return _by_code()[(vocabulary_id, code)]
    except KeyError:
        raise InputError(f"code {code!r} of vocabulary {vocabulary_id} is not in the bundled vocabulary") from None


@functools.cache
def maps_to() -> dict[int, int]:
    """Source concept id -> standard concept id (``Maps to``)."""
    return {a: b for a, b, rel in _edges() if rel == "Maps to"}


def icd10cm(code: str) -> tuple[int, int]:
    """(source concept id, standard concept id) of an ICD-10-CM code."""
    src = concept_id("ICD10CM", code)
    return src, maps_to()[src]


@functools.cache
def ingredient_of() -> dict[int, int]:
    """Clinical drug concept id -> ingredient concept id."""
    return {a: b for a, b, rel in _edges() if rel == "RxNorm has ing"}


def names() -> dict[int, str]:
    return {r["concept_id"]: r["concept_name"] for r in _concept_rows()}


def concept_table() -> pa.Table:
    rows = _concept_rows()
    return pa.table({
        "concept_id": pa.array([r["concept_id"] for r in rows], pa.int64()),
        "concept_name": [r["concept_name"] for r in rows],
        "domain_id": [r["domain_id"] for r in rows],
        "vocabulary_id": [r["vocabulary_id"] for r in rows],
        "concept_class_id": [r["concept_class_id"] for r in rows],
        "standard_concept": [r["standard_concept"] for r in rows],
        "concept_code": [str(r["concept_code"]) for r in rows],
        "valid_start_date": pa.array([r["valid_start_date"] for r in rows], pa.date32()),
        "valid_end_date": pa.array([r["valid_end_date"] for r in rows], pa.date32()),
        "invalid_reason": pa.nulls(len(rows), pa.string()),
    })


def relationship_rows() -> list[tuple[int, int, str]]:
    """All concept_relationship rows: forward, reverse, and self ``Maps to`` of standard concepts."""
    out: list[tuple[int, int, str]] = []
    for a, b, rel in _edges():
        out.append((a, b, rel))
        out.append((b, a, _RELATIONSHIPS[rel][0]))
    for r in _concept_rows():
        if r["standard_concept"] == "S":
            out.append((r["concept_id"], r["concept_id"], "Maps to"))
            out.append((r["concept_id"], r["concept_id"], "Mapped from"))
    return out


def concept_relationship_table() -> pa.Table:
    rows = relationship_rows()
    n = len(rows)
    return pa.table({
        "concept_id_1": pa.array([r[0] for r in rows], pa.int64()),
        "concept_id_2": pa.array([r[1] for r in rows], pa.int64()),
        "relationship_id": [r[2] for r in rows],
        "valid_start_date": pa.array([VALID_START] * n, pa.string()).cast(pa.date32()),
        "valid_end_date": pa.array([VALID_END] * n, pa.string()).cast(pa.date32()),
        "invalid_reason": pa.nulls(n, pa.string()),
    })


def ancestor_rows() -> list[tuple[int, int, int, int]]:
    """(ancestor, descendant, min_levels, max_levels): closure of child -> parent edges, with self rows.

    Self rows (level 0) are written for standard and classification concepts, as in the OMOP
    vocabulary.
    """
    parents: dict[int, list[int]] = {}
    for a, b, rel in _edges():
        if _RELATIONSHIPS[rel][2]:
            parents.setdefault(a, []).append(b)
    out = []
    for r in _concept_rows():
        cid = r["concept_id"]
        if r["standard_concept"] not in ("S", "C"):
            continue
        # breadth-first over parents, tracking min and max path length
        levels: dict[int, list[int]] = {cid: [0, 0]}
        queue = deque([(cid, 0)])
        while queue:
            node, depth = queue.popleft()
            for p in parents.get(node, []):
                lo, hi = levels.get(p, [depth + 1, depth + 1])
                levels[p] = [min(lo, depth + 1), max(hi, depth + 1)]
                queue.append((p, depth + 1))
        out.extend((anc, cid, lo, hi) for anc, (lo, hi) in levels.items())
    return out


def concept_ancestor_table() -> pa.Table:
    rows = ancestor_rows()
    return pa.table({
        "ancestor_concept_id": pa.array([r[0] for r in rows], pa.int64()),
        "descendant_concept_id": pa.array([r[1] for r in rows], pa.int64()),
        "min_levels_of_separation": pa.array([r[2] for r in rows], pa.int64()),
        "max_levels_of_separation": pa.array([r[3] for r in rows], pa.int64()),
    })


def vocabulary_table() -> pa.Table:
    ids = sorted({r["vocabulary_id"] for r in _concept_rows()} | {"None"})
    return pa.table({
        "vocabulary_id": ids,
        "vocabulary_name": [_VOCABULARIES.get(v, v) for v in ids],
        "vocabulary_reference": ["Follicle bundled subset" for _ in ids],
        "vocabulary_version": ["follicle-bundled-1" for _ in ids],
        "vocabulary_concept_id": pa.array([0] * len(ids), pa.int64()),
    })


def domain_table() -> pa.Table:
    return pa.table({"domain_id": _DOMAINS, "domain_name": _DOMAINS,
                     "domain_concept_id": pa.array([0] * len(_DOMAINS), pa.int64())})


def concept_class_table() -> pa.Table:
    ids = sorted({r["concept_class_id"] for r in _concept_rows()})
    return pa.table({"concept_class_id": ids, "concept_class_name": ids,
                     "concept_class_concept_id": pa.array([0] * len(ids), pa.int64())})


def relationship_table() -> pa.Table:
    rows = []
    for fwd, (rev, hier, anc) in _RELATIONSHIPS.items():
        rows.append((fwd, hier, anc, rev))
        rows.append((rev, hier, anc, fwd))
    return pa.table({
        "relationship_id": [r[0] for r in rows], "relationship_name": [r[0] for r in rows],
        "is_hierarchical": [str(r[1]) for r in rows], "defines_ancestry": [str(r[2]) for r in rows],
        "reverse_relationship_id": [r[3] for r in rows],
        "relationship_concept_id": pa.array([0] * len(rows), pa.int64()),
    })


def vocabulary_tables() -> dict[str, pa.Table]:
    """All vocabulary tables of the subset, keyed by CDM table name."""
    return {
        "concept": concept_table(),
        "concept_relationship": concept_relationship_table(),
        "concept_ancestor": concept_ancestor_table(),
        "vocabulary": vocabulary_table(),
        "domain": domain_table(),
        "concept_class": concept_class_table(),
        "relationship": relationship_table(),
    }

