"""How often concepts occur in a CDM: records and distinct persons per event table, in the database.

Counts the rows whose standard concept column (``<domain>_concept_id``) or source concept column
(``<domain>_source_concept_id``) is one of the given ids, per table that exists. Raw counts:
apply :func:`follicle.privacy.suppress_count` before anything leaves the machine.
"""

from __future__ import annotations

from collections.abc import Iterable

import ibis
import pandas as pd
from ibis.backends import BaseBackend

from follicle.cdm.connect import list_tables

#: Event tables and their (standard, source) concept columns
EVENT_COLUMNS = (
    ("condition_occurrence", "condition_concept_id", "condition_source_concept_id"),
    ("drug_exposure", "drug_concept_id", "drug_source_concept_id"),
    ("procedure_occurrence", "procedure_concept_id", "procedure_source_concept_id"),
    ("measurement", "measurement_concept_id", "measurement_source_concept_id"),
    ("observation", "observation_concept_id", "observation_source_concept_id"),
    ("device_exposure", "device_concept_id", "device_source_concept_id"),
    ("visit_occurrence", "visit_concept_id", "visit_source_concept_id"),
)


def concept_counts(con: BaseBackend, concept_ids: Iterable[int]) -> pd.DataFrame:
    """Records and distinct persons matching *concept_ids*, one row per table and column kind.

    Columns: ``table``, ``column`` (``standard`` or ``source``), ``records``, ``persons``; only
    tables with at least one record are returned.
    """
    ids = sorted({int(i) for i in concept_ids})
    present = set(list_tables(con))
    rows = []
    if not ids:
        return pd.DataFrame(columns=["table", "column", "records", "persons"])
    for table, std, src in EVENT_COLUMNS:
        if table not in present:
            continue
        t = con.table(table)
        for kind, col in (("standard", std), ("source", src)):
            if col not in t.columns:
                continue
            hit = t.filter(t[col].isin(ids))
            row = hit.aggregate(records=hit.count(), persons=hit.person_id.nunique()).execute().iloc[0]
            if int(row["records"]):
                rows.append({"table": table, "column": kind, "records": int(row["records"]),
                             "persons": int(row["persons"])})
    return pd.DataFrame(rows, columns=["table", "column", "records", "persons"])


def persons_with_any(con: BaseBackend, concept_ids: Iterable[int]) -> int:
    """Distinct persons with a record of any of *concept_ids* in any event table (standard or source column)."""
    ids = sorted({int(i) for i in concept_ids})
    present = set(list_tables(con))
    parts = []
    for table, std, src in EVENT_COLUMNS:
        if table not in present or not ids:
            continue
        t = con.table(table)
        pred = [t[c].isin(ids) for c in (std, src) if c in t.columns]
        if pred:
            parts.append(t.filter(ibis.or_(*pred)).select(person_id=t.person_id.cast("int64")))
    if not parts:
        return 0
    union = ibis.union(*parts, distinct=True) if len(parts) > 1 else parts[0].distinct()
    return int(union.count().execute())
