"""CLI command: ``follicle analyze match`` (propensity-score matching on a researcher's own CSV)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from follicle.cli._common import JsonFlag, console, err_console, guarded, print_json
from follicle.errors import InputError

if TYPE_CHECKING:
    import pandas as pd


def _read(path: Path, treatment: str, covariates: list[str]) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    if not path.is_file():
        raise InputError(f"file not found: {path}")
    try:
        data = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as CSV ({exc})") from None
    wanted = [treatment, *covariates]
    missing = [c for c in wanted if c not in data.columns]
    if missing:
        raise InputError(f"{path}: column(s) not found: {', '.join(repr(c) for c in missing)}",
                         problems=[f"columns present: {', '.join(map(str, data.columns))}"])
    problems = []
    for col in wanted:
        na = data[col].isna().to_numpy()
        if na.any():
            problems.append(f"column '{col}' is empty on line {int(np.flatnonzero(na)[0]) + 2} "
                            f"({int(na.sum())} rows in all)")
        elif col != treatment and not pd.api.types.is_numeric_dtype(data[col]):
            bad = pd.to_numeric(data[col], errors="coerce").isna().to_numpy()
            i = int(np.flatnonzero(bad)[0])
            problems.append(f"column '{col}' is not numeric: {data[col].iloc[i]!r} on line {i + 2} "
                            "(encode categories as 0/1 columns)")
    if problems:
        raise InputError(f"{path}: the data cannot be used as given", problems=problems)
    return data


def _write_atomic(frame: pd.DataFrame, out: Path) -> None:
    """Write CSV to a temporary file beside *out*, then rename: no half-written output."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            frame.to_csv(fh, index=False)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_match(data_path: Path, *, treatment: str, covariates: list[str], caliper: float | None,
              caliper_scale: str, ratio: int, variable_ratio: bool, order: str, seed: int,
              penalty: str, out: Path | None) -> dict[str, Any]:
    """Read, fit the PS model, match, check balance; write the matched rows if asked. Returns results."""
    import numpy as np

    from follicle.causal import balance_table, fit_propensity, match, matched_frame
    from follicle.causal._validate import as_treatment
    from follicle.run.disclosure import binary_cells

    data = _read(data_path, treatment, covariates)
    t = as_treatment(data[treatment], name=treatment)
    X = data[covariates].astype(float)
    model = fit_propensity(X, t, penalty=penalty)  # type: ignore[arg-type]
    result = match(model.ps_, t, caliper=caliper, caliper_scale=caliper_scale,  # type: ignore[arg-type]
                   ratio=ratio, variable_ratio=variable_ratio, order=order, seed=seed)  # type: ignore[arg-type]
    if result.n_pairs == 0:
        raise InputError(f"no pairs within the caliper ({caliper} on scale {caliper_scale}); "
                         "widen --caliper or check the overlap of the groups")
    weights = result.weights()
    bal = balance_table(X, t, weights_after=weights)
    cells = binary_cells(X.to_numpy(), np.asarray(t), np.asarray(weights) > 0)
    if out is not None:
        matched = matched_frame(data, result)
        matched.insert(len(matched.columns) - 2, "propensity_score", model.ps_[result.index()])
        _write_atomic(matched, out)
    return {
        "file": str(data_path),
        "treatment": treatment,
        "propensity_model": {
            "penalty": penalty,
            "coefficients": model.coefficients().to_dict(orient="records"),
            "auc": model.auc_,
            "equipoise": model.equipoise_,
        },
        "matching": {**result.settings, **result.counts()},
        "balance": bal.to_dict(orient="records"),
        "_cells": cells,
        "balance_pass": bool((bal["status"] == "PASS").all()),
        "out": str(out) if out is not None else None,
    }


def protect(res: dict[str, Any], k: int) -> dict[str, Any]:
    """Counts suppressed, the treated/control chains before and after matching protected, and the
    SMDs of binary covariates with small cells withheld (docs/privacy.md)."""
    import pandas as pd

    from follicle.privacy import protect_chain, suppress_count
    from follicle.run.disclosure import protect_rows

    cells = res.pop("_cells")
    m = res["matching"]
    n = {"before": {"target": m["n_treated"], "comparator": m["n_control"]},
         "after": {"target": m["n_treated_matched"], "comparator": m["n_control_matched"]}}
    for arm, (nb, na) in (("treated", ("n_treated", "n_treated_matched")), ("control", ("n_control", "n_control_matched"))):
        m[nb], m[na] = protect_chain([m[nb], m[na]], k)
    m["n_pairs"] = suppress_count(m["n_pairs"], k)
    res["balance"], hidden = protect_rows(pd.DataFrame(res["balance"]), cells, n, k, value_columns={},
                                          smd_columns={"smd_before": "before", "smd_after": "after"})
    res["min_cell_count"] = k
    res["withheld_balance_rows"] = hidden
    return res


def _f(x: Any, spec: str) -> str:
    return "withheld" if x is None else format(x, spec)


def _print(res: dict[str, Any]) -> None:
    pm = res["propensity_model"]
    tab = Table(title=f"Propensity model (logistic, penalty {pm['penalty']}); AUC {pm['auc']:.3f}, "
                      f"equipoise {pm['equipoise']:.1%}")
    for col in ("term", "coef", "se", "p"):
        tab.add_column(col, justify="left" if col == "term" else "right")
    for row in pm["coefficients"]:
        tab.add_row(row["term"], f"{row['coef']:.4f}", f"{row['se']:.4f}", f"{row['p']:.3g}")
    console.print(tab)
    m = res["matching"]
    console.print(f"Matched {m['n_treated_matched']} of {m['n_treated']} treated with {m['n_control_matched']} "
                  f"of {m['n_control']} controls ({m['n_pairs']} pairs; order {m['order']}, caliper width "
                  f"{m['caliper_width']:.4g} on the {'PS' if m['caliper_scale'] == 'ps' else 'logit'} scale)")
    bt = Table(title="Covariate balance (standardised mean differences)")
    for col in ("covariate", "smd_before", "smd_after", "status"):
        bt.add_column(col, justify="left" if col == "covariate" else "right")
    for row in res["balance"]:
        bt.add_row(row["covariate"], _f(row["smd_before"], "+.3f"), _f(row["smd_after"], "+.3f"), row["status"])
    console.print(bt)
    if res["out"]:
        console.print(f"Matched rows written to {res['out']}")


def register(group: typer.Typer) -> None:
    """Add ``match`` to the analyze group."""

    @group.command("match")
    @guarded
    def match_cmd(
        data: Annotated[Path, typer.Argument(help="CSV with one row per patient.")],
        treatment: Annotated[str, typer.Option("--treatment", help="0/1 treatment column.")],
        covariates: Annotated[str, typer.Option("--covariates", help="Comma-separated covariate columns.")],
        caliper: Annotated[float, typer.Option(help="Caliper (default 0.1 SD of the logit PS, as TriNetX).")] = 0.1,
        caliper_scale: Annotated[str, typer.Option(help="std_logit | logit | ps.")] = "std_logit",
        ratio: Annotated[int, typer.Option(help="Controls per treated patient (1:k).")] = 1,
        variable_ratio: Annotated[bool, typer.Option(help="Keep sets with fewer than k controls.")] = False,
        order: Annotated[str, typer.Option(help="random (seeded, TriNetX) | closest (OHDSI).")] = "random",
        seed: Annotated[int, typer.Option(help="Seed of the random matching order.")] = 0,
        penalty: Annotated[str, typer.Option(help="none | l1 | l2 (regularised PS, cross-validated).")] = "none",
        out: Annotated[Path | None, typer.Option(help="Write the matched rows (with set_id) to this CSV (row-level: keep it local).")] = None,
        min_cell_count: Annotated[int, typer.Option("--min-cell-count", min=1,
                                                    help="Counts 1..N-1 shown as '<N'; below 5 needs --allow-small-cells.")] = 10,
        allow_small_cells: Annotated[bool, typer.Option("--allow-small-cells", help="Allow --min-cell-count below 5.")] = False,
        json_out: JsonFlag = False,
    ) -> None:
        """Propensity-score matching: PS model, matched pairs, balance before and after."""
        from follicle.privacy import check_min_cell_count

        covs = [c.strip() for c in covariates.split(",") if c.strip()]
        if not covs:
            raise InputError("--covariates: give at least one column name")
        if treatment in covs:
            raise InputError(f"--covariates: the treatment column '{treatment}' cannot also be a covariate")
        warning = check_min_cell_count(min_cell_count, allow_small_cells=allow_small_cells, where="--min-cell-count")
        res = run_match(data, treatment=treatment, covariates=covs, caliper=caliper, caliper_scale=caliper_scale,
                        ratio=ratio, variable_ratio=variable_ratio, order=order, seed=seed, penalty=penalty, out=out)
        res = protect(res, min_cell_count)
        if warning:
            res["privacy_warning"] = warning
            err_console.print(f"[bold yellow]warning:[/] {warning}")
        if json_out:
            print_json(res)
        else:
            _print(res)
