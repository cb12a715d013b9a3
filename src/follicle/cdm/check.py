"""Data-quality checks on an OMOP CDM, in the spirit of OHDSI's DataQualityDashboard (DQD).

Each check is data: an id, what it tests, a severity (``fatal`` or ``warn``), and a threshold
(the largest share of violating rows, in percent, that still passes). The violating and total
counts are computed inside the database with Ibis expressions (no table reaches Python);
status is PASS when ``share <= threshold``, else FAIL for a fatal check and WARN otherwise;
NOT EVALUATED when a table or column the check needs is absent.

Thresholds follow one rule, by DQD category:

* conformance and CDM conventions (tables and columns present, primary keys unique, person
  references resolve, events inside an observation period, no negative quantities): 0%;
* plausibility checks with a DQD default: that default (1% for plausibleAfterBirth,
  plausibleBeforeDeath, plausibleStartBeforeEnd on event tables, plausibleValueHigh for
  days_supply > 365 and quantity > 1095, year_of_birth in 1850..this year + 1);
  0% for observation_period end before start (DQD's own exception);
* unmapped concepts (concept_id 0, DQD standardConceptRecordCompleteness): 5% on clinical
  event tables.

Fatal (non-zero exit of ``cdm check``) are only the checks without which no analysis is
valid: person and observation_period present with their required columns, person has rows
with unique ids, observation periods do not end before they start. Everything else warns.
On GiBleed this gives WARN for exactly the data's known quirks (duplicate drug_exposure,
measurement and observation ids; 2,649 orphan observation periods; events outside any
observation period: 80 drug_exposure rows, and also 85 condition_occurrence, 15
procedure_occurrence, 4 measurement and 3 observation rows; 443 condition_era rows with concept 0,
against DQD's 0% for era tables) and PASS elsewhere; the test suite recomputes each of these
counts from the CSV files with pandas.

References
----------
OHDSI DataQualityDashboard 2.7.0, check vignettes (isPrimaryKey, isForeignKey, isRequired,
plausibleAfterBirth, plausibleBeforeDeath, plausibleStartBeforeEnd, plausibleValueHigh,
standardConceptRecordCompleteness): https://ohdsi.github.io/DataQualityDashboard/
Blacketer C, et al. Increasing trust in real-world evidence through evaluation of observational
data quality. JAMIA 2021;28(10):2251-2257.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import ibis
from ibis.backends import BaseBackend
from pydantic import BaseModel

from follicle.cdm import schema
from follicle.cdm.connect import list_tables

Status = Literal["PASS", "WARN", "FAIL", "NOT EVALUATED"]

#: Event tables: (table, start date column, end date column or None, concept column).
EVENTS: tuple[tuple[str, str, str | None, str], ...] = (
    ("visit_occurrence", "visit_start_date", "visit_end_date", "visit_concept_id"),
    ("condition_occurrence", "condition_start_date", "condition_end_date", "condition_concept_id"),
    ("drug_exposure", "drug_exposure_start_date", "drug_exposure_end_date", "drug_concept_id"),
    ("procedure_occurrence", "procedure_date", None, "procedure_concept_id"),
    ("device_exposure", "device_exposure_start_date", "device_exposure_end_date", "device_concept_id"),
    ("measurement", "measurement_date", None, "measurement_concept_id"),
    ("observation", "observation_date", None, "observation_concept_id"),
)
#: Derived era tables: (table, start, end, concept column).
ERAS = (
    ("condition_era", "condition_era_start_date", "condition_era_end_date", "condition_concept_id"),
    ("drug_era", "drug_era_start_date", "drug_era_end_date", "drug_concept_id"),
)
CORE = ("person", "observation_period")
EXPECTED = CORE + tuple(t for t, *_ in EVENTS[:3]) + (
    "procedure_occurrence", "measurement", "observation", "death", "concept", "vocabulary",
    "concept_ancestor", "cdm_source",
)
DQD = "OHDSI DataQualityDashboard 2.7.0"
#: vocabulary tables that concept-set resolution relies on (see follicle.vocab.source)
VOCABULARY_CHECKED = ("concept", "concept_relationship", "concept_ancestor")


class CheckResult(BaseModel):
    """One check's outcome; ``share`` and ``threshold`` are percentages of ``total``."""

    id: str
    category: str
    description: str
    severity: Literal["fatal", "warn"]
    threshold: float
    violating: int | None = None
    total: int | None = None
    share: float | None = None
    status: Status = "NOT EVALUATED"
    source: str = DQD
    note: str | None = None


@dataclass(frozen=True)
class _Spec:
    id: str
    category: str
    description: str
    severity: Literal["fatal", "warn"]
    threshold: float
    needs: tuple[tuple[str, tuple[str, ...]], ...]  # (table, columns) that must exist
    count: Callable[[BaseBackend], tuple[int, int] | _Pred]  # (violating, total), or deferred
    source: str = DQD


@dataclass(frozen=True)
class _Pred:
    """A count of rows of one table matching *bad*, evaluated later with the table's other checks."""

    table: ibis.Table
    bad: ibis.Value


def _agg(t: ibis.Table, bad: ibis.Value) -> _Pred:
    return _Pred(t, bad)


def _count_now(t: ibis.Table, bad: ibis.Value) -> tuple[int, int]:
    row = t.aggregate(total=t.count(), bad=t.count(where=bad)).execute().iloc[0]
    return int(row["bad"]), int(row["total"])


def _birth(p: ibis.Table) -> ibis.Value:
    # DQD plausibleAfterBirth: birth_datetime, else year/month/day with month and day 1 when missing
    return ibis.coalesce(
        p.birth_datetime.cast("date"),
        ibis.date(p.year_of_birth, p.month_of_birth.fill_null(1), p.day_of_birth.fill_null(1)),
    )


def _specs() -> list[_Spec]:
    specs: list[_Spec] = []
    add = specs.append
    v54, v53 = schema.tables("5.4"), schema.tables("5.3")
    for t in EXPECTED:
        fatal = t in CORE
        add(_Spec(f"table_present.{t}", "conformance", f"table {t} exists", "fatal" if fatal else "warn", 0,
                  (), lambda con, t=t: (0 if t in con.present else 1, 1)))
        req53 = {c for c, _, r in v53.get(t, []) if r}
        required = tuple(c for c, _, r in v54[t] if r and c in req53)
        add(_Spec(f"columns_present.{t}", "conformance", f"required columns of {t} exist",
                  "fatal" if fatal else "warn", 0, ((t, ()),),
                  lambda con, t=t, cols=required: (
                      sum(c not in con.table(t).schema().names for c in cols), len(cols))))
        nullable = tuple(c for c in required if t in ("person", "observation_period") or c.endswith(
            ("person_id", "_start_date", "_date")) and c != "verbatim_end_date")
        if nullable:
            add(_Spec(f"required_not_null.{t}", "completeness",
                      f"rows of {t} with a null required field ({', '.join(nullable)})",
                      "fatal" if fatal else "warn", 0, ((t, nullable),),
                      lambda con, t=t, cols=nullable: _agg(
                          tb := con.table(t), ibis.or_(*[tb[c].isnull() for c in cols]))))
    add(_Spec("person_present", "completeness", "person table has rows", "fatal", 0, (("person", ()),),
              lambda con: (int(con.table("person").count().execute() == 0), 1)))
    for t, pk in schema.primary_keys("5.4").items():
        if t not in EXPECTED + tuple(e for e, *_ in EVENTS + ERAS):
            continue
        add(_Spec(f"primary_key_unique.{t}", "conformance",
                  f"{t}.{pk} is unique (violating = rows minus distinct values)",
                  "fatal" if t == "person" else "warn", 0, ((t, (pk,)),),
                  lambda con, t=t, pk=pk: _duplicates(con.table(t), pk)))
    for t, *_ in (("observation_period",), *EVENTS, *ERAS, ("death",)):
        desc = ("observation periods without a person" if t == "observation_period"
                else f"rows of {t} whose person_id is not in person")
        add(_Spec(f"person_reference.{t}", "conformance", desc, "warn", 0,
                  ((t, ("person_id",)), ("person", ("person_id",))),
                  lambda con, t=t: _orphans(con.table(t), con.table("person"))))
    add(_Spec("start_before_end.observation_period", "plausibility",
              "observation periods that end before they start", "fatal", 0,
              (("observation_period", ("observation_period_start_date", "observation_period_end_date")),),
              lambda con: _agg(op := con.table("observation_period"),
                               op.observation_period_end_date < op.observation_period_start_date)))
    add(_Spec("after_birth.observation_period", "plausibility", "observation periods starting before birth",
              "warn", 1, (("observation_period", ("person_id", "observation_period_start_date")),
                          ("person", ("person_id", "year_of_birth"))),
              lambda con: _before_birth(con, "observation_period", "observation_period_start_date")))
    for t, start, end, concept in EVENTS:
        add(_Spec(f"within_observation.{t}", "conformance",
                  f"rows of {t} starting outside every observation period of the person", "warn", 0,
                  ((t, ("person_id", start)), ("observation_period", ("person_id",))),
                  lambda con, t=t, s=start: _outside(con, t, s),
                  source="OMOP CDM v5.4 conventions (OBSERVATION_PERIOD)"))
        add(_Spec(f"after_birth.{t}", "plausibility", f"rows of {t} starting before birth", "warn", 1,
                  ((t, ("person_id", start)), ("person", ("person_id", "year_of_birth"))),
                  lambda con, t=t, s=start: _before_birth(con, t, s)))
        add(_Spec(f"before_death.{t}", "plausibility",
                  f"rows of {t} starting more than 60 days after death (among persons with a death)", "warn", 1,
                  ((t, ("person_id", start)), ("death", ("person_id", "death_date"))),
                  lambda con, t=t, s=start: _after_death(con, t, s)))
        if end:
            add(_Spec(f"start_before_end.{t}", "plausibility", f"rows of {t} ending before they start", "warn", 1,
                      ((t, (start, end)),), lambda con, t=t, s=start, e=end: _agg(
                          tb := con.table(t), tb[e] < tb[s])))
        add(_Spec(f"concept_zero.{t}", "completeness", f"rows of {t} with {concept} = 0 (unmapped)", "warn", 5,
                  ((t, (concept,)),), lambda con, t=t, c=concept: _agg(tb := con.table(t), tb[c] == 0)))
    for t, start, end, concept in ERAS:
        add(_Spec(f"concept_zero.{t}", "completeness", f"rows of {t} with {concept} = 0", "warn", 0,
                  ((t, (concept,)),), lambda con, t=t, c=concept: _agg(tb := con.table(t), tb[c] == 0)))
        add(_Spec(f"start_before_end.{t}", "plausibility", f"rows of {t} ending before they start", "warn", 1,
                  ((t, (start, end)),), lambda con, t=t, s=start, e=end: _agg(tb := con.table(t), tb[e] < tb[s])))
    for col, high in (("days_supply", 365), ("quantity", 1095)):
        add(_Spec(f"negative.drug_exposure.{col}", "conformance", f"drug_exposure.{col} < 0", "warn", 0,
                  (("drug_exposure", (col,)),), lambda con, c=col: _agg(d := con.table("drug_exposure"), d[c] < 0)))
        add(_Spec(f"value_high.drug_exposure.{col}", "plausibility", f"drug_exposure.{col} > {high}", "warn", 1,
                  (("drug_exposure", (col,)),),
                  lambda con, c=col, h=high: _agg(d := con.table("drug_exposure"), d[c] > h)))
    for t in VOCABULARY_CHECKED:
        add(_Spec(f"vocabulary_rows.{t}", "completeness",
                  f"vocabulary table {t} exists and has rows (without it concept sets fall back to other routes "
                  "and may miss events: see `follicle cohorts`)", "warn", 0, (),
                  lambda con, t=t: (0 if t in con.present and _has_rows(con.table(t)) else 1, 1),
                  source="OMOP CDM v5.4 conventions (standardized vocabularies)"))
    for t, _, _, concept in EVENTS:
        add(_Spec(f"concept_known.{t}", "conformance",
                  f"rows of {t} whose {concept} (not 0) is absent from concept", "warn", 0,
                  ((t, (concept,)), ("concept", ("concept_id",))),
                  lambda con, t=t, c=concept: _unknown_concepts(con.table(t), c, con.table("concept")),
                  source=f"{DQD} (isForeignKey)"))
    year = dt.date.today().year
    add(_Spec("implausible_age.person", "plausibility",
              f"persons with year_of_birth outside 1850..{year + 1} (age implausible)", "warn", 1,
              (("person", ("year_of_birth",)),),
              lambda con: _agg(p := con.table("person"), (p.year_of_birth < 1850) | (p.year_of_birth > year + 1))))
    return specs


def _has_rows(t: ibis.Table) -> bool:
    return int(t.limit(1).count().execute()) > 0


def _unknown_concepts(t: ibis.Table, column: str, concept: ibis.Table) -> _Pred:
    ids = concept.filter(concept.concept_id.notnull()).concept_id
    return _Pred(t, t[column].notnull() & (t[column] != 0) & ~t[column].isin(ids))


def _duplicates(t: ibis.Table, pk: str) -> tuple[int, int]:
    row = t.aggregate(total=t.count(), distinct=t[pk].nunique()).execute().iloc[0]
    return int(row["total"]) - int(row["distinct"]), int(row["total"])


def _orphans(t: ibis.Table, person: ibis.Table) -> _Pred:
    ids = person.filter(person.person_id.notnull()).person_id  # NOT IN a set holding NULL is never true
    return _Pred(t, t.person_id.notnull() & ~t.person_id.isin(ids))


def _outside(con: BaseBackend, table: str, start: str) -> tuple[int, int]:
    t, op = con.table(table), con.table("observation_period")
    inside = [
        t.person_id == op.person_id,
        t[start] >= op.observation_period_start_date,
        t[start] <= op.observation_period_end_date,
    ]
    return int(t.anti_join(op, inside).count().execute()), int(t.count().execute())


def _before_birth(con: BaseBackend, table: str, start: str) -> tuple[int, int]:
    t, p = con.table(table), con.table("person")
    births = p.select(pid=p.person_id, birth=_birth(p))
    j = t.join(births, t.person_id == births.pid)
    return _count_now(j, j[start] < j.birth)


def _after_death(con: BaseBackend, table: str, start: str) -> tuple[int, int]:
    t, d = con.table(table), con.table("death")
    deaths = d.group_by(pid=d.person_id).aggregate(death=d.death_date.min())
    j = t.join(deaths, t.person_id == deaths.pid)
    return _count_now(j, j[start] > j.death + ibis.interval(days=60))


def _status(severity: str, threshold: float, share: float) -> Status:
    if share <= threshold:
        return "PASS"
    return "FAIL" if severity == "fatal" else "WARN"


class _Cached:
    """The backend with ``table`` memoised: Ibis reads a table's schema on every ``table`` call."""

    def __init__(self, con: BaseBackend) -> None:
        self._con, self._tables = con, {}
        self.present = set(list_tables(con))

    def table(self, name: str) -> ibis.Table:
        if name not in self._tables:
            self._tables[name] = self._con.table(name)
        return self._tables[name]


def run_checks(con: BaseBackend) -> list[CheckResult]:
    """Run every data-quality check on the CDM behind *con*.

    Parameters
    ----------
    con : ibis.backends.BaseBackend
        The CDM (see :func:`follicle.cdm.connect.connect`).

    Returns
    -------
    list of CheckResult
        One per check: id, category, severity, threshold, violating and total rows, share and
        status (PASS, WARN, FAIL, NOT EVALUATED); see the module docstring for the checks.
    """
    con = _Cached(con)  # type: ignore[assignment]
    present = con.present
    out: list[CheckResult] = []
    pending: dict[int, tuple[ibis.Table, list[tuple[CheckResult, ibis.Value]]]] = {}
    for spec in _specs():
        res = CheckResult(id=spec.id, category=spec.category, description=spec.description,
                          severity=spec.severity, threshold=spec.threshold, source=spec.source)
        out.append(res)
        missing = [t for t, _ in spec.needs if t not in present]
        if not missing:
            missing = [f"{t}.{c}" for t, cols in spec.needs for c in cols
                       if c not in con.table(t).schema().names]
        if missing:
            res.note = f"not evaluated: {', '.join(missing)} absent"
            continue
        value = spec.count(con)
        if isinstance(value, _Pred):  # one scan per table for all its simple checks
            pending.setdefault(id(value.table), (value.table, []))[1].append((res, value.bad))
        else:
            _finish(res, *value)
    for table, items in pending.values():
        aggs = {f"b{i}": table.count(where=bad) for i, (_, bad) in enumerate(items)}
        row = table.aggregate(total=table.count(), **aggs).execute().iloc[0]
        for i, (res, _) in enumerate(items):
            _finish(res, int(row[f"b{i}"]), int(row["total"]))
    return out


def _finish(res: CheckResult, bad: int, total: int) -> None:
    share = 100.0 * bad / total if total else 0.0
    res.violating, res.total, res.share = bad, total, round(share, 4)
    res.status = _status(res.severity, res.threshold, share)


def failed_fatal(results: list[CheckResult]) -> list[CheckResult]:
    """The fatal checks that failed or could not be evaluated (absent core tables)."""
    return [r for r in results if r.severity == "fatal" and r.status in ("FAIL", "NOT EVALUATED")]
