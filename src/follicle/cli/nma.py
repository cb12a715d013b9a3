"""CLI: ``follicle nma`` - network meta-analysis of an arm-level or contrast-level CSV, or of a spec file.

Reads the data, calls :mod:`follicle.synthesis.nma`, prints tables or JSON, and writes the report and
figures only after every computation succeeded (each to a temporary file, then renamed).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.table import Table

from follicle.cli._common import JsonFlag, console, guarded, print_json
from follicle.errors import InputError, SpecError

if TYPE_CHECKING:
    import pandas as pd

MEASURES = ("OR", "RR", "RD", "MD", "SMD")


def _read_csv(path: Path) -> pd.DataFrame:
    import pandas as pd

    if not path.is_file():
        raise InputError(f"{path}: file not found")
    if path.stat().st_size > 50_000_000:
        raise InputError(f"{path}: larger than 50 MB; a network meta-analysis needs study-level rows only")
    try:
        return pd.read_csv(path, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: not a readable CSV file ({exc})") from None


def shared_dir() -> Path:
    """The shared reference folder: $FOLLICLE_SHARED, else ``../shared`` next to the repository."""
    env = os.environ.get("FOLLICLE_SHARED")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3].parent / "shared"


def _data_path(ref: str, base: Path) -> Path:
    if ref.startswith("shared:"):
        return shared_dir() / ref.split(":", 1)[1]
    p = Path(ref)
    return p if p.is_absolute() else base / p


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _check_out(opt: str, path: Optional[Path], suffixes: tuple[str, ...]) -> None:
    if path is None:
        return
    if path.suffix.lower() not in suffixes:
        raise InputError(f"{opt} must name a {' or '.join(suffixes)} file; got {path}")
    if not path.parent.exists():
        raise InputError(f"{opt}: folder {path.parent} does not exist")


def _fmt(out: dict[str, Any], te: float, lo: float, hi: float) -> str:
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (te, lo, hi)):
        return "-"
    tr = math.exp if out["scale"] == "log" else (lambda v: v)
    return f"{tr(te):.3f} [{tr(lo):.3f}, {tr(hi):.3f}]"


def _print(out: dict[str, Any], title: str) -> None:
    model = out["model_for_decisions"]
    console.print(f"[bold]{title}[/]  ({out['k']} studies, {out['m']} comparisons, {out['n']} treatments, "
                  f"{len(out['designs'])} designs; {out['measure']}, reference {out['reference']}, "
                  f"{out['better']} is better)", highlight=False)
    for note in out["notes"]:
        console.print(f"  note: {note}", highlight=False, markup=False)
    t = Table(title=f"Effects against {out['reference']}")
    for col in ("Treatment", "Random effects [95% CI]", "P-score", "SUCRA", "Common effect [95% CI]", "P-score "):
        t.add_column(col, justify="left" if col == "Treatment" else "right")
    rnd = {e["treatment"]: e for e in out["random"]["effects"]}
    com = {e["treatment"]: e for e in out["common"]["effects"]}
    for trt in sorted(out["treatments"], key=lambda x: -out[model]["p_scores"][x]):
        if trt == out["reference"]:
            t.add_row(trt, "(reference)", f"{out['random']['p_scores'][trt]:.3f}", f"{out['random']['sucra'][trt]:.3f}",
                      "(reference)", f"{out['common']['p_scores'][trt]:.3f}")
            continue
        r, c = rnd[trt], com[trt]
        t.add_row(trt, _fmt(out, r["estimate"], r["ci_low"], r["ci_high"]), f"{out['random']['p_scores'][trt]:.3f}",
                  f"{out['random']['sucra'][trt]:.3f}", _fmt(out, c["estimate"], c["ci_low"], c["ci_high"]),
                  f"{out['common']['p_scores'][trt]:.3f}")
    console.print(t)
    h = out["heterogeneity"]

    def num(v: Any, d: int = 4) -> str:
        return f"{v:.{d}g}" if isinstance(v, (int, float)) and math.isfinite(v) else "NA"

    console.print(f"tau^2 = {num(h['tau2'])}; I^2 = {num(100 * h['i2'] if h['i2'] is not None else float('nan'), 3)}%; "
                  f"Q = {num(h['q'])} (df {h['df']}, p = {num(h['q_p'], 3)})", highlight=False)
    d = Table(title="Decomposition of Q (design-by-treatment)")
    for col in ("Source", "Q", "df", "p"):
        d.add_column(col, justify="left" if col == "Source" else "right")
    for r in out["decomposition"]["q_decomp"]:
        d.add_row(r["source"], num(r["q"]), str(r["df"]), num(r["p"], 3))
    qr = out["decomposition"]["q_between_random"]
    d.add_row(f"between designs (random, tau={num(qr['tau_within'], 3)})", num(qr["q"]), str(qr["df"]), num(qr["p"], 3))
    console.print(d)
    split = [r for r in out[model]["netsplit"] if r["k"] > 0 and all(
        isinstance(r[x], float) and math.isfinite(r[x]) for x in ("direct", "indirect"))]
    if split:
        s = Table(title=f"Direct vs indirect (SIDE, back-calculation, {model} model)")
        for col in ("Comparison", "k", "Direct", "Indirect", "p"):
            s.add_column(col, justify="left" if col == "Comparison" else "right")
        for r in split:
            s.add_row(r["comparison"], str(r["k"]), _fmt(out, r["direct"], r["direct_low"], r["direct_high"]),
                      _fmt(out, r["indirect"], r["indirect_low"], r["indirect_high"]), num(r["p"], 3))
        console.print(s)
    if "grade" in out:
        short = {"no concerns": "no", "some concerns": "some", "major concerns": "major", "not assessed": "n/a"}
        g = Table(title=f"Confidence against {out['reference']} (CINeMA domains, {model} model; all pairs in --json "
                        f"and --report): {out['grade']['outcome']}")
        for col in ("Comparison", "bias", "reporting", "indirect", "imprecision", "heterog.", "incoherence",
                    "Confidence"):
            g.add_column(col)
        for row in out["grade"]["table"]:
            if row["comparison"].endswith(f":{out['reference']}"):
                vals = list(row.values())
                g.add_row(vals[0], *[short.get(v, v) for v in vals[1:-1]], vals[-1])
        console.print(g)
        console.print(out["grade"]["disclaimer"], highlight=False)


def register(app: typer.Typer) -> None:
    """Add the ``nma`` command to *app*."""

    @app.command("nma")
    @guarded
    def nma(
        data: Annotated[Optional[Path], typer.Argument(help="CSV: arms (study, treatment, events, n | mean, sd, n) "
                                                             "or contrasts (study, treatment1, treatment2, estimate, se).")] = None,
        measure: Annotated[str, typer.Option("--measure", help="OR|RR|RD|MD|SMD")] = "OR",
        reference: Annotated[Optional[str], typer.Option("--reference", help="Reference treatment.")] = None,
        better: Annotated[Optional[str], typer.Option("--better", help="higher|lower: which values are better.")] = None,
        model: Annotated[str, typer.Option("--model", help="common|random: model for ranking, league table, GRADE.")] = "random",
        level: Annotated[float, typer.Option("--level", help="Confidence level.")] = 0.95,
        incr: Annotated[float, typer.Option("--incr", help="Increment for studies with a zero cell (OR, RR, RD).")] = 0.5,
        allstudies: Annotated[bool, typer.Option("--allstudies", help="Keep OR/RR comparisons with no (or all) "
                                                  "events in both arms, using the increment.")] = False,
        nsim: Annotated[int, typer.Option("--nsim", help="Resamples for SUCRA.")] = 10000,
        seed: Annotated[int, typer.Option("--seed", help="Seed for the SUCRA resampling.")] = 20,
        spec: Annotated[Optional[Path], typer.Option("--spec", help="Run a network meta-analysis spec (YAML or JSON).")] = None,
        report: Annotated[Optional[Path], typer.Option("--report", help="Write an HTML report.")] = None,
        netgraph: Annotated[Optional[Path], typer.Option("--netgraph", help="Write the network graph (.png or .svg).")] = None,
        forest: Annotated[Optional[Path], typer.Option("--forest", help="Write the forest plot (.png or .svg).")] = None,
        json_out: JsonFlag = False,
    ) -> None:
        """Network meta-analysis as R's netmeta: effects, heterogeneity, inconsistency, ranking, league table, GRADE."""
        from follicle.synthesis.nma.spec import NMASpec, run_spec

        _check_out("--report", report, (".html",))
        _check_out("--netgraph", netgraph, (".png", ".svg"))
        _check_out("--forest", forest, (".png", ".svg"))
        if spec is not None:
            if data is not None:
                raise InputError("give either DATA.csv or --spec, not both")
            if not spec.is_file():
                raise InputError(f"{spec}: spec file not found")
            text = spec.read_text(encoding="utf-8")
            try:
                ns = NMASpec.from_json(text) if spec.suffix.lower() == ".json" else NMASpec.from_yaml(text)
            except Exception as exc:
                if exc.__class__.__name__ == "ValidationError":
                    raise
                raise SpecError(f"{spec}: not valid YAML/JSON ({exc})") from None
            path = _data_path(ns.data, spec.resolve().parent)
            if ns.data.startswith("shared:") and not path.is_file():
                raise InputError(f"{spec}: data {ns.data!r} not found at {path} (set FOLLICLE_SHARED to the shared "
                                 "folder)")
        else:
            if data is None:
                raise InputError("give a DATA.csv argument or --spec FILE")
            if measure.upper() not in MEASURES:
                raise InputError(f"--measure must be one of {'|'.join(MEASURES)}; got {measure!r}")
            if better not in ("higher", "lower"):
                raise InputError(f"--better must be 'higher' or 'lower' (which values of {measure.upper()} are better); "
                                 f"got {better!r}")
            if model not in ("common", "random"):
                raise InputError(f"--model must be 'common' or 'random'; got {model!r}")
            path = data
            head = set(_read_csv(data).columns)
            fmt = "contrasts" if {"treatment1", "treatment2", "estimate", "se"} <= head else "arms"
            try:
                ns = NMASpec(name=(data.stem.replace(" ", "_") or "data"), data=str(data), format=fmt,
                             measure=measure.upper(), reference=reference, better=better, model=model, level=level,
                             continuity={"incr": incr, "allstudies": allstudies}, nsim=nsim, seed=seed)
            except Exception as exc:
                if exc.__class__.__name__ == "ValidationError":
                    errs = exc.errors()  # type: ignore[attr-defined]
                    raise InputError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errs)) from None
                raise
        frame = _read_csv(path)
        res, out = run_spec(ns, frame, source=str(path))
        figs: dict[Path, Any] = {}
        uris: dict[str, str] = {}
        title = ns.title or ns.name
        if netgraph is not None or forest is not None or report is not None:
            from follicle.report.figures import to_data_uri
            from follicle.report.netgraph import graph_from_results, nma_forest

            if netgraph is not None:
                figs[netgraph] = graph_from_results(out, title=title)
            if forest is not None:
                figs[forest] = nma_forest(out, title=title)
            if report is not None:
                uris["netgraph"] = to_data_uri(graph_from_results(out))
                uris["forest"] = to_data_uri(nma_forest(out))
        html = None
        if report is not None:
            from follicle.report.nma_report import render_nma_report

            html = render_nma_report(out, uris, title=title)
        if figs:
            from follicle.report.forest import save_figures

            save_figures(figs)
        if html is not None and report is not None:
            _write_atomic(report, html)
        if json_out:
            print_json(out)
        else:
            _print(out, title)
