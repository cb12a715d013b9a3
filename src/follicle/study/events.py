"""Clinical events of resolved concept sets, as Ibis expressions over the CDM tables.

Per domain, the distinct event codes (concept id, source concept id, source value: vocabulary,
not patient data) are read once and tested against every concept set; the codes in any set go back
as a small table (``code_id`` and one flag per set). The events of people with an entry event are
then kept once per domain, with generic column names and their ``code_id``, in an (optionally
temporary, in-database) table; looking up one or several sets is a join on ``code_id``. Only the
distinct codes are read into Python.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Self

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from follicle.errors import DatabaseError
from follicle.vocab.conceptset import normalise_icd10
from follicle.vocab.resolve import ICD10CM_CODE, ResolvedConceptSet, SourcePattern, table_or_none


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


def icd10cm_coded(values: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Which source values are written as ICD-10-CM codes (see :func:`follicle.vocab.resolve.is_icd10cm`);
    NULL is not."""
    norm = pc.replace_substring(pc.utf8_upper(pc.utf8_trim_whitespace(values)), ".", "")
    return pc.fill_null(pc.match_substring_regex(norm, ICD10CM_CODE.pattern), False)


def set_flags(codes: pa.Table, rs: ResolvedConceptSet, values: tuple[list[str], list[str]]) -> pa.ChunkedArray:
    """Which of the distinct *codes* (columns among ``concept_id``, ``source_concept_id``,
    ``source_value``) belong to *rs*, vectorised. *values* are the raw source values matching the
    set's include and exclude patterns (see :func:`matching_values`); NULL codes match nothing.
    The set's mapped concepts match only codes whose source value is not an ICD-10-CM code."""
    not_icd = None
    if (rs.mapped_concept_ids or rs.excluded_mapped_concept_ids) and "concept_id" in codes.column_names:
        not_icd = pc.invert(icd10cm_coded(codes["source_value"])) if "source_value" in codes.column_names else None

    def any_of(ids: Any, source_ids: Any, source_values: list[str], mapped: Any) -> pa.ChunkedArray | None:
        parts = [pc.is_in(codes[col], value_set=pa.array(sorted(v), kind))
                 for col, v, kind in (("concept_id", ids, pa.int64()), ("source_concept_id", source_ids, pa.int64()),
                                      ("source_value", source_values, pa.string()))
                 if v and col in codes.column_names]
        if mapped and "concept_id" in codes.column_names:
            hit = pc.is_in(codes["concept_id"], value_set=pa.array(sorted(mapped), pa.int64()))
            parts.append(hit if not_icd is None else pc.and_(hit, not_icd))
        return functools.reduce(pc.or_, parts) if parts else None

    inc = any_of(rs.concept_ids, rs.source_concept_ids, values[0], rs.mapped_concept_ids)
    if inc is None:
        return pa.chunked_array([pa.array([False] * codes.num_rows, pa.bool_())])
    exc = any_of(rs.excluded_concept_ids, rs.excluded_source_concept_ids, values[1], rs.excluded_mapped_concept_ids)
    return inc if exc is None else pc.and_(inc, pc.invert(exc))


#: the columns that decide whether an event belongs to a concept set
CODE_COLUMNS = ("concept_id", "source_concept_id", "source_value")
#: what the event store keeps of each event once its concept sets are flagged
KEPT_COLUMNS = ("person_id", "concept_id", "start_date", "end_date", "route_concept_id")


def _code_columns(sets: list[ResolvedConceptSet]) -> list[str]:
    """The code columns some set of *sets* tests (fewer columns: a cheaper DISTINCT and join)."""
    used = {
        "concept_id": any(rs.concept_ids or rs.excluded_concept_ids for rs in sets),
        "source_concept_id": any(rs.source_concept_ids or rs.excluded_source_concept_ids for rs in sets),
        "source_value": any(rs.source_patterns or rs.excluded_source_patterns for rs in sets),
    }
    return [c for c in CODE_COLUMNS if used[c]] or ["concept_id"]


def _needs_concept_id(sets: list[ResolvedConceptSet], codes: pa.Table) -> bool:
    """Whether some set of *sets* has mapped concepts and some of the *codes* have a source value
    that is not an ICD-10-CM code (only then do the mapped concepts decide anything)."""
    if not any(rs.mapped_concept_ids or rs.excluded_mapped_concept_ids for rs in sets):
        return False
    return "source_value" not in codes.column_names or not pc.all(icd10cm_coded(codes["source_value"])).as_py()


def _codes_table(codes: pa.Table, columns: list[str], flags: dict[str, pa.ChunkedArray]) -> pa.Table:
    """The codes of one domain as Arrow: a join key ``c_<col>`` per code column (with a NULL-safe
    pair, value or placeholder and ``c_<col>_null``, only for a column some code leaves NULL), one
    flag column per set and ``code_id`` (1.. in the order of *codes*)."""
    data: dict[str, Any] = {}
    for c in columns:
        if codes[c].null_count:
            data[f"c_{c}"] = pc.fill_null(codes[c], "" if c == "source_value" else 0)
            data[f"c_{c}_null"] = pc.is_null(codes[c])
        else:
            data[f"c_{c}"] = codes[c]
    data |= flags
    data["code_id"] = pa.array(range(1, codes.num_rows + 1), pa.int64())
    return pa.table(data)


def _code_match(events: ir.Table, codes: ir.Table, columns: list[str]) -> list[ir.BooleanValue]:
    """Join predicates of events to their codes (see :func:`_codes_table`): plain equality, or a
    NULL-safe pair where some code is NULL (plain equality never matches NULL)."""
    preds = []
    for c in columns:
        if f"c_{c}_null" in codes.columns:
            placeholder = ibis.literal("", "string") if c == "source_value" else ibis.literal(0, "int64")
            preds += [events[c].fill_null(placeholder) == codes[f"c_{c}"], events[c].isnull() == codes[f"c_{c}_null"]]
        else:
            preds.append(events[c] == codes[f"c_{c}"])
    return preds


def min_where(value: ir.Value, cond: ir.BooleanValue) -> ir.Value:
    """The least *value* of the rows where *cond* holds (NULL if none), written ``MIN(CASE WHEN
    cond THEN value END)``: the same as a filtered aggregate (``FILTER (WHERE ...)``), which DuckDB
    evaluates apart for each aggregate, much slower when one GROUP BY has dozens of them."""
    return ibis.ifelse(cond, value, ibis.null(value.type())).min()


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
        self._temp: list[str] = []
        self._first_dates: dict[tuple[str, ...], list[tuple[ir.Table, dict[str, str]]]] = {}
        by_domain: dict[str, list[ResolvedConceptSet]] = {}
        for name in sorted(needed):
            rs = resolved[name]
            if rs.domain is not None:
                by_domain.setdefault(rs.domain, []).append(rs)
        bases = {domain: generic_events(cdm, domain) for domain in by_domain}
        # Set membership depends only on an event's codes (concept id, source concept id, source
        # value), of which a domain has few distinct ones (vocabulary, not patient data). They are
        # read once, each is tested against every set here, and the codes in any set go back as a
        # small table (code_id, one flag per set); every event of an entry person gets its code's
        # code_id by one join.
        self._flags: dict[str, str] = {}
        self._codes: dict[str, ir.Table] = {}
        code_columns: dict[str, list[str]] = {}
        for domain, sets in by_domain.items():
            columns = code_columns[domain] = _code_columns(sets)
            base = bases[domain]
            codes = cdm.con.to_pyarrow(base.select(*columns).distinct())
            if "concept_id" not in columns and _needs_concept_id(sets, codes):
                # mapped concepts of ICD-10-CM sets decide rows not coded in ICD-10-CM: read their concepts too
                columns = code_columns[domain] = [c for c in CODE_COLUMNS if c in {"concept_id", *columns}]
                codes = cdm.con.to_pyarrow(base.select(*columns).distinct())
            # a fixed order, so that code ids are the same every time
            codes = codes.sort_by([(c, "ascending") for c in columns])
            raw = pc.unique(codes["source_value"]).drop_null().to_pylist() if "source_value" in columns else []
            flags: dict[str, pa.ChunkedArray] = {}
            for rs in sets:
                values = (matching_values(raw, rs.source_patterns), matching_values(raw, rs.excluded_source_patterns))
                self._flags[rs.name] = col = f"in_set_{len(self._flags)}"
                flags[col] = set_flags(codes, rs, values)
            keep = functools.reduce(pc.or_, flags.values())
            table = _codes_table(codes.filter(keep), columns, {f: v.filter(keep) for f, v in flags.items()})
            self._codes[domain] = self.persist(ibis.memtable(table), f"{domain}_codes")
        people = None
        entry_domains = {resolved[n].domain for n in entry_sets or ()}
        if entry_sets:
            # every criterion, covariate and outcome concerns people with an entry event: keep only theirs
            parts = []
            for domain in {resolved[n].domain for n in entry_sets if resolved[n].domain in bases}:
                codes = self._codes[domain]
                entry = codes.filter(ibis.or_(*[codes[self._flags[n]] for n in entry_sets if resolved[n].domain == domain]))
                parts.append(self._coded_events(bases[domain], entry, code_columns[domain]).select("person_id"))
            if parts:
                people = self.persist(ibis.union(*parts, distinct=True) if len(parts) > 1 else parts[0].distinct(), "entry_people")
        for domain in by_domain:
            base = bases[domain]
            if people is not None:  # an inner join on the distinct people: engines run it faster than IN
                base = base.join(people, "person_id")
            j = self._coded_events(base, self._codes[domain], code_columns[domain])
            # a domain with no entry set is only looked up by date: its other columns are not kept
            kept = KEPT_COLUMNS if entry_sets is None or domain in entry_domains else ("person_id", "start_date")
            self._domains[domain] = self.persist(j.select(*kept, "code_id"), domain)

    @staticmethod
    def _coded_events(base: ir.Table, codes: ir.Table, columns: list[str]) -> ir.Table:
        """Events of *base* whose codes are in *codes*, with their ``code_id``."""
        return base.join(codes, _code_match(base, codes, columns))

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
            for ev, cols in self.flagged(list(key)):
                firsts = {f"first_{f}": min_where(ev.start_date, ev[f]) for f in sorted(set(cols.values()))}
                table = self.persist(ev.group_by("person_id").aggregate(**firsts), "first_dates")
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
