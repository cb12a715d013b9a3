"""What is in a CDM, as aggregates only: persons, person-time, sex, birth years, top concepts.

Every count is computed in the database (Ibis expressions); counts from 1 to
``min_cell_count - 1`` leave as the string ``"<N"`` (N = min_cell_count), so the summary can be
shared outside the site.
"""

from __future__ import annotations

import datetime as dt

import ibis
from ibis.backends import BaseBackend
from pydantic import BaseModel

from follicle.cdm.connect import list_tables
from follicle.errors import DatabaseError
from follicle.privacy import suppress_count

Count = int | str

#: Summary sections: (name, table, concept column).
DOMAINS = (
    ("conditions", "condition_occurrence", "condition_concept_id"),
    ("drugs", "drug_exposure", "drug_concept_id"),
    ("measurements", "measurement", "measurement_concept_id"),
)


class ConceptCount(BaseModel):
    concept_id: int
    concept_name: str
    records: Count
    persons: Count


class Summary(BaseModel):
    """Aggregate description of one CDM; counts below ``min_cell_count`` are masked."""

    min_cell_count: int
    persons: Count
    person_years: float
    observation_start: dt.date | None
    observation_end: dt.date | None
    observation_periods: Count
    sex: dict[str, Count]
    year_of_birth: dict[str, Count]
    top: dict[str, list[ConceptCount]]



def summarise(con: BaseBackend, *, top_n: int = 10, min_cell_count: int = 10) -> Summary:
    """Summarise the CDM behind *con*: persons, person-years, sex, birth years, top concepts.

    Person-time counts observation periods of persons present in ``person`` only (orphan
    periods, as in GiBleed, are left out), each period counting end - start + 1 days.

    Parameters
    ----------
    con : ibis.backends.BaseBackend
        The CDM.
    top_n : int
        How many concepts per domain.
    min_cell_count : int
        Counts from 1 to ``min_cell_count - 1`` are written ``"<min_cell_count"``.

    Returns
    -------
    Summary
        Aggregate figures only, small counts suppressed.
    """
    if min_cell_count < 1:
        raise ValueError(f"min_cell_count must be >= 1; got {min_cell_count}")
    present = set(list_tables(con))
    missing = [t for t in ("person", "observation_period") if t not in present]
    if missing:
        raise DatabaseError(f"not an OMOP CDM: table(s) {', '.join(missing)} not found")
    s = lambda n: suppress_count(int(n), min_cell_count)  # noqa: E731
    person = con.table("person")
    op = con.table("observation_period")
    op = op.semi_join(person, op.person_id == person.person_id)
    days = op.observation_period_end_date.delta(op.observation_period_start_date, unit="day") + 1
    obs = op.aggregate(
        n=op.count(), days=days.sum(), start=op.observation_period_start_date.min(),
        end=op.observation_period_end_date.max(),
    ).execute().iloc[0]
    names = _names(con, present)

    sex_counts = person.group_by("gender_concept_id").aggregate(n=person.count()).execute()
    sex = {}
    for cid, n in sorted(zip(sex_counts.gender_concept_id, sex_counts.n, strict=True), key=lambda x: -x[1]):
        sex[_label(cid, names)] = s(n)

    decade = (person.year_of_birth // 10) * 10
    yob = person.group_by(decade=decade).aggregate(n=person.count()).order_by("decade").execute()
    year_of_birth = {
        ("unknown" if d is None or d != d else f"{int(d)}-{int(d) + 9}"): s(n)
        for d, n in zip(yob.decade, yob.n, strict=True)
    }

    top: dict[str, list[ConceptCount]] = {}
    for section, table, col in DOMAINS:
        if table not in present:
            top[section] = []
            continue
        t = con.table(table)
        agg = (
            t.group_by(concept_id=t[col])
            .aggregate(records=t.count(), persons=t.person_id.nunique())
            .order_by([ibis.desc("records"), "concept_id"])
            .limit(top_n)
        )
        if names is not None:
            agg = agg.left_join(names, agg.concept_id == names.cid).select(
                "concept_id", "records", "persons", "concept_name"
            ).order_by([ibis.desc("records"), "concept_id"])
        df = agg.execute()
        top[section] = [
            ConceptCount(
                concept_id=int(r.concept_id),
                concept_name=_name_or_id(getattr(r, "concept_name", None), r.concept_id),
                records=s(r.records),
                persons=s(r.persons),
            )
            for r in df.itertuples()
        ]
    return Summary(
        min_cell_count=min_cell_count,
        persons=s(person.count().execute()),
        person_years=round(float(obs.days or 0) / 365.25, 1),
        observation_start=_date(obs.start),
        observation_end=_date(obs.end),
        observation_periods=s(obs.n),
        sex=sex,
        year_of_birth=year_of_birth,
        top=top,
    )


def _names(con: BaseBackend, present: set[str]) -> ibis.Table | None:
    if "concept" not in present:
        return None
    c = con.table("concept")
    return c.select(cid=c.concept_id, concept_name=c.concept_name)


def _label(cid: object, names: ibis.Table | None) -> str:
    if cid is None or cid != cid:
        return "unknown"
    if names is None:
        return f"concept {int(cid)}"
    hit = names.filter(names.cid == int(cid)).concept_name.execute()
    return _name_or_id(hit.iloc[0] if len(hit) else None, cid)


#: OMOP standard gender concepts, named when a CDM's concept table lacks them (Synthea27Nj).
_GENDER = {8507: "MALE", 8532: "FEMALE", 8551: "UNKNOWN", 8521: "OTHER"}


def _name_or_id(name: object, cid: object) -> str:
    if isinstance(name, str) and name:
        return name
    if int(cid) in _GENDER:
        return _GENDER[int(cid)]
    return "No matching concept" if int(cid) == 0 else f"concept {int(cid)} (not in concept table)"


def _date(value: object) -> dt.date | None:
    if value is None or value != value:
        return None
    return value.date() if hasattr(value, "date") else value
