"""Clinical events of resolved concept sets, as Ibis expressions over the CDM tables.

Every domain table is read once: the rows matching any concept set a study needs are selected
into one (optionally temporary, in-database) table per domain, with generic column names; each
concept set is then a filter on that small table. Nothing is pulled into Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import ibis
import ibis.expr.types as ir

from follicle.errors import DatabaseError
from follicle.vocab.conceptset import normalise_icd10
from follicle.vocab.resolve import ResolvedConceptSet, SourcePattern, table_or_none


@dataclass(frozen=True)
class DomainTable:
    """Where a CDM domain keeps its events."""

    table: str
    concept: str
    source_concept: str
    source_value: str
    start: str
    end: str | None


DOMAINS: dict[str, DomainTable] = {
    "condition": DomainTable(
        "condition_occurrence", "condition_concept_id", "condition_source_concept_id",
        "condition_source_value", "condition_start_date", "condition_end_date",
    ),
    "drug": DomainTable(
        "drug_exposure", "drug_concept_id", "drug_source_concept_id",
        "drug_source_value", "drug_exposure_start_date", "drug_exposure_end_date",
    ),
    "measurement": DomainTable(
        "measurement", "measurement_concept_id", "measurement_source_concept_id",
        "measurement_source_value", "measurement_date", None,
    ),
    "procedure": DomainTable(
        "procedure_occurrence", "procedure_concept_id", "procedure_source_concept_id",
        "procedure_source_value", "procedure_date", None,
    ),
    "observation": DomainTable(
        "observation", "observation_concept_id", "observation_source_concept_id",
        "observation_source_value", "observation_date", None,
    ),
}


class Cdm:
    """The CDM tables behind an Ibis connection (``database`` is the schema, if not the default)."""

    def __init__(self, con: Any, *, database: Any = None) -> None:
        self.con = con
        self.database = database
        self._tables: dict[str, ir.Table | None] = {}

    def has(self, name: str) -> bool:
        if name not in self._tables:
            self._tables[name] = table_or_none(self.con, name, self.database)
        return self._tables[name] is not None

    def table(self, name: str) -> ir.Table:
        if not self.has(name):
            raise DatabaseError(f"the CDM has no table {name!r} (needed by the study)")
        return self._tables[name]  # type: ignore[return-value]


def matching_values(values: list[str], patterns: tuple[SourcePattern, ...]) -> list[str]:
    """The raw source values (as stored) that match *patterns* after normalisation (upper case, no dots)."""
    out = []
    for raw in values:
        norm = normalise_icd10(raw)
        if any(norm.startswith(p.code) if p.prefix else norm == p.code for p in patterns):
            out.append(raw)
    return sorted(out)


def concept_predicate(t: ir.Table, rs: ResolvedConceptSet, values: tuple[list[str], list[str]] | None = None) -> ir.BooleanValue:
    """Rows of a generic event table (``concept_id``, ``source_concept_id``, ``source_value``) in *rs*.

    *values* are the raw source values matching the set's include and exclude patterns (see
    :func:`matching_values`); hash look-ups instead of string matching on every row.
    """
    inc_vals, exc_vals = values if values is not None else ([], [])
    pred = _any_of(t, rs.concept_ids, rs.source_concept_ids, inc_vals)
    if pred is None:
        pred = ibis.literal(False)
    exc = _any_of(t, rs.excluded_concept_ids, rs.excluded_source_concept_ids, exc_vals)
    if exc is not None:
        pred = pred & ~exc.fill_null(False)
    return pred.fill_null(False)


def _any_of(t: ir.Table, concept_ids: Any, source_concept_ids: Any, source_values: list[str]) -> ir.BooleanValue | None:
    """Row matches any of the concept ids, source concept ids or source values (None when all are empty)."""
    parts: list[ir.BooleanValue] = []
    if concept_ids:
        parts.append(t.concept_id.isin(sorted(concept_ids)))
    if source_concept_ids:
        parts.append(t.source_concept_id.isin(sorted(source_concept_ids)))
    if source_values:
        parts.append(t.source_value.isin(source_values))
    return ibis.or_(*parts) if parts else None


def _union_predicate(t: ir.Table, sets: list[ResolvedConceptSet], values: dict[str, tuple[list[str], list[str]]]) -> ir.BooleanValue:
    """Rows in any of *sets* (a superset: exclusions are applied per set later), as three look-ups."""
    ids = sorted(set().union(*(rs.concept_ids for rs in sets)))
    src = sorted(set().union(*(rs.source_concept_ids for rs in sets)))
    vals = sorted(set().union(*(values.get(rs.name, ([], []))[0] for rs in sets)))
    preds = []
    if ids:
        preds.append(t.concept_id.isin(ids))
    if src:
        preds.append(t.source_concept_id.isin(src))
    if vals:
        preds.append(t.source_value.isin(vals))
    return (ibis.or_(*preds) if preds else ibis.literal(False)).fill_null(False)


def generic_events(cdm: Cdm, domain: str) -> ir.Table:
    """A domain table with generic columns: person_id, concept_id, source_concept_id, source_value
    (as stored), start_date, end_date (start when missing), route_concept_id."""
    d = DOMAINS[domain]
    t = cdm.table(d.table)
    start = t[d.start].cast("date")
    end = ibis.coalesce(t[d.end].cast("date"), start) if d.end else start
    cols = {
        "person_id": t.person_id.cast("int64"),
        "concept_id": t[d.concept].cast("int64"),
        "source_concept_id": t[d.source_concept].cast("int64"),
        "source_value": t[d.source_value].cast("string"),
        "start_date": start,
        "end_date": end,
        "route_concept_id": t.route_concept_id.cast("int64") if domain == "drug" else ibis.literal(None, "int64"),
    }
    return t.select(**cols)


class EventStore:
    """Events of the concept sets a study needs, one filtered scan per domain.

    Parameters
    ----------
    cdm : the CDM.
    resolved : resolved concept sets by name.
    needed : names of the sets whose events will be asked for.
    materialize : keep the filtered events in temporary tables (faster when sets are reused).
    """

    def __init__(self, cdm: Cdm, resolved: dict[str, ResolvedConceptSet], needed: set[str], *,
                 materialize: bool = True, entry_sets: set[str] | None = None) -> None:
        self.cdm = cdm
        self.resolved = resolved
        self.materialize = materialize
        self._domains: dict[str, ir.Table] = {}
        self._values: dict[str, tuple[list[str], list[str]]] = {}
        self._temp: list[str] = []
        by_domain: dict[str, list[ResolvedConceptSet]] = {}
        for name in sorted(needed):
            rs = resolved[name]
            if rs.domain is not None:
                by_domain.setdefault(rs.domain, []).append(rs)
        bases = {domain: generic_events(cdm, domain) for domain in by_domain}
        for domain, sets in by_domain.items():
            if any(rs.source_patterns or rs.excluded_source_patterns for rs in sets):
                # the distinct source codes are few: match patterns on them once, then hash look-ups
                base = bases[domain]
                distinct = cdm.con.execute(base.select("source_value").distinct().filter(base.source_value.notnull()))
                raw = [str(v) for v in distinct["source_value"]]
                for rs in sets:
                    self._values[rs.name] = (matching_values(raw, rs.source_patterns),
                                             matching_values(raw, rs.excluded_source_patterns))
        people = None
        if entry_sets:
            # every criterion, covariate and outcome concerns people with an entry event: keep only theirs
            parts = []
            for domain in {resolved[n].domain for n in entry_sets if resolved[n].domain in bases}:
                base = bases[domain]
                ents = [resolved[n] for n in entry_sets if resolved[n].domain == domain]
                parts.append(base.filter(_union_predicate(base, ents, self._values)).select("person_id"))
            if parts:
                people = self.persist(ibis.union(*parts, distinct=True) if len(parts) > 1 else parts[0].distinct(), "entry_people")
        for domain, sets in by_domain.items():
            base = bases[domain]
            expr = base.filter(_union_predicate(base, sets, self._values))
            if people is not None:
                expr = expr.filter(expr.person_id.isin(people.person_id))
            self._domains[domain] = self.persist(expr, domain)

    def persist(self, expr: ir.Table, label: str) -> ir.Table:
        """*expr* computed once into a temporary table (when materializing), else *expr* itself."""
        if not self.materialize:
            return expr
        name = ibis.util.gen_name(f"follicle_{label}")
        table = self.cdm.con.create_table(name, expr, temp=True)
        self._temp.append(name)
        return table

    def events(self, name: str) -> ir.Table:
        """Events of concept set *name* (generic columns)."""
        rs = self.resolved[name]
        if rs.domain not in self._domains:
            if rs.domain in DOMAINS and not self.cdm.has(DOMAINS[rs.domain].table):
                raise DatabaseError(f"concept set {name!r} is matched in table {DOMAINS[rs.domain].table!r}, "
                                    "which this CDM does not have")
            raise KeyError(f"concept set {name!r} was not declared as needed")
        t = self._domains[rs.domain]
        return t.filter(concept_predicate(t, rs, self._values.get(name)))

    def for_people(self, people: ir.Table, label: str) -> EventStore:
        """A view of this store holding only the events of *people* (a table with ``person_id``),
        each domain computed once; used for the many outcome and covariate look-ups of a population.
        Temporary tables are owned (and dropped) by this store."""
        view = object.__new__(EventStore)
        view.__dict__.update(self.__dict__)
        keys = people.select("person_id").distinct()
        view._domains = {
            d: self.persist(t.filter(t.person_id.isin(keys.person_id)), f"{label}_{d}") for d, t in self._domains.items()
        }
        return view

    def close(self) -> None:
        """Drop the temporary tables."""
        for name in self._temp:
            try:
                self.cdm.con.drop_table(name, force=True)
            except Exception:  # noqa: BLE001, S110 - a temp table vanishes with the session anyway
                pass
        self._temp.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
