"""CLI: ``follicle meta`` - meta-analysis of a CSV of studies or of a spec file.

Reads the data, calls :mod:`follicle.synthesis`, prints a table or JSON and writes the forest and
funnel plots only after every computation succeeded (each to a temporary file, then renamed).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.table import Table

from follicle.cli._common import JsonFlag, console, err_console, guarded, print_json
from follicle.errors import InputError, SpecError

if TYPE_CHECKING:
    import pandas as pd

MEASURES = ("OR", "RR", "RD", "MD", "SMD", "GEN")
METHODS = ("EE", "MH", "PETO", "DL", "REML", "PM", "ML", "SJ", "HE", "EB", "HS", "HSk")
AUXILIARY = ("leave_one_out", "influence", "egger", "trimfill")
_XLABEL = {"OR": "Odds ratio", "RR": "Risk ratio", "RD": "Risk difference", "MD": "Mean difference",
           "SMD": "Standardized mean difference (Hedges' g)", "GEN": "Estimate", "PETO": "Odds ratio (Peto)"}
_XLABEL_RATIO = "Ratio (generic)"


def _read_csv(path: Path) -> pd.DataFrame:
    import pandas as pd

    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: not a readable CSV file ({exc})") from None


def _load_data(ref: str, base: Path) -> tuple[pd.DataFrame, str]:
    import pandas as pd

    if ref.startswith("bundled:"):
        from follicle.synthesis.data import load_jaki_rct

        name = ref.split(":", 1)[1]
        if name != "jaki_rct_salt20":
            raise SpecError(f"data: unknown bundled data set {name!r} (known: jaki_rct_salt20)")
        return load_jaki_rct(), ref
    path = (base / ref) if not Path(ref).is_absolute() else Path(ref)
    return _read_csv(path), str(path)


def _write_figures(figures: dict[Path, Any]) -> None:
    """Save every figure to a temporary file next to its target, then rename them all."""
    from follicle.report.forest import save_figures

    if figures:
        save_figures(figures)


def _check_fig_path(opt: str, path: Optional[Path]) -> None:
    if path is not None and path.suffix.lower() not in (".png", ".svg"):
        raise InputError(f"{opt} must name a .png or .svg file; got {path}")


def _result_json(obj: Any) -> Any:
    import numpy as np

    from follicle.synthesis.pooling import MetaResult

    if isinstance(obj, MetaResult):
        return obj.to_dict()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _result_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: _result_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_result_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _print_result(res: Any, title: str) -> None:
    import numpy as np

    ratio = res.is_ratio
    tr = np.exp if ratio else (lambda v: v)
    table = Table(title=title)
    for col in ("Study", "Estimate", "95% CI", "Weight %"):
        table.add_column(col, justify="left" if col == "Study" else "right")
    shown = {lab: (y, v) for lab, y, v in zip(res.labels, res.yi, res.vi)}
    for row in res.studies():
        lab, w = row["study"], row["weight"]
        wtxt = f"{w:.1f}" if np.isfinite(w) else "NA"
        if lab not in shown:
            table.add_row(lab, "not estimable", "(double-zero study, dropped)", wtxt)
            continue
        y, v = shown[lab]
        s = float(np.sqrt(v))
        table.add_row(lab, f"{tr(y):.3f}", f"{tr(y - 1.959964 * s):.3f} to {tr(y + 1.959964 * s):.3f}", wtxt)
    label = f"[bold]Pooled ({res.method}{', HK' if res.knha else ''})[/]"
    if res.estimable:
        table.add_row(label, f"[bold]{tr(res.estimate):.3f}[/]", f"{tr(res.ci_low):.3f} to {tr(res.ci_high):.3f}", "100.0")
    else:
        table.add_row(label, "[bold]not estimable[/]", "", "")
    console.print(table)
    if not res.estimable:
        console.print(f"Pooled estimate not estimable: {res.not_estimable['estimate']}", highlight=False, markup=False)
    tau2_ci = (f"[{res.tau2_ci_low:.4f}, {res.tau2_ci_high:.4f}]" if "tau2_ci" not in res.not_estimable
               else f"(CI not estimable: {res.not_estimable['tau2_ci']})")
    tau2 = "" if res.method in ("MH", "PETO") else f"tau^2 = {res.tau2:.4f} {tau2_ci}; "
    pi = f"prediction interval {tr(res.pi_low):.3f} to {tr(res.pi_high):.3f}; " if res.estimable and tau2 else ""
    console.print(
        f"k = {res.k}; {pi}{tau2}"
        f"I^2 = {res.i2:.1f}% (conventional {res.i2_conventional:.1f}%); H^2 = {res.h2:.2f}; "
        f"Q = {res.q:.3f} (df {res.q_df}, p = {res.q_p:.3g})",
        highlight=False, markup=False,
    )
    if "cmh" in res.extra:
        cmh = res.extra["cmh"]
        console.print(f"Cochran-Mantel-Haenszel test: CMH = {cmh:.3f}, p = {res.extra['cmh_p']:.3g}" if np.isfinite(cmh)
                      else f"Cochran-Mantel-Haenszel test: not estimable ({res.not_estimable.get('cmh', '')})",
                      highlight=False, markup=False)
    if res.dropped:
        console.print(f"dropped (no events or all events in both arms): {', '.join(res.dropped)}", markup=False)
    for note in res.notes:
        console.print(f"note: {note}", highlight=False, markup=False)


def _print_auxiliary(out: dict[str, Any]) -> None:
    """One line per auxiliary analysis: its result, or 'not estimable' with the reason."""
    import numpy as np

    def missing(name: str, title: str) -> bool:
        if out[name]["estimable"]:
            return False
        console.print(f"{title}: not estimable - {out[name]['reason']}", highlight=False, markup=False)
        return True

    if not missing("egger", "Egger's test"):
        eg = out["egger"]
        console.print(f"Egger's test (metafor regtest, sei predictor): stat = {eg['stat']:.3f}, "
                      f"p = {eg['pval']:.3g} {eg['note']}".rstrip(), highlight=False, markup=False)
        for note in eg["notes"]:
            console.print(f"  note: {note}", highlight=False, markup=False)
    if not missing("trimfill", "Trim-and-fill"):
        tf = out["trimfill"]
        adj = tf["adjusted"]
        tr = np.exp if adj.is_ratio else (lambda v: v)
        console.print(f"Trim-and-fill (L0): {tf['k0']} missing on the {tf['side']}; adjusted estimate "
                      f"{tr(adj.estimate):.3f} [{tr(adj.ci_low):.3f}, {tr(adj.ci_high):.3f}]", highlight=False)
    if not missing("leave_one_out", "Leave-one-out"):
        rows = out["leave_one_out"]["rows"]
        est = np.array([r["estimate"] for r in rows], float)
        failed = [r["study"] for r in rows if not np.isfinite(r["estimate"])]
        ok = est[np.isfinite(est)]
        if ok.size:
            tr = np.exp if out["overall"].is_ratio else (lambda v: v)
            console.print(f"Leave-one-out: pooled estimate from {tr(ok.min()):.3f} to {tr(ok.max()):.3f}"
                          + (f"; not estimable without {', '.join(failed)}" if failed else ""), highlight=False,
                          markup=False)
        else:
            console.print(f"Leave-one-out: not estimable without any single study ({rows[0]['note']})", markup=False)
    if not missing("influence", "Influence diagnostics"):
        flagged = [r["study"] for r in out["influence"]["rows"] if r["influential"]]
        console.print("Influence diagnostics (metafor influence): "
                      + (f"influential: {', '.join(flagged)}" if flagged else "no influential study"),
                      highlight=False, markup=False)


def _forest_for_spec(out: dict[str, Any], spec: Any) -> Any:
    from follicle.report.forest import forest_plot, spec_rows

    rows, footer = spec_rows(out, out.get("_study_groups"), spec.note)
    ratio = out["overall"].is_ratio
    favours = (f"favours {spec.favours[0]}", f"favours {spec.favours[1]}") if spec.favours else None
    xlabel = _XLABEL_RATIO if spec.ratio else _XLABEL.get(spec.measure, "Estimate")
    return forest_plot(rows, log_scale=ratio, xlabel=xlabel, title=spec.title or spec.name,
                       label_header="Study / comparison", estimate_header=f"{spec.measure} [95% CI]",
                       favours=favours, footer=footer)


def _funnel(res: Any, measure: str, tf: dict[str, Any] | None = None) -> Any:
    """Funnel plot of *res*, with the studies filled by trim-and-fill when *tf* (its JSON form) is given."""
    import numpy as np

    from follicle.report.funnel import funnel_plot

    xlabel = {"OR": "log odds ratio", "RR": "log risk ratio"}.get(measure, _XLABEL.get(measure, "Estimate"))
    kw: dict[str, Any] = {}
    if tf is not None and tf["k0"] > 0:
        kw = {"filled_yi": tf["filled_yi"], "filled_sei": np.sqrt(tf["filled_vi"]),
              "filled_estimate": tf["adjusted"].estimate}
    return funnel_plot(res.yi, np.sqrt(res.vi), estimate=res.estimate, xlabel=xlabel, **kw)


def register(app: typer.Typer) -> None:
    """Add the ``meta`` command to *app*."""

    @app.command("meta")
    @guarded
    def meta(
        data: Annotated[Optional[Path], typer.Argument(help="CSV of studies (binary, continuous or generic columns).")] = None,
        measure: Annotated[str, typer.Option("--measure", help="OR|RR|RD|MD|SMD|GEN")] = "OR",
        method: Annotated[str, typer.Option("--method", help="EE|MH|PETO|DL|REML|PM|ML|SJ|HE|EB|HS|HSk")] = "REML",
        knha: Annotated[bool, typer.Option("--knha", help="Hartung-Knapp adjustment (t with k-1 df).")] = False,
        ratio: Annotated[bool, typer.Option("--ratio", help="GEN: estimates are log ratios (log HR/OR/RR); "
                         "also report them exponentiated.")] = False,
        level: Annotated[float, typer.Option("--level", help="Confidence level.")] = 0.95,
        add: Annotated[float, typer.Option("--add", help="Continuity correction added to zero-cell tables.")] = 0.5,
        to: Annotated[str, typer.Option("--to", help="Which tables get the correction: only0|all|if0all|none.")] = "only0",
        drop00: Annotated[Optional[bool], typer.Option("--drop00/--keep00", help="Drop double-zero studies "
                          "(default as metafor: keep for EE/random effects, drop for MH/PETO).")] = None,
        forest: Annotated[Optional[Path], typer.Option("--forest", help="Write a forest plot (.png or .svg).")] = None,
        funnel: Annotated[Optional[Path], typer.Option("--funnel", help="Write a funnel plot (.png or .svg).")] = None,
        spec: Annotated[Optional[Path], typer.Option("--spec", help="Run a meta-analysis spec (YAML or JSON).")] = None,
        json_out: JsonFlag = False,
    ) -> None:
        """Pool studies: equal/random effects, Mantel-Haenszel or Peto, with heterogeneity and plots."""
        import numpy as np

        from follicle.synthesis.spec import Continuity, MetaSpec, run_spec

        _check_fig_path("--forest", forest)
        _check_fig_path("--funnel", funnel)
        if spec is not None:
            if data is not None:
                raise InputError("give either DATA.csv or --spec, not both")
            if not spec.is_file():
                raise InputError(f"{spec}: spec file not found")
            from follicle.textinput import load_data

            ms = MetaSpec.model_validate(load_data(spec, what="meta-analysis spec"))  # size, UTF-8, safe YAML
            base = spec.resolve().parent
            if ms.data.startswith("bundled:"):
                base = Path.cwd()
            frame, source = _load_data(ms.data, base)
        else:
            if data is None:
                raise InputError("give a DATA.csv argument or --spec FILE")
            m, meth = measure.upper(), {x.upper(): x for x in METHODS}.get(method.upper(), method)
            if m not in MEASURES:
                raise InputError(f"--measure must be one of {'|'.join(MEASURES)}; got {measure!r}")
            if meth not in METHODS:
                raise InputError(f"--method must be one of {'|'.join(METHODS)}; got {method!r}")
            if to not in ("only0", "all", "if0all", "none"):
                raise InputError(f"--to must be only0, all, if0all or none; got {to!r}")
            try:
                ms = MetaSpec(name=data.stem.replace(" ", "_") or "data", data=str(data), measure=m, method=meth,
                              knha=knha, ratio=ratio, level=level, continuity=Continuity(add=add, to=to, drop00=drop00))
            except Exception as exc:
                if exc.__class__.__name__ == "ValidationError":
                    raise InputError(_first_error(exc)) from None
                raise
            frame, source = _read_csv(data), str(data)
        try:
            out = run_spec(ms, frame, source=source)
        except KeyError as exc:
            raise SpecError(str(exc.args[0])) from None
        except (ValueError, ArithmeticError) as exc:
            raise InputError(f"{source}: {exc}") from None
        overall = out["overall"]
        figures: dict[Path, Any] = {}
        if forest is not None:
            if "subgroups" in out and out["subgroups"]["estimable"]:
                keep = frame["study"].astype(str).str.strip()
                out["_study_groups"] = dict(zip(keep, frame[ms.subgroup].astype(str)))
            figures[forest] = _forest_for_spec(out, ms)
            out.pop("_study_groups", None)
        if funnel is not None:
            if overall.estimable and overall.yi:
                tf = out["trimfill"]
                figures[funnel] = _funnel(overall, ms.measure, tf if tf["estimable"] else None)
            else:
                why = overall.not_estimable.get("estimate", "no study-level estimate")
                err_console.print(f"warning: funnel plot not written ({funnel}): {why}", highlight=False, markup=False)
        _write_figures(figures)
        if json_out:
            if spec is None:
                print_json(_result_json(overall) | {k: _result_json(out[k]) for k in AUXILIARY})
            else:
                print_json(_result_json(out))
        else:
            _print_result(overall, ms.title or ms.name)
            if "subgroups" in out:
                sg = out["subgroups"]
                if not sg["estimable"]:
                    console.print(f"Subgroups: not estimable - {sg['reason']}", highlight=False, markup=False)
                else:
                    for g, r in sg["groups"].items():
                        tr = np.exp if r.is_ratio else (lambda v: v)
                        console.print(f"  {g}: {tr(r.estimate):.3f} [{tr(r.ci_low):.3f}, {tr(r.ci_high):.3f}] (k = {r.k})")
                    console.print(f"Test for subgroup differences: Q = {sg['q_between']:.3f} (df {sg['df']}), "
                                  f"p = {sg['pval']:.3g}", highlight=False)
            _print_auxiliary(out)
            if "grade" in out:
                if not out["grade"]["estimable"]:
                    console.print(f"GRADE: not estimable - {out['grade']['reason']}", highlight=False, markup=False)
                else:
                    prof = out["grade"]["profile"]
                    console.print(f"GRADE certainty: [bold]{prof.certainty}[/]")
                    for d in prof.domains:
                        console.print(f"  {d.domain}: {d.rating}{' (suggested)' if d.suggested else ''} - {d.reason}",
                                      highlight=False, markup=False)
                    for k, v in out["grade"]["summary_of_findings"].items():
                        console.print(f"  {k}: {v}", highlight=False, markup=False)


def _first_error(exc: Exception) -> str:
    errs = exc.errors()  # type: ignore[attr-defined]
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errs)
