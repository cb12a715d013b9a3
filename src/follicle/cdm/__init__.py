"""The OMOP CDM: schema (official DDL), connections, loading, writing, checks, summary, fingerprint.

Only this package and ``follicle.study`` (with ``follicle.vocab``) talk to a database.
"""

from follicle.cdm.check import CheckResult, failed_fatal, run_checks
from follicle.cdm.connect import connect, list_tables
from follicle.cdm.fingerprint import fingerprint
from follicle.cdm.load import LoadResult, load_cdm
from follicle.cdm.summary import Summary, summarise
from follicle.cdm.write import init_cdm, write_cdm

__all__ = [
    "CheckResult",
    "LoadResult",
    "Summary",
    "connect",
    "failed_fatal",
    "fingerprint",
    "init_cdm",
    "list_tables",
    "load_cdm",
    "run_checks",
    "summarise",
    "write_cdm",
]
