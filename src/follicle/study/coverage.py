"""How each concept set was resolved on this CDM, and which events it could be missing.

For every concept set of a study: the concepts and persons each route found (see
:mod:`follicle.vocab.resolve`), and the event rows of the set's domain whose concept the
vocabulary cannot classify, so the set might be missing them:

* ``unknown``: the concept id is 0, NULL or absent from ``concept`` (the CDM's and the bundled
  subset), and for an ICD-10-CM set the source value is not an ICD-10-CM code either;
* ``outside hierarchy``: for a set taking descendants, a known concept whose place the vocabulary
  does not know (no ``concept_ancestor`` row; without that table, no parent in
  ``concept_relationship`` and, for drugs, no RxNorm name listing its ingredients);
* ``unmapped``: for an ICD-10-CM set, a row whose source value is not an ICD-10-CM code (an EHR
  extract coded in SNOMED) when some code of the set maps to no standard concept here, so the
  mapped route cannot decide it.

Rows the set matches are never counted as missed. Everything is computed in the database: per
domain one aggregate over the event codes, then one join of the events to their codes' flag bits,
grouped by person, with a count of persons per flag. Counts are raw here; suppress before they leave
the machine (:func:`suppressed_report`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import ibis
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from follicle.privacy import suppress_count
from follicle.study.events import (
    CODE_COLUMNS,
    DOMAINS,
    _code_match,
    _codes_table,
    generic_events,
    icd10cm_coded,
    matching_values,
    set_flags,
)
from follicle.vocab.resolve import ResolvedConceptSet, Route
from follicle.vocab.source import MAPPED

MATCHED, UNKNOWN, OUTSIDE, UNMAPPED, MISSED = "matched", "unknown concept", "outside hierarchy", "unmapped", "could be missed"


@dataclass
class ConceptSetReport:
    """Resolution report of a study's concept sets (raw counts).

    Attributes
    ----------
    sets : one row per concept set: ``concept_set``, ``domain``, ``table``, ``hierarchy`` (how
        descendants were found), ``concepts`` (ids matched), ``rows`` and ``persons`` the set
        matches, ``missed_rows`` and ``missed_persons`` it could be missing, of which
        ``unknown_rows`` / ``outside_rows`` / ``unmapped_rows`` (see the module docstring), the set's
        ICD-10-CM codes that map to no standard concept (``unmapped_codes``) and ``by_vocabulary``:
        missed rows per vocabulary and concept class of their concepts (largest first).
    routes : one row per concept set, entry and route: ``concept_set``, ``entry``, ``route``,
        ``excluded``, ``concepts`` (found by the route), ``rows`` and ``persons`` (event rows of
        the domain with one of those concepts, and their persons).
    notes : what resolution could not do or did by a fallback (the session's warnings), and sets
        that could not be reported (their domain's table is absent).
    """

    sets: pd.DataFrame
    routes: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def missed(self, concept_set: str) -> tuple[int, int]:
        """(rows, persons) that concept set *concept_set* could be missing."""
        row = self.sets[self.sets.concept_set == concept_set]
        return (int(row.missed_rows.iloc[0]), int(row.missed_persons.iloc[0])) if len(row) else (0, 0)


SET_COLUMNS = ("concept_set", "domain", "table", "hierarchy", "concepts", "rows", "persons", "missed_rows",
               "missed_persons", "unknown_rows", "outside_rows", "unmapped_rows", "unmapped_codes", "by_vocabulary")
ROUTE_COLUMNS = ("concept_set", "entry", "route", "excluded", "concepts", "rows", "persons")


def concept_set_report(session: Any) -> ConceptSetReport:
    """The resolution report of every concept set of *session* (a :class:`~follicle.study.session.StudySession`)."""
    by_domain: dict[str, list[ResolvedConceptSet]] = {}
    notes = list(session.warnings)
    for name, rs in session.resolved.items():
        if rs.domain is None:
            continue
        if not session.cdm.has(DOMAINS[rs.domain].table):
            notes.append(f"concept set {name!r}: the CDM has no {DOMAINS[rs.domain].table} table")
            continue
        by_domain.setdefault(rs.domain, []).append(rs)
    set_rows, route_rows = [], []
    for domain, sets in by_domain.items():
        s, r = _domain_report(session, domain, sets)
        set_rows += s
        route_rows += r
    order = {n: i for i, n in enumerate(session.resolved)}
    set_rows.sort(key=lambda r: order[r["concept_set"]])
    route_rows.sort(key=lambda r: order[r["concept_set"]])
    return ConceptSetReport(pd.DataFrame(set_rows, columns=list(SET_COLUMNS)),
                            pd.DataFrame(route_rows, columns=list(ROUTE_COLUMNS)), notes)


def _domain_report(session: Any, domain: str, sets: list[ResolvedConceptSet]) -> tuple[list[dict], list[dict]]:
    con, vocab = session.cdm.con, session.vocab
    base = generic_events(session.cdm, domain).select("person_id", *CODE_COLUMNS)
    # the distinct codes with their rows (additive): one aggregate; persons are counted below
    codes = con.to_pyarrow(base.group_by(list(CODE_COLUMNS)).aggregate(n_rows=base.count()))
    codes = codes.sort_by([(c, "ascending") for c in CODE_COLUMNS])
    per_code = dict(enumerate(codes["n_rows"].to_pylist()))
    codes = codes.drop_columns(["n_rows"])
    ids = {int(v) for v in pc.unique(codes["concept_id"]).drop_null().to_pylist()} - {0}
    known = vocab.known(ids)
    placed = {flag: vocab.placed(known, drug_names=flag) for flag in {rs.drug_names for rs in sets if rs.hierarchy}}
    cid = codes["concept_id"]
    unknown = pc.invert(pc.fill_null(pc.is_in(cid, value_set=pa.array(sorted(known), pa.int64())), False))
    not_icd = pc.invert(icd10cm_coded(codes["source_value"]))
    raw = pc.unique(codes["source_value"]).drop_null().to_pylist()
    flags: dict[str, Any] = {}
    keys: list[tuple[str, ResolvedConceptSet, Any]] = []  # (flag column, set, what it counts)

    def add(rs: ResolvedConceptSet, what: Any, flag: Any) -> None:
        keys.append((f"f{len(flags)}", rs, what))
        flags[f"f{len(flags)}"] = flag

    for rs in sets:
        member = set_flags(codes, rs, (matching_values(raw, rs.source_patterns),
                                       matching_values(raw, rs.excluded_source_patterns)))
        add(rs, MATCHED, member)
        for route in rs.routes:
            add(rs, route, _route_flag(codes, route, raw, not_icd))
        unk, outside, unmapped = _unclassified(rs, codes, unknown, not_icd, placed)
        for kind, flag in ((UNKNOWN, unk), (OUTSIDE, outside), (UNMAPPED, unmapped),
                           (MISSED, pc.or_(pc.or_(unk, outside), unmapped))):
            add(rs, kind, pc.and_(flag, pc.invert(member)))
    counts = _count_flags(session, base, codes, flags, per_code)
    labels = [_vocabulary_label(c, vocab.concept_info(known)) for c in cid.to_pylist()]
    out: dict[str, dict[str, Any]] = {}
    routes = []
    for col, rs, what in keys:
        rows, persons = counts.get(col, (0, 0))
        row = out.setdefault(rs.name, {"concept_set": rs.name, "domain": domain, "table": DOMAINS[domain].table,
                                       "hierarchy": rs.hierarchy, "concepts": _n_concepts(rs),
                                       "unmapped_codes": _unmapped_codes(rs)})
        if isinstance(what, Route):
            routes.append({"concept_set": rs.name, "entry": what.entry, "route": what.route, "excluded": what.excluded,
                           "concepts": what.n_concepts, "rows": rows, "persons": persons})
        elif what == MATCHED:
            row |= {"rows": rows, "persons": persons}
        elif what == MISSED:
            row |= {"missed_rows": rows, "missed_persons": persons,
                    "by_vocabulary": _by_vocabulary(flags[col], labels, per_code)}
        else:
            row[{UNKNOWN: "unknown_rows", OUTSIDE: "outside_rows", UNMAPPED: "unmapped_rows"}[what]] = rows
    return list(out.values()), routes


def _n_concepts(rs: ResolvedConceptSet) -> int:
    """Concept ids and source codes the set matches."""
    return len(rs.concept_ids | rs.mapped_concept_ids) + len(rs.source_concept_ids) + len(rs.source_patterns)


def _vocabulary_label(concept_id: int | None, info: dict[int, dict[str, Any]]) -> str:
    """Where a code's concept comes from, for the breakdown of missed rows."""
    if not concept_id:
        return "concept 0"
    row = info.get(int(concept_id))
    return "not in CONCEPT" if row is None else f"{row['vocabulary_id']} {row['concept_class_id']}"


def _by_vocabulary(flag: Any, labels: list[str], per_code: dict[int, int]) -> dict[str, int]:
    """Rows of the flagged codes per vocabulary and concept class (largest first)."""
    out: dict[str, int] = {}
    if flag is None:
        return out
    for i in pc.indices_nonzero(flag).to_pylist():
        out[labels[i]] = out.get(labels[i], 0) + per_code.get(i, 0)
    return dict(sorted(((k, v) for k, v in out.items() if v), key=lambda kv: -kv[1]))


def _route_flag(codes: pa.Table, route: Route, raw: list[str], not_icd: Any) -> pa.ChunkedArray:
    """Which codes the route's concepts (or source codes) match."""
    parts = []
    if route.concept_ids:
        hit = pc.is_in(codes["concept_id"], value_set=pa.array(sorted(route.concept_ids), pa.int64()))
        parts.append(pc.and_(hit, not_icd) if route.route == MAPPED else hit)
    if route.source_concept_ids:
        parts.append(pc.is_in(codes["source_concept_id"], value_set=pa.array(sorted(route.source_concept_ids), pa.int64())))
    if route.source_patterns:
        values = matching_values(raw, route.source_patterns)
        parts.append(pc.is_in(codes["source_value"], value_set=pa.array(values, pa.string())))
    if not parts:
        return pa.chunked_array([pa.array([False] * codes.num_rows, pa.bool_())])
    return pc.fill_null(functools.reduce(pc.or_, parts), False)


def _unmapped_codes(rs: ResolvedConceptSet) -> list[str]:
    """The set's ICD-10-CM entries whose codes map to no standard concept in this vocabulary."""
    mapped = {r.entry for r in rs.routes if r.route == MAPPED and r.concept_ids and not r.excluded}
    return sorted({r.entry for r in rs.routes if r.entry.startswith("ICD10CM:") and not r.excluded} - mapped)


def _unclassified(rs: ResolvedConceptSet, codes: pa.Table, unknown: Any, not_icd: Any,
                  placed: dict[bool, set[int]]) -> tuple[Any, Any, Any]:
    """(unknown, outside hierarchy, unmapped) flags of the codes for set *rs* (see the module docstring)."""
    false = pa.chunked_array([pa.array([False] * codes.num_rows, pa.bool_())])
    unk, outside, unmapped = false, false, false
    if rs.standard:
        unk = unknown
        if rs.hierarchy is not None:
            inside = pc.is_in(codes["concept_id"], value_set=pa.array(sorted(placed[rs.drug_names]), pa.int64()))
            outside = pc.and_(pc.invert(unknown), pc.invert(pc.fill_null(inside, False)))
    if rs.icd10cm:
        # rows not coded in ICD-10-CM are decided by the mapped concepts: unknown concepts cannot be,
        # and none can when some code of the set maps to nothing here
        unk = pc.or_(unk, pc.and_(unknown, not_icd))
        if _unmapped_codes(rs):
            unmapped = pc.and_(pc.invert(unknown), not_icd)
    return unk, outside, unmapped


#: flag bits per 64-bit mask word (62 keeps every bit's value a positive BIGINT on every engine)
_BITS = 62


def _count_flags(session: Any, base: Any, codes: pa.Table, flags: dict[str, Any],
                 per_code: dict[int, int]) -> dict[str, tuple[int, int]]:
    """Rows and distinct persons of the events whose code has each flag. Rows add up over codes
    (*per_code*, by position in *codes*); persons are counted in the database, once per distinct
    set of codes (many flags share one), in one pass: each code carries a bit per set it belongs
    to, the events are grouped by person OR-ing their codes' bits, and the persons with each bit
    set are counted (a person-level aggregate, not a distinct over persons and codes)."""
    flags = {k: v for k, v in flags.items() if pc.any(v).as_py()}
    if not flags:
        return {}
    positions = {k: tuple(pc.indices_nonzero(v).to_pylist()) for k, v in flags.items()}
    unique = {p: u for u, p in enumerate(dict.fromkeys(positions.values()))}
    used = sorted({i for p in unique for i in p})
    words = [[0] * len(used) for _ in range(-(-len(unique) // _BITS))]
    slot = {pos: k for k, pos in enumerate(used)}
    for p, u in unique.items():
        for i in p:
            words[u // _BITS][slot[i]] |= 1 << (u % _BITS)
    masks = {f"m{w}": pa.array(bits, pa.int64()) for w, bits in enumerate(words)}
    c = ibis.memtable(_codes_table(codes.take(used), list(CODE_COLUMNS), masks))
    ev = base.join(c, _code_match(base, c, list(CODE_COLUMNS)))
    ev = ev.filter(ev.person_id.notnull())
    person = ev.group_by("person_id").aggregate(**{m: ev[m].bit_or() for m in masks})
    counts = {f"u{u}": person.count(where=(person[f"m{u // _BITS}"] & (1 << (u % _BITS))) != 0) for u in unique.values()}
    row = session.cdm.con.execute(person.aggregate(**counts)).iloc[0]
    return {k: (sum(per_code.get(i, 0) for i in p), _int(row[f"u{unique[p]}"])) for k, p in positions.items()}


def _int(value: Any) -> int:
    """A count from the engine (NULL or NaN over no rows: 0)."""
    return 0 if value is None or value != value else int(value)


def suppressed_report(report: ConceptSetReport, min_cell_count: int) -> dict[str, Any]:
    """The report as plain records, counts from 1 to ``min_cell_count - 1`` written ``"<n"``."""
    def records(frame: pd.DataFrame, counts: tuple[str, ...]) -> list[dict[str, Any]]:
        out = frame.to_dict(orient="records")
        for r in out:
            for k in counts:
                r[k] = suppress_count(int(r[k]), min_cell_count)
        return out

    sets = records(report.sets, ("rows", "persons", "missed_rows", "missed_persons", "unknown_rows", "outside_rows",
                                 "unmapped_rows"))
    for r in sets:
        r["by_vocabulary"] = {k: suppress_count(v, min_cell_count) for k, v in r["by_vocabulary"].items()}
    return {"sets": sets, "routes": records(report.routes, ("rows", "persons")), "notes": list(report.notes)}


def missed_warnings(report: ConceptSetReport, min_cell_count: int) -> list[str]:
    """One warning per concept set that could be missing rows, counts suppressed."""
    out = []
    for r in report.sets.itertuples():
        if r.missed_rows:
            rows, persons = (suppress_count(int(v), min_cell_count) for v in (r.missed_rows, r.missed_persons))
            verb = "maps" if len(r.unmapped_codes) == 1 else "map"
            unmapped = f"no ICD-10-CM source value, and {', '.join(r.unmapped_codes)} {verb} to no standard concept here"
            why = ", ".join(w for w, n in (("concept 0 or not in CONCEPT", r.unknown_rows),
                                           ("no place in the vocabulary's hierarchy", r.outside_rows),
                                           (unmapped, r.unmapped_rows)) if n)
            most = ", ".join(f"{k} {suppress_count(v, min_cell_count)}" for k, v in list(r.by_vocabulary.items())[:3])
            out.append(f"concept set {r.concept_set!r}: {rows} {r.table} rows ({persons} persons) have concepts the "
                       f"vocabulary cannot classify ({why}; {most}); they could belong to the set and are missed")
    return out
