"""The OMOP CDM: schema (official DDL), connections, loading, writing, checks, summary, fingerprint.

Only this package and ``follicle.study`` (with ``follicle.vocab``) talk to a database. The names
below load their module on first use, so a command that only connects does not import the
loader, the checks or the writer.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module that defines it
_EXPORTS = {
    "CheckResult": "check", "failed_fatal": "check", "run_checks": "check",
    "connect": "connect", "list_tables": "connect",
    "fingerprint": "fingerprint",
    "LoadResult": "load", "load_cdm": "load",
    "Summary": "summary", "summarise": "summary",
    "init_cdm": "write", "write_cdm": "write",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"follicle.cdm.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
