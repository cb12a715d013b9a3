"""Monitoring schedule: the sourced tasks as dated items from a start date, and their status.

Timing comes only from the knowledge base (``kind: monitoring``): ``at: baseline`` (a result on
or before the start date; the sources give no maximum age, so the date is shown and the
clinician judges it), ``at_weeks: w`` (by week *w*; the sources give a time point, not a
window, so any result after starting up to that week counts, a later one counts as done late),
``window_weeks: [a, b]`` (between week *a* and week *b*), and ``every_months: m`` (one result in
each *m*-month interval up to the horizon). A task is *overdue* when its last day has passed with
no result for one of its analytes.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from follicle.cds.kb import Source

if TYPE_CHECKING:
    from follicle.cds.facts import HistoryEntry
    from follicle.cds.kb import KnowledgeBase

TaskStatus = Literal["done", "done_late", "missed", "due", "overdue", "upcoming"]


class ScheduledTask(BaseModel):
    """One dated monitoring task with its source and status on ``as_of``."""

    rule_id: str
    label: str
    analytes: list[str]
    due_from: date | None
    due_by: date
    status: TaskStatus
    done_on: date | None = None
    missing_analytes: list[str] = []
    message: str
    source: Source
    status_tag: str
    basis: str
    checked: date
    note: str | None = None


class Schedule(BaseModel):
    drug: str
    start: date
    as_of: date
    horizon_months: int
    tasks: list[ScheduledTask]

    @property
    def overdue(self) -> list[ScheduledTask]:
        return [t for t in self.tasks if t.status == "overdue"]

    @property
    def due(self) -> list[ScheduledTask]:
        return [t for t in self.tasks if t.status == "due"]


def add_months(d: date, months: int) -> date:
    """*d* plus calendar months, clipped to the month's last day (31 Jan + 1 month = 28/29 Feb)."""
    m = d.month - 1 + months
    y, m = d.year + m // 12, m % 12 + 1
    return date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


def task_status(
    analytes: list[str], due_from: date | None, due_by: date, as_of: date, history: list[HistoryEntry],
    *, periodic: bool = False,
) -> tuple[TaskStatus, date | None, list[str]]:
    """Status of one task from the lab history: (status, date done, analytes still missing).

    A result after the last day makes a one-off task ``done_late``; for a periodic task that result
    belongs to a later interval, so the past interval is ``missed`` (later results exist) or
    ``overdue`` (none since the window opened).
    """
    done_dates: list[date] = []
    late: dict[str, date] = {}
    missing: list[str] = []
    for a in analytes:
        dates = sorted(h.date for h in history if h.analyte == a and h.date <= as_of and (due_from is None or h.date >= due_from))
        in_time = [d for d in dates if d <= due_by]
        if in_time:
            done_dates.append(in_time[-1])
        elif dates:
            late[a] = dates[0]
        else:
            missing.append(a)
    if periodic and late:
        return "missed", None, sorted(set(late) | set(missing), key=analytes.index)
    if not missing:
        if not late:
            return "done", max(done_dates), []
        return "done_late", max(late.values()), []
    if as_of > due_by:
        return "overdue", None, missing
    if due_from is None or as_of >= due_from:
        return "due", None, missing
    return "upcoming", None, missing


def build_schedule(
    kb: KnowledgeBase,
    drug: str,
    start: date,
    *,
    as_of: date,
    history: list[HistoryEntry] | None = None,
    horizon_months: int = 12,
    region: str | None = None,
) -> Schedule:
    """Dated monitoring tasks for *drug* from *start* up to *horizon_months*, with status on *as_of*."""
    if horizon_months < 1:
        raise ValueError(f"horizon_months must be >= 1, got {horizon_months}")
    history = history or []
    horizon = add_months(start, horizon_months)
    tasks: list[ScheduledTask] = []
    for rule in kb.for_drug(drug, kinds={"monitoring"}, region=region):
        t = rule.task
        assert t is not None
        windows: list[tuple[date | None, date, str]] = []
        if t.at == "baseline":
            windows.append((None, start, t.label))
        elif t.at_weeks is not None:
            windows.append((start + timedelta(days=1), start + timedelta(weeks=t.at_weeks), t.label))
        elif t.window_weeks is not None:
            a, b = t.window_weeks
            windows.append((start + timedelta(weeks=a), start + timedelta(weeks=b), t.label))
        else:
            k, prev = 1, start
            while (due := add_months(start, k * t.every_months)) <= horizon:  # type: ignore[operator]
                windows.append((prev + timedelta(days=1), due, f"{t.label}, month {k * t.every_months}"))
                k, prev = k + 1, due
        for due_from, due_by, label in windows:
            status, done_on, missing = task_status(list(t.analytes), due_from, due_by, as_of, history,
                                                   periodic=t.every_months is not None)
            tasks.append(ScheduledTask(
                rule_id=rule.id, label=label, analytes=list(t.analytes), due_from=due_from, due_by=due_by,
                status=status, done_on=done_on, missing_analytes=missing, message=rule.message,
                source=rule.source, status_tag=rule.status, basis=rule.basis, checked=rule.checked, note=rule.note,
            ))
    tasks.sort(key=lambda x: (x.due_by, x.rule_id))
    return Schedule(drug=drug, start=start, as_of=as_of, horizon_months=horizon_months, tasks=tasks)
