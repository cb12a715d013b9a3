"""Render a network meta-analysis (the JSON-ready results of :func:`follicle.synthesis.nma.analyse`) as HTML.

Self-contained like the study report: figures as data URIs, inline styles, no script. The results
come from published aggregate trial data; no arm-level counts are shown.
"""

from __future__ import annotations

import math
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from follicle.report.study_report import fmt_num, fmt_p
from follicle.synthesis.nma.grade import DISCLAIMER, DOMAINS

_env = Environment(loader=PackageLoader("follicle.report", "templates"), autoescape=select_autoescape(["html", "j2"]))


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _est(out: dict[str, Any], te: Any, lo: Any, hi: Any) -> str:
    if not all(_finite(v) for v in (te, lo, hi)):
        return "-"
    tr = math.exp if out["scale"] == "log" else (lambda v: v)
    return f"{tr(te):.2f} ({tr(lo):.2f} to {tr(hi):.2f})"


def render_nma_report(out: dict[str, Any], figures: dict[str, str], *, title: str | None = None) -> str:
    """HTML text of the report; *figures* maps ``netgraph`` and ``forest`` to data URIs."""
    model = out.get("model_for_decisions", "random")
    ratio = out["scale"] == "log"
    tr = math.exp if ratio else (lambda v: v)
    rnd = {e["treatment"]: e for e in out["random"]["effects"]}
    com = {e["treatment"]: e for e in out["common"]["effects"]}
    ps_r, ps_c, su_r = out["random"]["p_scores"], out["common"]["p_scores"], out["random"]["sucra"]
    effect_rows = []
    for t in sorted(rnd, key=lambda t: -ps_r[t]):
        e, c = rnd[t], com[t]
        pi = (f"{tr(e['pi_low']):.2f} to {tr(e['pi_high']):.2f}" if _finite(e.get("pi_low")) and _finite(e.get("pi_high"))
              else "-")
        effect_rows.append({"treatment": t, "random": _est(out, e["estimate"], e["ci_low"], e["ci_high"]), "pi": pi,
                            "ps_random": fmt_num(ps_r[t], 3), "sucra_random": fmt_num(su_r[t], 3),
                            "common": _est(out, c["estimate"], c["ci_low"], c["ci_high"]), "ps_common": fmt_num(ps_c[t], 3)})
    ps, su = out[model]["p_scores"], out[model]["sucra"]
    probs = out[model]["rank_probabilities"]
    rank_rows = [{"treatment": t, "pscore": fmt_num(ps[t], 3), "sucra": fmt_num(su[t], 3),
                  "best": fmt_num(probs[t]["rank_1"], 3)} for t in sorted(ps, key=lambda t: -ps[t])]
    lt = out[model]["league_table"]
    league = []
    for i, row in enumerate(lt["data"]):
        league.append([{"text": cell, "cls": "diag" if i == j else ("lower" if i > j else "upper")}
                       for j, cell in enumerate(row)])
    het = out["heterogeneity"]
    het_text = {"tau2": fmt_num(het["tau2"], 4), "i2": f"{100 * het['i2']:.1f}%" if _finite(het["i2"]) else "-",
                "q": fmt_num(het["q"], 2), "df": het["df"], "p": fmt_p(het["q_p"]) if _finite(het["q_p"]) else "-"}
    decomp_rows = [{"source": r["source"], "q": fmt_num(r["q"], 2), "df": r["df"],
                    "p": fmt_p(r["p"]) if _finite(r["p"]) else "-"} for r in out["decomposition"]["q_decomp"]]
    qr = out["decomposition"]["q_between_random"]
    decomp_rows.append({"source": f"between designs, random effects (tau within designs = {fmt_num(qr['tau_within'], 3)})",
                        "q": fmt_num(qr["q"], 2), "df": qr["df"], "p": fmt_p(qr["p"]) if _finite(qr["p"]) else "-"})
    split_rows = []
    for r in out[model]["netsplit"]:
        if not (_finite(r["direct"]) and _finite(r["indirect"]) and r["k"] > 0):
            continue
        split_rows.append({"comparison": r["comparison"], "k": r["k"], "prop": fmt_num(r["prop_direct"], 2),
                           "network": _est(out, r["network"], r["network_low"], r["network_high"]),
                           "direct": _est(out, r["direct"], r["direct_low"], r["direct_high"]),
                           "indirect": _est(out, r["indirect"], r["indirect_low"], r["indirect_high"]),
                           "diff": _est(out, r["difference"], r["difference_low"], r["difference_high"]),
                           "p": fmt_p(r["p"]) if _finite(r["p"]) else "-"})
    designs = out.get("design_counts") or [{"design": d, "k": ""} for d in out["designs"]]
    return _env.get_template("nma_report.html.j2").render(
        title=title or out.get("spec", {}).get("title") or "Network meta-analysis",
        version=out.get("follicle_version", ""), spec_hash=out.get("spec_hash", "-"), measure=out["measure"],
        scale_text="log scale" if ratio else "natural scale", reference=out["reference"],
        better_text=f"{out['better']} values are better", model=model, disclaimer=DISCLAIMER, k=out["k"], m=out["m"],
        n=out["n"], designs=out["designs"], design_rows=designs, notes=out["notes"], netgraph=figures.get("netgraph"),
        forest=figures.get("forest"), effect_rows=effect_rows, rank_rows=rank_rows,
        nsim=out.get("spec", {}).get("nsim", "the"), league=league, het=het_text, decomp_rows=decomp_rows,
        split_rows=split_rows, grade=out.get("grade"), grade_domains=DOMAINS,
    )
