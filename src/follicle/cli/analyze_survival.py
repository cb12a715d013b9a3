"""CLI command: ``follicle analyze survival DATA.csv --time T --event E [--group G] ...``.

Thin: read the CSV, check the columns, call :mod:`follicle.survival`, print tables or JSON.
"""

from __future__ import annotations

import json
import math
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from follicle.cli._common import JsonFlag, console, err_console, guarded, print_json, to_json
from follicle.errors import InputError

if TYPE_CHECKING:
    import pandas as pd


class Ties(str, Enum):
    efron = "efron"
    breslow = "breslow"


class TimeUnit(str, Enum):
    days = "days"
    weeks = "weeks"
    months = "months"
    years = "years"


def _read_csv(path: Path, needed: list[str]) -> pd.DataFrame:
    import pandas as pd

    if not path.is_file():
        raise FileNotFoundError(2, "No such file", str(path))
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as CSV ({exc})") from None
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: column{'s' if len(missing) > 1 else ''} not found: {', '.join(repr(c) for c in missing)}",
            problems=[f"columns in the file: {', '.join(map(str, frame.columns))}"],
        )
    return frame


def _design(frame: pd.DataFrame, group: str | None, covariates: list[str]) -> tuple[pd.DataFrame, dict[str, list[int]]]:
    """Numeric design matrix; a non-numeric (or multi-level group) column becomes 0/1 dummies, one term."""
    import numpy as np
    import pandas as pd

    blocks: list[pd.DataFrame] = []
    terms: dict[str, list[int]] = {}
    col = 0
    for name in ([group] if group else []) + covariates:
        s = frame[name]
        if s.isna().any():
            rows = np.flatnonzero(s.isna().to_numpy())[:5].tolist()
            raise InputError(f"column '{name}' has missing values (rows {rows}, counting from 0)")
        levels = sorted(s.unique(), key=str)
        numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
        if numeric and (name != group or set(levels) <= {0, 1}):
            block = pd.DataFrame({name: s.astype(float)})
        else:
            if len(levels) < 2:
                raise InputError(f"column '{name}' has a single value ({levels[0]!r}): nothing to compare")
            block = pd.DataFrame({f"{name}={lev}": (s == lev).astype(float) for lev in levels[1:]})
        blocks.append(block)
        terms[name] = list(range(col, col + block.shape[1]))
        col += block.shape[1]
    return pd.concat(blocks, axis=1), terms


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.reset_index().to_dict(orient="records")


def run_survival(
    path: Path, time: str, event: str, group: str | None, covariates: list[str], ties: str, conf_level: float,
    time_unit: str = "days", window: float | None = None,
) -> dict[str, Any]:
    """Compute everything the command reports, as a JSON-ready dict."""
    import numpy as np
    import pandas as pd

    from follicle.survival import (CoxPH, cox_zph, followup_by_group, incidence_rates, kaplan_meier_by_group,
                                   logrank_test, risk_comparison)

    needed = [time, event] + ([group] if group else []) + covariates
    frame = _read_csv(path, needed)
    t, e = frame[time], frame[event]
    out: dict[str, Any] = {"file": str(path), "time": time, "event": event, "group": group, "n": int(len(frame))}
    grp = frame[group] if group else pd.Series(np.repeat("all", len(frame)), name="group")
    curves = kaplan_meier_by_group(t, e, grp, conf_level=conf_level)
    out["events"] = int(sum(c.events for c in curves.values()))
    grid = np.linspace(0.0, float(t.max()), 6)
    out["numbers_at_risk"] = {"time": grid.tolist(),
                              "groups": [{"group": lab, "n_risk": c.at_risk(grid).tolist()} for lab, c in curves.items()]}
    out["kaplan_meier"] = [
        {"group": lab, "n": c.n, "events": c.events, "median": c.median, "median_ci_low": c.median_ci_low,
         "median_ci_high": c.median_ci_high,
         "curve": c.table[["time", "n_risk", "n_event", "n_censor", "survival", "ci_low", "ci_high"]]
         .to_dict(orient="records")}
        for lab, c in curves.items()
    ]
    fu = followup_by_group(t, e, grp)
    out["followup"] = _records(fu[["n", "events", "person_time", "mean", "median", "q1", "q3",
                                   "median_reverse_km"]].rename_axis("group"))
    rates = incidence_rates(t, e, grp, time_unit=time_unit, per=1000.0, conf_level=conf_level)
    out["incidence_per_1000_person_years"] = rates.to_dict(orient="records")
    if group:
        lr = logrank_test(t, e, frame[group])
        out["logrank"] = {"chisq": lr.chisq, "df": lr.df, "p": lr.p, "groups": _records(lr.table.set_index("group"))}
    if group and window is not None:
        labels = sorted(frame[group].unique(), key=str)
        if len(labels) == 2:
            out["risk_at_window"] = {
                est: _risk_dict(risk_comparison(t, e, frame[group], window=window, estimator=est, treated=labels[1],
                                                conf_level=conf_level))
                for est in ("crude", "km")
            }
    if group or covariates:
        X, terms = _design(frame, group, covariates)
        try:
            model = CoxPH(ties=ties, conf_level=conf_level).fit(X, t, e)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
            out["cox"] = {"ties": ties, "not_computed": f"Cox model not estimable on these data ({exc})",
                          "coefficients": [], "warnings": []}
        else:
            out["cox"] = {"ties": ties, "n": model.n_, "events": model.events_, "loglik": model.loglik_,
                          "converged": model.converged_, "warnings": list(model.warnings_),
                          "coefficients": _records(model.summary_), "infinite": model.result().to_dict()["infinite"]}
            try:  # a diagnostic: when it cannot be computed (one event, all times equal), say why, keep the model
                zph = cox_zph(model, X, t, e, terms=terms)
                out["ph_test"] = {"transform": "km", "terms": _records(zph.table)}
            except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
                out["ph_test"] = {"transform": "km", "estimable": False, "reason": str(exc)}
        out["_cells"] = {c: _cells(X[c], t, e) for c in X.columns if set(X[c].unique()) <= {0.0, 1.0}}
        out["_terms"] = {name: [X.columns[i] for i in idx] for name, idx in terms.items()}
    return out


def _cells(x: pd.Series, t: pd.Series, e: pd.Series) -> list[tuple[int, int]]:
    """(n, events) at x = 1 and at x = 0 of a 0/1 design column."""
    x = x.to_numpy() == 1
    ev = e.to_numpy().astype(bool)
    return [(int(x.sum()), int((x & ev).sum())), (int((~x).sum()), int((~x & ev).sum()))]


def protect(res: dict[str, Any], k: int) -> dict[str, Any]:
    """The result with the small-cell rules of :mod:`follicle.privacy` applied (docs/privacy.md):
    counts, rates, follow-up, KM curves and numbers at risk, log-rank, risks, Cox terms."""
    import pandas as pd

    from follicle.privacy import events_publishable, is_small, km_at_risk, protect_km, suppress_count

    res = json.loads(to_json(res))
    cells, terms = res.pop("_cells", {}), res.pop("_terms", {})
    withheld: list[str] = []
    ok_groups = {}
    for row in res["followup"]:
        ok_groups[str(row["group"])] = events_publishable(row["n"], row["events"], k)
    total_ok = events_publishable(res["n"], res["events"], k)
    res["n"] = suppress_count(res["n"], k)
    res["events"] = suppress_count(res["events"], k) if total_ok or is_small(res["events"], k) else None
    grid = res["numbers_at_risk"]["time"]
    for km in res["kaplan_meier"]:
        g = str(km["group"])
        table = pd.DataFrame(km["curve"])
        n0 = km["n"]
        safe = protect_km(table, k) if len(table) else table
        km["curve"] = json.loads(to_json(safe[["time", "n_risk", "n_event", "n_censor", "survival", "ci_low", "ci_high"]]
                                         .to_dict(orient="records"))) if len(table) else []
        for nar in res["numbers_at_risk"]["groups"]:
            if str(nar["group"]) == g:
                nar["n_risk"] = km_at_risk(safe, grid, n0, k) if len(table) else [0] * len(grid)
        km["n"] = suppress_count(km["n"], k)
        km["events"] = suppress_count(km["events"], k) if ok_groups.get(g, False) or is_small(km["events"], k) else None
    for row in res["followup"]:
        g = str(row["group"])
        if is_small(row["n"], k):  # mean x n = person-time would give n back
            for key in ("person_time", "mean", "median", "q1", "q3", "median_reverse_km"):
                row[key] = None
            withheld.append(f"follow-up of group {g}")
        row["n"] = suppress_count(row["n"], k)
        row["events"] = suppress_count(row["events"], k) if ok_groups[g] or is_small(row["events"], k) else None
    for row in res["incidence_per_1000_person_years"]:
        g = str(row["group"])
        if not ok_groups.get(g, False):
            row.update(rate=None, ci_low=None, ci_high=None)
            withheld.append(f"incidence rate of group {g}")
        if is_small(row["n"], k):
            row["person_years"] = None
        row["n"] = suppress_count(row["n"], k)
        row["events"] = suppress_count(row["events"], k) if ok_groups.get(g, False) or is_small(row["events"], k) else None
    all_ok = all(ok_groups.values())
    if "logrank" in res and not all_ok:
        res["logrank"] = {"withheld": "a group has fewer than min_cell_count events or non-events"}
        withheld.append("log-rank test")
    if "risk_at_window" in res and not all_ok:
        res["risk_at_window"] = {"withheld": "a group has fewer than min_cell_count events or non-events"}
        withheld.append("risks at the window")
    if "cox" in res:
        cox = res["cox"]
        bad_cols = {c for c, pairs in cells.items() if not all(events_publishable(n, ev, k) for n, ev in pairs)}
        bad_terms = {name for name, cols in terms.items() if set(cols) & bad_cols}
        for row in cox.get("coefficients", []):
            if row["term"] in bad_cols:
                for key in row:
                    if key != "term":
                        row[key] = None
        for row in res.get("ph_test", {}).get("terms", []):
            if row["term"] in bad_terms:
                row.update(chisq=None, p=None)
        if bad_cols:
            withheld.append("Cox terms with small cells: " + ", ".join(sorted(bad_cols)))
        for key in ("n", "events"):
            if key in cox:
                cox[key] = suppress_count(cox[key], k)
        if "events" in cox and not total_ok and not is_small(cox["events"], k):
            cox["events"] = None
    res["min_cell_count"] = k
    res["withheld"] = withheld
    return res


def _risk_dict(res: Any) -> dict[str, Any]:
    d = res.to_dict()
    d["or"] = d.pop("or_")
    return d




def _fmt(x: Any, digits: int = 3) -> str:
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "NA"
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def _print(res: dict[str, Any]) -> None:
    km = Table(title=f"Kaplan-Meier ({res['file']}): median {res['time']} with CI")
    for c in ("group", "n", "events", "median", "ci_low", "ci_high"):
        km.add_column(c)
    for row in res["kaplan_meier"]:
        km.add_row(str(row["group"]), str(row["n"]), str(row["events"]), _fmt(row["median"]),
                   _fmt(row["median_ci_low"]), _fmt(row["median_ci_high"]))
    console.print(km)
    nar = Table(title="Numbers at risk")
    nar.add_column("group")
    for tm in res["numbers_at_risk"]["time"]:
        nar.add_column(_fmt(tm))
    for g in res["numbers_at_risk"]["groups"]:
        nar.add_row(str(g["group"]), *(str(v) for v in g["n_risk"]))
    console.print(nar)
    fu = Table(title=f"Follow-up ({res['time']}) and incidence per 1,000 person-years")
    for c in ("group", "mean", "median", "reverse-KM median", "person-years", "rate", "ci_low", "ci_high"):
        fu.add_column(c)
    for f, r in zip(res["followup"], res["incidence_per_1000_person_years"]):
        fu.add_row(str(f["group"]), _fmt(f["mean"]), _fmt(f["median"]), _fmt(f["median_reverse_km"]),
                   _fmt(r["person_years"], 5), _fmt(r["rate"], 4), _fmt(r["ci_low"], 4), _fmt(r["ci_high"], 4))
    console.print(fu)
    risk = res.get("risk_at_window", {})
    if "withheld" in risk:
        console.print(f"Risks at the window: withheld ({risk['withheld']})")
        risk = {}
    for est, rc in risk.items():
        console.print(
            f"Risk by {rc['window']:g} ({est}): {rc['treated']['arm']} {rc['treated']['risk']:.4f} vs "
            f"{rc['comparator']['arm']} {rc['comparator']['risk']:.4f}; RD {rc['rd']:.4f} "
            f"[{_fmt(rc['rd_ci_low'], 4)}, {_fmt(rc['rd_ci_high'], 4)}], RR {_fmt(rc['rr'], 4)} "
            f"[{_fmt(rc['rr_ci_low'], 4)}, {_fmt(rc['rr_ci_high'], 4)}], OR {_fmt(rc['or'], 4)} "
            f"[{_fmt(rc['or_ci_low'], 4)}, {_fmt(rc['or_ci_high'], 4)}]"
        )
    if "logrank" in res:
        lr = res["logrank"]
        if "withheld" in lr:
            console.print(f"Log-rank test: withheld ({lr['withheld']})")
        else:
            console.print(f"Log-rank test: chisq = {lr['chisq']:.4g} on {lr['df']} df, p = {lr['p']:.4g}")
    if "cox" in res and res["cox"].get("not_computed"):
        console.print(f"[yellow]Cox model:[/] {res['cox']['not_computed']}")
    elif "cox" in res:
        cox = Table(title=f"Cox proportional hazards ({res['cox']['ties']} ties)")
        for c in ("term", "coef", "se", "hr", "ci_low", "ci_high", "p"):
            cox.add_column(c)
        for r in res["cox"]["coefficients"]:
            cox.add_row(str(r["term"]), *(_fmt(r[k], 4) for k in ("coef", "se", "hr", "ci_low", "ci_high", "p")))
        console.print(cox)
        for w in res["cox"]["warnings"]:
            console.print(f"[yellow]warning:[/] {w}")
        if "terms" not in res["ph_test"]:
            console.print(f"Proportional-hazards test: not estimable - {res['ph_test']['reason']}", markup=False)
        else:
            ph = Table(title="Proportional-hazards test (cox.zph, transform km)")
            for c in ("term", "chisq", "df", "p"):
                ph.add_column(c)
            for r in res["ph_test"]["terms"]:
                ph.add_row(str(r["term"]), _fmt(r["chisq"], 4), str(r["df"]), _fmt(r["p"], 4))
            console.print(ph)
    if res.get("withheld"):
        console.print(f"withheld to protect counts below {res['min_cell_count']}: {'; '.join(res['withheld'])}")


def register(group: typer.Typer) -> None:
    """Add the ``survival`` command to the analyze group."""

    @group.command("survival")
    @guarded
    def survival(
        data: Annotated[Path, typer.Argument(help="CSV file, one row per subject.")],
        time: Annotated[str, typer.Option("--time", help="Column with follow-up time (>= 0).")],
        event: Annotated[str, typer.Option("--event", help="Column with the event indicator (1 event, 0 censored).")],
        group_col: Annotated[str | None, typer.Option("--group", help="Column with the group to compare.")] = None,
        covariates: Annotated[str | None, typer.Option("--covariates", help="Comma-separated Cox covariates.")] = None,
        ties: Annotated[Ties, typer.Option("--ties", help="Tie handling in the Cox model.")] = Ties.efron,
        conf_level: Annotated[float, typer.Option("--conf-level", min=0.5, max=0.999)] = 0.95,
        time_unit: Annotated[TimeUnit, typer.Option("--time-unit", help="Unit of the time column.")] = TimeUnit.days,
        window: Annotated[float | None, typer.Option(
            "--window", help="Risk window end (time units): crude and 1-KM risk per arm, RD, RR, OR.")] = None,
        min_cell_count: Annotated[int, typer.Option(
            "--min-cell-count", min=1,
            help="Counts 1..N-1 are shown as '<N', and figures that would give them back are withheld "
                 "(docs/privacy.md). Below 5 needs --allow-small-cells.")] = 10,
        allow_small_cells: Annotated[bool, typer.Option(
            "--allow-small-cells", help="Allow --min-cell-count below 5 (1 = no suppression); a warning is printed.")] = False,
        json_out: JsonFlag = False,
    ) -> None:
        """Kaplan-Meier medians and curves, log-rank test, Cox model and PH test on your CSV.

        Also follow-up (mean, median, reverse-KM median) and incidence per 1,000 person-years per
        group; with --window and a two-level --group, the risk per arm at the window end.
        """
        from follicle.privacy import check_min_cell_count

        warning = check_min_cell_count(min_cell_count, allow_small_cells=allow_small_cells, where="--min-cell-count")
        covs = [c.strip() for c in covariates.split(",") if c.strip()] if covariates else []
        res = protect(run_survival(data, time, event, group_col, covs, ties.value, conf_level, time_unit.value, window),
                      min_cell_count)
        if warning:
            res["privacy_warning"] = warning
            err_console.print(f"[bold yellow]warning:[/] {warning}")
        if json_out:
            print_json(res)
        else:
            _print(res)
