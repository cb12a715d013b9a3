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


#: the columns that decide whether an event belongs to a concept set
CODE_COLUMNS = ("concept_id", "source_concept_id", "source_value")
#: what the event store keeps of each event once its concept sets are flagged
KEPT_COLUMNS = ("person_id", "concept_id", "start_date", "end_date", "route_concept_id")


def _code_columns(sets: list[ResolvedConceptSet], values: dict[str, tuple[list[str], list[str]]]) -> list[str]:
    """The code columns some set of *sets* tests (fewer columns: a cheaper DISTINCT and join)."""
    used = {
        "concept_id": any(rs.concept_ids or rs.excluded_concept_ids for rs in sets),
        "source_concept_id": any(rs.source_concept_ids or rs.excluded_source_concept_ids for rs in sets),
        "source_value": any(any(values.get(rs.name, ([], []))) for rs in sets),
    }
    return [c for c in CODE_COLUMNS if used[c]] or ["concept_id"]


def _code_keys(t: ir.Table, prefix: str, columns: list[str]) -> dict[str, ir.Value]:
    """Join keys that make the code *columns* of *t* match NULL to NULL (plain equality does not):
    each nullable code as (value or a placeholder, is-null flag)."""
    keys: dict[str, ir.Value] = {}
    for c in columns:
        placeholder = ibis.literal("", "string") if c == "source_value" else ibis.literal(0, "int64")
        keys[f"{prefix}{c}"] = t[c].fill_null(placeholder)
        keys[f"{prefix}{c}_null"] = t[c].isnull()
    return keys


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
        self._first_dates: dict[tuple[str, ...], list[tuple[ir.Table, dict[str, str]]]] = {}
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
        entry_domains = {resolved[n].domain for n in entry_sets or ()}
        if entry_sets:
            # every criterion, covariate and outcome concerns people with an entry event: keep only theirs
            parts = []
            for domain in {resolved[n].domain for n in entry_sets if resolved[n].domain in bases}:
                base = bases[domain]
                ents = [resolved[n] for n in entry_sets if resolved[n].domain == domain]
                parts.append(base.filter(_union_predicate(base, ents, self._values)).select("person_id"))
            if parts:
                people = self.persist(ibis.union(*parts, distinct=True) if len(parts) > 1 else parts[0].distinct(), "entry_people")
        # set membership depends only on an event's codes (concept id, source concept id, source
        # value), which are few: it is decided once per distinct code triple, in the database, and
        # kept in a small table (code_id, one flag per set); every event of an entry person gets its
        # triple's code_id by one join
        self._flags: dict[str, str] = {}
        self._codes: dict[str, ir.Table] = {}
        for domain, sets in by_domain.items():
            base = bases[domain]
            code_columns = _code_columns(sets, self._values)
            codes = base.select(*code_columns).distinct()
            flags = {}
            for rs in sets:
                self._flags[rs.name] = col = f"in_set_{len(self._flags)}"
                flags[col] = concept_predicate(codes, rs, self._values.get(rs.name))
            keys = _code_keys(codes, "c_", code_columns)
            # numbered in a fixed order, so that an unmaterialized store numbers them the same each time;
            # the numbering (a window) also keeps engines from pushing the set tests below the DISTINCT
            # onto every row of the domain table
            code_id = ibis.row_number().over(order_by=list(keys.values()))
            codes = codes.select(**keys, **flags, code_id=code_id)
            self._codes[domain] = codes = self.persist(codes.filter(ibis.or_(*[codes[f] for f in flags])), f"{domain}_codes")
            ekeys = _code_keys(base, "", code_columns)
            j = base.join(codes, [ekeys[k] == codes[f"c_{k}"] for k in ekeys])
            if people is not None:  # an inner join on the distinct people: engines run it faster than IN
                ep = people.select(_p=people.person_id)
                j = j.join(ep, j.person_id == ep._p)
            # a domain with no entry set is only looked up by date: its other columns are not kept
            kept = KEPT_COLUMNS if entry_sets is None or domain in entry_domains else ("person_id", "start_date")
            self._domains[domain] = self.persist(j.select(*kept, "code_id"), domain)

    def persist(self, expr: ir.Table, label: str) -> ir.Table:
        """*expr* computed once into a temporary table (when materializing), else *expr* itself."""
        if not self.materialize:
            return expr
        name = ibis.util.gen_name(f"follicle_{label}")
        table = self.cdm.con.create_table(name, expr, temp=True)
        self._temp.append(name)
        return table

    def events(self, name: str) -> ir.Table:
        """Events of concept set *name* (the columns of :data:`KEPT_COLUMNS` its domain keeps)."""
        ((t, cols),) = self.flagged([name])
        return t.filter(t[cols[name]]).select(*[c for c in KEPT_COLUMNS if c in t.columns])

    def flagged(self, names: list[str]) -> list[tuple[ir.Table, dict[str, str]]]:
        """Events of any of the sets *names*, per domain: a table with :data:`KEPT_COLUMNS` and a
        boolean column per set, and the name of each set's column, so that several sets are looked
        up in one pass over a domain."""
        out = []
        for t, codes, cols in self.coded(names):
            j = t.join(codes, "code_id")
            out.append((j.select(*[c for c in KEPT_COLUMNS if c in t.columns], *sorted(set(cols.values()))), cols))
        return out

    def coded(self, names: list[str]) -> list[tuple[ir.Table, ir.Table, dict[str, str]]]:
        """Per domain holding any of the sets *names*: its events (:data:`KEPT_COLUMNS` and
        ``code_id``), the codes of those sets (``code_id`` and a boolean column per set) and the name of
        each set's column. Joining late lets an aggregate summarise events per code first."""
        by_domain: dict[str, dict[str, str]] = {}
        for name in names:
            domain = self._domain_of(name)  # checks the set is available before its flag is looked up
            by_domain.setdefault(domain, {})[name] = self._flags[name]
        out = []
        for domain, cols in by_domain.items():
            codes = self._codes[domain]
            wanted = sorted(set(cols.values()))
            c = codes.filter(ibis.or_(*[codes[f] for f in wanted])).select("code_id", *wanted)
            out.append((self._domains[domain], c, cols))
        return out

    def has(self, name: str) -> bool:
        """Whether the events of concept set *name* are in the store."""
        return name in self._flags

    def first_dates(self, names: list[str]) -> list[tuple[ir.Table, dict[str, str]]]:
        """Each person's first event of each set in *names*, per domain: a table (``person_id`` and
        one date column per set) and each set's column; computed once per list of names."""
        key = tuple(sorted(names))
        if key not in self._first_dates:
            out = []
            for t, codes, cols in self.coded(list(key)):
                j = t.join(codes, "code_id")
                firsts = {f"first_{f}": j.start_date.min(where=j[f]) for f in sorted(set(cols.values()))}
                table = self.persist(j.group_by("person_id").aggregate(**firsts), "first_dates")
                out.append((table, {n: f"first_{c}" for n, c in cols.items()}))
            self._first_dates[key] = out
        return self._first_dates[key]

    def _domain_of(self, name: str) -> str:
        rs = self.resolved[name]
        if rs.domain not in self._domains or name not in self._flags:
            if rs.domain in DOMAINS and rs.domain not in self._domains and not self.cdm.has(DOMAINS[rs.domain].table):
                raise DatabaseError(f"concept set {name!r} is matched in table {DOMAINS[rs.domain].table!r}, "
                                    "which this CDM does not have")
            raise KeyError(f"concept set {name!r} was not declared as needed")
        return rs.domain  # type: ignore[return-value]

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
