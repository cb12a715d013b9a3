"""Network meta-analysis specification (pydantic; round-trips YAML and JSON) and its pure runner.

A spec names the data (arm-level, contrast-level, or trial arms reported as percentages such as
``shared/data/trials/jaki_aa_rct_arms.csv``), the measure, reference, direction of benefit, and the
CINeMA judgements. :func:`run_spec` takes the spec and the loaded data frame; reading files is the
caller's job (the CLI).

Trial arms reported as percentages (``format: trial_percent``): responders are reconstructed as
``round(percent x n / 100)`` (the data's README asks for this and for saying so); active arms are
named "drug dose" and placebo arms "placebo"; all arms of a trial stay in one multi-arm study (no
splitting of the shared placebo arm: the network model handles the correlation). ``timepoint``
chooses one week per trial: ``latest`` (default) or ``earliest`` of the weeks a trial reports for
the endpoint, or a number (trials without that week are left out, with a note).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from follicle.errors import InputError
from follicle.synthesis.nma._pairwise import RATIO_MEASURES, Contrasts, contrasts_from_frame, pairwise
from follicle.synthesis.nma.decomp import decomp_design
from follicle.synthesis.nma.fit import NetworkMetaAnalysis, netmeta
from follicle.synthesis.nma.grade import DISCLAIMER, DomainJudgement, cinema, confidence_table
from follicle.synthesis.nma.rank import league_table, pscores, rankogram
from follicle.synthesis.nma.split import netsplit

TRIAL_COLUMNS = ("trial", "drug", "dose", "arm", "n", "endpoint", "week", "percent", "percent_source")
Level = Literal["low", "some concerns", "high"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrialPercent(_Model):
    """How trial arms reported as percentages become arm-level counts."""

    endpoint: str = "SALT<=20"
    timepoint: Literal["latest", "earliest"] | int = "latest"
    placebo_label: str = "placebo"


class Continuity(_Model):
    incr: float = Field(0.5, ge=0)
    allincr: bool = False
    addincr: bool = False
    allstudies: bool = False


class Judgement(_Model):
    rating: Literal["no concerns", "some concerns", "major concerns"]
    reason: str = Field(min_length=1)


class StudyJudgements(_Model):
    """Study-level judgements (low / some concerns / high) with one reason for the set."""

    studies: dict[str, Level]
    reason: str = Field(min_length=1)


class NMAGrade(_Model):
    outcome: str
    clinically_important: float | None = Field(
        None, gt=0, description="clinically important effect on the natural scale: a ratio (e.g. 1.25 for OR/RR, "
                                "zone 1/1.25 to 1.25) or a difference (MD, SMD, RD: zone -x to x)")
    clinically_important_reason: str = ""
    rule: Literal["majority", "average", "highest"] = "majority"
    risk_of_bias: StudyJudgements | None = None
    indirectness: StudyJudgements | None = None
    reporting_bias: Judgement | None = None
    overrides: dict[str, dict[str, Judgement]] = Field(
        default_factory=dict, description='reviewer judgements replacing suggestions: comparison "A:B" (or "*" for all) '
                                          '-> domain -> judgement')

    @model_validator(mode="after")
    def _reason(self) -> NMAGrade:
        if self.clinically_important is not None and not self.clinically_important_reason:
            raise ValueError("clinically_important needs clinically_important_reason (its source or rationale)")
        return self


class NMASpec(_Model):
    """One network meta-analysis: data, measure, reference, direction of benefit, GRADE."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    title: str = ""
    data: str = Field(description="CSV path relative to the spec file, or shared:<path under the shared folder>")
    format: Literal["arms", "contrasts", "trial_percent"] = "arms"
    trial_percent: TrialPercent = Field(default_factory=TrialPercent)
    measure: Literal["OR", "RR", "RD", "MD", "SMD"] = "OR"
    reference: str | None = None
    better: Literal["higher", "lower"]
    model: Literal["common", "random"] = Field("random", description="model used for ranking, league table and GRADE")
    level: float = Field(0.95, gt=0, lt=1)
    continuity: Continuity = Field(default_factory=Continuity)
    nsim: int = Field(10000, ge=100, le=1_000_000, description="resamples for SUCRA")
    seed: int = 20
    note: str = ""
    grade: NMAGrade | None = None

    @field_validator("data")
    @classmethod
    def _data(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("data must name a CSV file")
        return v

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> NMASpec:
        return cls.model_validate(yaml.safe_load(text))

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str) -> NMASpec:
        return cls.model_validate_json(text)

    def spec_hash(self) -> str:
        canon = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:16]


def arms_from_trial_percent(frame: pd.DataFrame, opts: TrialPercent, source: str = "trials") -> tuple[pd.DataFrame, list[str]]:
    """Arm-level counts (study, treatment, events, n) from trial arms reported as percentages."""
    missing = [c for c in TRIAL_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"{source}: missing column(s) {', '.join(missing)} for format trial_percent")
    df = frame[frame["endpoint"].astype(str) == opts.endpoint].copy()
    if df.empty:
        raise InputError(f"{source}: no rows with endpoint {opts.endpoint!r} "
                         f"(endpoints: {', '.join(sorted(frame['endpoint'].astype(str).unique()))})")
    for c in ("n", "week", "percent"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
        if df[c].isna().any():
            raise InputError(f"{source}: column {c!r} must be numeric (rows {', '.join(str(i + 2) for i in df.index[df[c].isna()][:5])})")
    notes = [f"responders reconstructed as round(percent x n / 100) from published percentages ({opts.endpoint})"]
    keep = []
    weeks_used = {}
    for trial, g in df.groupby("trial", sort=False):
        sources = g["percent_source"].astype(str).unique()
        if len(sources) != 1:
            raise InputError(f"{source}: trial {trial} mixes figures from different sources ({'; '.join(sources)}); "
                             "use one publication per trial")
        weeks = sorted(g["week"].unique())
        if opts.timepoint == "latest":
            wk = weeks[-1]
        elif opts.timepoint == "earliest":
            wk = weeks[0]
        else:
            if opts.timepoint not in weeks:
                notes.append(f"trial {trial} left out: no week-{opts.timepoint} result (has week "
                             f"{', '.join(str(int(w)) for w in weeks)})")
                continue
            wk = opts.timepoint
        weeks_used[trial] = int(wk)
        keep.append(g[g["week"] == wk])
    if not keep:
        raise InputError(f"{source}: no trial has a result at week {opts.timepoint}")
    df = pd.concat(keep)
    by_week: dict[int, list[str]] = {}
    for t, w in weeks_used.items():
        by_week.setdefault(w, []).append(t)
    notes.append("time point per trial: " + "; ".join(f"week {w}: {', '.join(ts)}" for w, ts in sorted(by_week.items())))
    if len(by_week) > 1:
        notes.append("trials are pooled across different time points: the network assumes each relative effect is "
                     "the same at these weeks (judge this under indirectness)")
    is_placebo = df["arm"].astype(str).str.strip().str.lower() == "placebo"
    label = (df["drug"].astype(str).str.strip() + " " + df["dose"].fillna("").astype(str).str.strip()).str.strip()
    arms = pd.DataFrame({"study": df["trial"].astype(str), "treatment": np.where(is_placebo, opts.placebo_label, label),
                         "events": [int(round(p * n / 100)) for p, n in zip(df["percent"], df["n"])],
                         "n": df["n"].astype(int)})
    return arms.reset_index(drop=True), notes


def contrasts_for_spec(spec: NMASpec, frame: pd.DataFrame, source: str = "data") -> Contrasts:
    """The spec's data as contrasts (any format)."""
    if spec.format == "contrasts":
        return contrasts_from_frame(frame, spec.measure, source=source)
    notes: list[str] = []
    if spec.format == "trial_percent":
        frame, notes = arms_from_trial_percent(frame, spec.trial_percent, source)
    c = spec.continuity
    out = pairwise(frame, spec.measure, incr=c.incr, allincr=c.allincr, addincr=c.addincr, allstudies=c.allstudies,
                   source=source)
    out.notes[:0] = notes
    return out


def _effects(res: NetworkMetaAnalysis, model: str) -> list[dict[str, Any]]:
    cols = ["treatment", "comparator", "estimate", "se", "ci_low", "ci_high", "z", "p", "pi_low", "pi_high"]
    df = res.model(model).vs_reference(res.reference)  # type: ignore[arg-type]
    return df[[c for c in cols if c in df]].to_dict(orient="records")


def _edges(res: NetworkMetaAnalysis) -> list[dict[str, Any]]:
    a = res.n_studies_matrix
    t = res.treatments
    return [{"treat1": t[i], "treat2": t[j], "k": int(a[i, j])} for i in range(len(t)) for j in range(i + 1, len(t))
            if a[i, j] > 0]


def _design_counts(res: NetworkMetaAnalysis) -> list[dict[str, Any]]:
    counts = pd.Series(res.designs).value_counts()
    return [{"design": d, "k": int(counts[d])} for d in sorted(counts.index)]


def analyse(res: NetworkMetaAnalysis, *, better: str, model: str = "random", nsim: int = 10000, seed: int = 20,
            grade: NMAGrade | None = None) -> dict[str, Any]:
    """Everything about a fitted network: both models' effects and rankings, decomposition, netsplit, GRADE."""
    decomposition = decomp_design(res)
    out: dict[str, Any] = {"measure": res.measure, "scale": "log" if res.is_ratio else "identity",
                           "reference": res.reference, "better": better, "level": res.level,
                           "treatments": res.treatments, "k": res.k, "m": res.network.m, "n": len(res.treatments),
                           "designs": sorted(set(res.designs.values())), "participants": res.participants(),
                           "heterogeneity": res.heterogeneity(), "decomposition": decomposition.to_dict(),
                           "edges": _edges(res), "design_counts": _design_counts(res), "notes": list(res.notes)}
    for mdl in ("common", "random"):
        ps = pscores(res, mdl, better)  # type: ignore[arg-type]
        ro = rankogram(res, mdl, better, nsim=nsim, seed=seed)  # type: ignore[arg-type]
        order = sorted(ps, key=lambda t: -ps[t])
        out[mdl] = {"effects": _effects(res, mdl), "p_scores": ps, "sucra": ro["sucra"].to_dict(),
                    "rank_probabilities": ro.drop(columns=["sucra"]).to_dict(orient="index"),
                    "league_table": league_table(res, mdl, order=order).to_dict(orient="split"),  # type: ignore[arg-type]
                    "netsplit": netsplit(res, mdl).to_dict(orient="records")}  # type: ignore[arg-type]
    out["model_for_decisions"] = model
    if grade is not None:
        delta = None
        if grade.clinically_important is not None:
            ci = grade.clinically_important
            if res.is_ratio:
                delta = abs(float(np.log(ci)))
                if delta == 0:
                    raise InputError("clinically_important must differ from 1 for ratio measures")
            else:
                delta = ci
        judge = {c: {d: DomainJudgement(d, j.rating, j.reason, suggested=False) for d, j in doms.items()}
                 for c, doms in grade.overrides.items()}
        rb = (DomainJudgement("reporting bias", grade.reporting_bias.rating, grade.reporting_bias.reason, suggested=False)
              if grade.reporting_bias else None)
        rows = cinema(res, decomposition, model=model, clinically_important=delta,  # type: ignore[arg-type]
                      risk_of_bias=grade.risk_of_bias.studies if grade.risk_of_bias else None,
                      indirectness=grade.indirectness.studies if grade.indirectness else None,
                      reporting_bias=rb, rule=grade.rule, overrides=judge)
        out["grade"] = {"outcome": grade.outcome, "model": model, "clinically_important": grade.clinically_important,
                        "clinically_important_reason": grade.clinically_important_reason, "rule": grade.rule,
                        "risk_of_bias_reason": grade.risk_of_bias.reason if grade.risk_of_bias else None,
                        "indirectness_reason": grade.indirectness.reason if grade.indirectness else None,
                        "comparisons": [r.to_dict() for r in rows],
                        "table": confidence_table(rows).to_dict(orient="records"), "disclaimer": DISCLAIMER}
    return out


def run_spec(spec: NMASpec, frame: pd.DataFrame, source: str = "data") -> tuple[NetworkMetaAnalysis, dict[str, Any]]:
    """Fit the spec's network and analyse it; returns the fit (for figures) and the JSON-ready results."""
    contrasts = contrasts_for_spec(spec, frame, source)
    res = netmeta(contrasts, reference=spec.reference, level=spec.level)
    if spec.grade is not None:
        studies = set(res.studies)
        for what, sj in (("risk_of_bias", spec.grade.risk_of_bias), ("indirectness", spec.grade.indirectness)):
            if sj is not None and set(sj.studies) - studies:
                raise InputError(f"grade.{what} names studies not in the network: "
                                 f"{', '.join(sorted(set(sj.studies) - studies))} (studies: {', '.join(res.studies)})")
    from follicle import __version__

    out = analyse(res, better=spec.better, model=spec.model, nsim=spec.nsim, seed=spec.seed, grade=spec.grade)
    out = {"spec": spec.model_dump(mode="json"), "spec_hash": spec.spec_hash(), "follicle_version": __version__,
           **out}
    if spec.note:
        out["notes"].append(spec.note)
    return res, out


__all__ = ["NMASpec", "NMAGrade", "TrialPercent", "arms_from_trial_percent", "contrasts_for_spec", "analyse",
           "run_spec", "RATIO_MEASURES"]
