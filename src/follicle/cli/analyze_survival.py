"""CLI command: ``follicle analyze survival DATA.csv --time T --event E [--group G] ...``.

Thin: read the CSV, check the columns, call :mod:`follicle.survival`, print tables or JSON.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.table import Table

from follicle.cli._common import JsonFlag, console, guarded, print_json
from follicle.errors import InputError
from follicle.survival import CoxPH, cox_zph, kaplan_meier_by_group, logrank_test


class Ties(str, Enum):
    efron = "efron"
    breslow = "breslow"


def _read_csv(path: Path, needed: list[str]) -> pd.DataFrame:
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
    path: Path, time: str, event: str, group: str | None, covariates: list[str], ties: str, conf_level: float
) -> dict[str, Any]:
    """Compute everything the command reports, as a JSON-ready dict."""
    needed = [time, event] + ([group] if group else []) + covariates
    frame = _read_csv(path, needed)
    t, e = frame[time], frame[event]
    out: dict[str, Any] = {"file": str(path), "time": time, "event": event, "group": group, "n": int(len(frame))}
    grp = frame[group] if group else pd.Series(np.repeat("all", len(frame)), name="group")
    curves = kaplan_meier_by_group(t, e, grp, conf_level=conf_level)
    out["events"] = int(sum(c.events for c in curves.values()))
    out["kaplan_meier"] = [
        {"group": lab, "n": c.n, "events": c.events, "median": c.median, "median_ci_low": c.median_ci_low,
         "median_ci_high": c.median_ci_high,
         "curve": c.table[["time", "n_risk", "n_event", "n_censor", "survival", "ci_low", "ci_high"]]
         .to_dict(orient="records")}
        for lab, c in curves.items()
    ]
    if group:
        lr = logrank_test(t, e, frame[group])
        out["logrank"] = {"chisq": lr.chisq, "df": lr.df, "p": lr.p, "groups": _records(lr.table.set_index("group"))}
    if group or covariates:
        X, terms = _design(frame, group, covariates)
        model = CoxPH(ties=ties, conf_level=conf_level).fit(X, t, e)
        zph = cox_zph(model, X, t, e, terms=terms)
        out["cox"] = {"ties": ties, "n": model.n_, "events": model.events_, "loglik": model.loglik_,
                      "converged": model.converged_, "warnings": list(model.warnings_),
                      "coefficients": _records(model.summary_)}
        out["ph_test"] = {"transform": "km", "terms": _records(zph.table)}
    return out


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
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
    if "logrank" in res:
        lr = res["logrank"]
        console.print(f"Log-rank test: chisq = {lr['chisq']:.4g} on {lr['df']} df, p = {lr['p']:.4g}")
    if "cox" in res:
        cox = Table(title=f"Cox proportional hazards ({res['cox']['ties']} ties)")
        for c in ("term", "coef", "se", "hr", "ci_low", "ci_high", "p"):
            cox.add_column(c)
        for r in res["cox"]["coefficients"]:
            cox.add_row(str(r["term"]), *(_fmt(r[k], 4) for k in ("coef", "se", "hr", "ci_low", "ci_high", "p")))
        console.print(cox)
        for w in res["cox"]["warnings"]:
            console.print(f"[yellow]warning:[/] {w}")
        ph = Table(title="Proportional-hazards test (cox.zph, transform km)")
        for c in ("term", "chisq", "df", "p"):
            ph.add_column(c)
        for r in res["ph_test"]["terms"]:
            ph.add_row(str(r["term"]), _fmt(r["chisq"], 4), str(r["df"]), _fmt(r["p"], 4))
        console.print(ph)


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
        json_out: JsonFlag = False,
    ) -> None:
        """Kaplan-Meier medians and curves, log-rank test, Cox model and PH test on your CSV."""
        covs = [c.strip() for c in covariates.split(",") if c.strip()] if covariates else []
        res = run_survival(data, time, event, group_col, covs, ties.value, conf_level)
        if json_out:
            print_json(res)
        else:
            _print(res)
