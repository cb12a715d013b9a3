"""Clinical events of resolved concept sets, as Ibis expressions over the CDM tables.

Every domain table is read once: the rows matching any concept set a study needs are selected
into one (optionally temporary, in-database) table per domain, with generic column names; each
concept set is then a filter on that small table. Nothing is pulled into Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir

from follicle.errors import DatabaseError
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


def _pattern_match(value: ir.StringValue, patterns: tuple[SourcePattern, ...]) -> list[ir.BooleanValue]:
    return [value.startswith(p.code) if p.prefix else value == p.code for p in patterns]


def concept_predicate(t: ir.Table, rs: ResolvedConceptSet) -> ir.BooleanValue:
    """Rows of a generic event table (``concept_id``, ``source_concept_id``, ``source_value``) in *rs*."""
    inc: list[ir.BooleanValue] = []
    if rs.concept_ids:
        inc.append(t.concept_id.isin(sorted(rs.concept_ids)))
    if rs.source_concept_ids:
        inc.append(t.source_concept_id.isin(sorted(rs.source_concept_ids)))
    inc += _pattern_match(t.source_value, rs.source_patterns)
    pred = ibis.or_(*inc) if inc else ibis.literal(False)
    exc: list[ir.BooleanValue] = []
    if rs.excluded_concept_ids:
        exc.append(t.concept_id.isin(sorted(rs.excluded_concept_ids)))
    if rs.excluded_source_concept_ids:
        exc.append(t.source_concept_id.isin(sorted(rs.excluded_source_concept_ids)))
    exc += _pattern_match(t.source_value, rs.excluded_source_patterns)
    if exc:
        pred = pred & ~ibis.or_(*exc).fill_null(False)
    return pred.fill_null(False)


def generic_events(cdm: Cdm, domain: str) -> ir.Table:
    """A domain table with generic columns: person_id, concept_id, source_concept_id, source_value
    (upper case, dots removed), start_date, end_date (start when missing), route_concept_id."""
    d = DOMAINS[domain]
    t = cdm.table(d.table)
    start = t[d.start].cast("date")
    end = ibis.coalesce(t[d.end].cast("date"), start) if d.end else start
    cols = {
        "person_id": t.person_id.cast("int64"),
        "concept_id": t[d.concept].cast("int64"),
        "source_concept_id": t[d.source_concept].cast("int64"),
        "source_value": t[d.source_value].cast("string").upper().replace(".", ""),
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

    def __init__(self, cdm: Cdm, resolved: dict[str, ResolvedConceptSet], needed: set[str], *, materialize: bool = True) -> None:
        self.cdm = cdm
        self.resolved = resolved
        self.materialize = materialize
        self._domains: dict[str, ir.Table] = {}
        self._temp: list[str] = []
        by_domain: dict[str, list[ResolvedConceptSet]] = {}
        for name in sorted(needed):
            rs = resolved[name]
            if rs.domain is not None:
                by_domain.setdefault(rs.domain, []).append(rs)
        for domain, sets in by_domain.items():
            base = generic_events(cdm, domain)
            expr = base.filter(ibis.or_(*[concept_predicate(base, rs) for rs in sets]))
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
            raise KeyError(f"concept set {name!r} was not declared as needed")
        t = self._domains[rs.domain]
        return t.filter(concept_predicate(t, rs))

    def close(self) -> None:
        """Drop the temporary tables."""
        for name in self._temp:
            try:
                self.cdm.con.drop_table(name, force=True)
            except Exception:  # noqa: BLE001 - a temp table vanishes with the session anyway
                pass
        self._temp.clear()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
