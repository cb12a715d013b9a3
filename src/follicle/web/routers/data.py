"""The Data page: what the CDM holds (aggregate summary) and its data-quality checks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from follicle.privacy import is_small, suppress_count
from follicle.web.deps import cached, cdm
from follicle.web.templating import render

router = APIRouter(prefix="/data")


@router.get("", response_class=HTMLResponse)
def data_page(request: Request) -> HTMLResponse:
    from follicle.cdm.summary import summarise

    k = request.app.state.settings.min_cell_count

    def compute() -> Any:
        with cdm(request) as con:
            return summarise(con, top_n=15, min_cell_count=k)

    return render(request, "data.html.j2", summary=cached(request, f"summary:{k}", compute))


def check_rows(results: list[Any], min_cell_count: int) -> list[dict[str, Any]]:
    """Check results for display: a small violating count shows as ``"<k"`` and its share is withheld
    (with the row total it would give the count back)."""
    rows = []
    for r in results:
        row = r.model_dump()
        small = is_small(r.violating, min_cell_count) or is_small(r.total, min_cell_count)
        row["violating"] = suppress_count(r.violating, min_cell_count)
        row["total"] = suppress_count(r.total, min_cell_count)
        row["share"] = None if small else r.share
        rows.append(row)
    return rows


@router.get("/checks", response_class=HTMLResponse)
def checks(request: Request) -> HTMLResponse:
    from follicle.cdm.check import failed_fatal, run_checks

    def compute() -> Any:
        with cdm(request) as con:
            return run_checks(con)

    results = cached(request, "checks", compute)
    k = request.app.state.settings.min_cell_count
    rows = check_rows(results, k)
    counts = {s: sum(r["status"] == s for r in rows) for s in ("PASS", "WARN", "FAIL", "NOT EVALUATED")}
    return render(request, "fragments/checks.html.j2", rows=rows, counts=counts,
                  fatal=[r.id for r in failed_fatal(results)])
