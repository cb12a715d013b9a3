"""World parameters as data: every rate, coefficient and true hazard ratio of the synthetic world.

``WorldConfig()`` is the default world (docs/synthetic-world.md explains each number). It
round-trips JSON and YAML (pydantic). Covariate names used in the coefficient dictionaries are
listed in :data:`COVARIATES`; an unknown name is rejected when the config is built.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CLASSES = ("jaki", "immunosuppressant", "corticosteroid")
ClassName = Literal["jaki", "immunosuppressant", "corticosteroid"]

CONFOUNDERS = ("atopic_dermatitis", "thyroid", "vitiligo", "obesity", "smoking", "diabetes",
               "hypertension", "prior_vte", "malignancy_history", "psych_history")
# person-level covariates a coefficient may name (age10 = (age - 45) / 10 at the anchor date)
COVARIATES = ("age10", "female", "severe", *CONFOUNDERS)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_covariates(value: dict[str, float]) -> dict[str, float]:
    bad = sorted(set(value) - set(COVARIATES))
    if bad:
        raise ValueError(f"unknown covariate(s) {bad}; allowed: {list(COVARIATES)}")
    return value


class ConfounderSpec(_Model):
    """A baseline condition: prevalence via logit(p) = logit(prevalence) + coefficients."""

    name: str
    prevalence: float = Field(gt=0, lt=1)
    age10: float = 0.0
    female: float = 0.0
    codes: dict[str, float]  # ICD-10-CM code -> weight (which code records it)


class PopulationConfig(_Model):
    female_share: float = Field(0.56, gt=0, lt=1)
    race_shares: dict[str, float] = {"white": 0.68, "black": 0.14, "asian": 0.08, "unknown": 0.10}
    hispanic_share: float = Field(0.15, ge=0, le=1)
    age_mean: float = 38.0  # age on 2015-07-01; gamma-distributed
    age_sd: float = 18.0
    window_start: date = date(2005, 1, 1)
    window_end: date = date(2025, 12, 31)
    mean_observation_years: float = Field(9.0, gt=0)
    min_observation_days: int = Field(400, ge=30)
    mortality_per_100py_at_45: float = Field(0.25, gt=0)
    mortality_log_hr_per_10y: float = 0.9


class DiseaseConfig(_Model):
    aa_prevalence: float = Field(0.30, gt=0, lt=1)
    aa_log_or: dict[str, float] = {"atopic_dermatitis": 0.5, "thyroid": 0.4, "vitiligo": 0.6, "age10": -0.15}
    subtype_shares: dict[str, float] = {"patchy": 0.72, "ophiasis": 0.06, "totalis": 0.11, "universalis": 0.11}
    patchy_l639_share: float = Field(0.6, ge=0, le=1)  # patchy coded L63.9, else L63.8
    long_standing_share: float = Field(0.4, ge=0, le=1)  # onset years before diagnosis
    long_standing_mean_years: float = 6.0

    @field_validator("aa_log_or")
    @classmethod
    def _cov(cls, v: dict[str, float]) -> dict[str, float]:
        return _check_covariates(v)


class DrugSpec(_Model):
    name: str  # ingredient name
    drug_class: ClassName
    clinical_drug: str  # concept_code of the clinical drug in the bundled vocabulary
    weight: float = Field(gt=0)
    available_from: date
    min_age: int = 0
    days_supply: int = Field(30, gt=0)
    daily_units: float = 1.0


def _default_drugs() -> list[DrugSpec]:
    d = DrugSpec
    return [
        d(name="baricitinib", drug_class="jaki", clinical_drug="FOLLICLE-CD-BARI4", weight=4.0,
          available_from=date(2018, 6, 1), min_age=18),
        d(name="tofacitinib", drug_class="jaki", clinical_drug="FOLLICLE-CD-TOFA5", weight=2.0,
          available_from=date(2013, 1, 1), min_age=0, daily_units=2),  # off-label also in children
        d(name="ruxolitinib", drug_class="jaki", clinical_drug="FOLLICLE-CD-RUX10", weight=0.8,
          available_from=date(2012, 1, 1), min_age=18, daily_units=2),
        d(name="upadacitinib", drug_class="jaki", clinical_drug="FOLLICLE-CD-UPA15", weight=1.0,
          available_from=date(2019, 8, 1), min_age=12),
        d(name="ritlecitinib", drug_class="jaki", clinical_drug="FOLLICLE-CD-RITLE50", weight=2.5,
          available_from=date(2023, 6, 23), min_age=12),
        d(name="deuruxolitinib", drug_class="jaki", clinical_drug="FOLLICLE-CD-DEURUX8", weight=1.5,
          available_from=date(2024, 7, 25), min_age=18, daily_units=2),
        d(name="cyclosporine", drug_class="immunosuppressant", clinical_drug="FOLLICLE-CD-CSA100", weight=2.5,
          available_from=date(1990, 1, 1), daily_units=3),
        d(name="methotrexate", drug_class="immunosuppressant", clinical_drug="FOLLICLE-CD-MTX25", weight=4.5,
          available_from=date(1990, 1, 1), days_supply=28, daily_units=1.5),
        d(name="azathioprine", drug_class="immunosuppressant", clinical_drug="FOLLICLE-CD-AZA50", weight=1.5,
          available_from=date(1990, 1, 1), daily_units=2),
        d(name="mycophenolate mofetil", drug_class="immunosuppressant", clinical_drug="FOLLICLE-CD-MMF500",
          weight=1.5, available_from=date(1995, 1, 1), daily_units=4),
        d(name="prednisone", drug_class="corticosteroid", clinical_drug="FOLLICLE-CD-PRED20", weight=4.5,
          available_from=date(1960, 1, 1), days_supply=21),
        d(name="prednisolone", drug_class="corticosteroid", clinical_drug="FOLLICLE-CD-PRDL5", weight=2.0,
          available_from=date(1960, 1, 1), days_supply=21, daily_units=4),
        d(name="methylprednisolone", drug_class="corticosteroid", clinical_drug="FOLLICLE-CD-MP4", weight=2.5,
          available_from=date(1960, 1, 1), days_supply=21, daily_units=4),
        d(name="dexamethasone", drug_class="corticosteroid", clinical_drug="FOLLICLE-CD-DEX4", weight=1.0,
          available_from=date(1960, 1, 1), days_supply=14),
    ]


class TreatmentConfig(_Model):
    """Who gets systemic treatment, which class, how long, and switching."""

    treated_logit: float = 0.0  # logit P(systemic treatment | AA), plus coefficients below
    treated_log_or: dict[str, float] = {"severe": 1.0, "age10": -0.1, "psych_history": 0.0}
    # class choice: multinomial logit, utility(class) = intercept(period) + coefficients; corticosteroid = 0
    class_intercepts: dict[ClassName, list[tuple[date, float]]] = {
        "jaki": [(date(2005, 1, 1), -4.0), (date(2014, 1, 1), -1.5), (date(2018, 6, 1), -0.5),
                 (date(2022, 6, 13), 1.1)],
        "immunosuppressant": [(date(2005, 1, 1), -0.5)],
        "corticosteroid": [(date(2005, 1, 1), 0.0)],
    }
    class_log_or: dict[ClassName, dict[str, float]] = {
        "jaki": {"severe": 0.9, "age10": -0.15, "prior_vte": -1.2, "malignancy_history": -1.2, "smoking": -0.4,
                 "hypertension": -0.3, "diabetes": -0.2, "obesity": -0.2, "atopic_dermatitis": 0.4,
                 "vitiligo": 0.5, "female": 0.1},
        "immunosuppressant": {"severe": 0.4, "atopic_dermatitis": 0.5, "diabetes": 0.5, "obesity": 0.2,
                              "age10": 0.05, "hypertension": 0.2},
        "corticosteroid": {},
    }
    drugs: list[DrugSpec] = Field(default_factory=_default_drugs)
    single_prescription_share: dict[ClassName, float] = {"jaki": 0.12, "immunosuppressant": 0.15,
                                                         "corticosteroid": 0.30}
    extra_prescriptions_mean: dict[ClassName, float] = {"jaki": 7.0, "immunosuppressant": 6.0,
                                                        "corticosteroid": 1.5}
    refill_gap_max_days: int = Field(10, ge=0)
    switch_share: float = Field(0.25, ge=0, le=1)  # a second course after the first ends
    cross_class_share: float = Field(0.3, ge=0, le=1)  # of switches: to another class
    switch_gap_max_days: int = Field(120, gt=0)
    topical_ruxolitinib_share: float = Field(0.05, ge=0, le=1)  # of AA patients, after its approval
    topical_ruxolitinib_from: date = date(2021, 9, 21)
    ivmp_share: float = Field(0.15, ge=0, le=1)  # of treated severe AA: IV methylprednisolone pulse before index
    min_prior_observation_days: int = Field(365, ge=0)  # treatment starts at least this long after obs start

    @field_validator("treated_log_or")
    @classmethod
    def _cov(cls, v: dict[str, float]) -> dict[str, float]:
        return _check_covariates(v)

    @field_validator("class_log_or")
    @classmethod
    def _cov2(cls, v: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for coefs in v.values():
            _check_covariates(coefs)
        return v


class OutcomeProcess(_Model):
    """One event process: hazard = rate * exp(covariates) * class_hr[current class].

    ``class_hr`` is relative to no systemic treatment (1.0); the current class is that of the
    most recent systemic course started. A true conditional HR of class A vs B is
    ``class_hr[A] / class_hr[B]``.
    """

    name: str
    group: Literal["neuropsychiatric", "negative_control", "adverse_event"]
    kind: Literal["condition", "drug"] = "condition"
    codes: dict[str, float]  # ICD-10-CM code (condition) or clinical drug code (drug) -> weight
    rate_per_100py: float = Field(gt=0)
    log_hr: dict[str, float] = {}
    class_hr: dict[ClassName, float] = {"jaki": 1.0, "immunosuppressant": 1.0, "corticosteroid": 1.0}
    repeat_mean: float = Field(1.0, ge=0)  # later records of the same condition (Poisson mean)
    inpatient: bool = False

    @field_validator("log_hr")
    @classmethod
    def _cov(cls, v: dict[str, float]) -> dict[str, float]:
        return _check_covariates(v)


class StudyOutcome(_Model):
    """An outcome as a study defines it: first record of any code of its processes."""

    name: str
    processes: list[str]
    group: Literal["neuropsychiatric", "negative_control", "adverse_event"]


_NP = {"age10": -0.05, "female": 0.3, "atopic_dermatitis": 0.25, "thyroid": 0.2, "obesity": 0.2,
       "smoking": 0.25, "diabetes": 0.1, "hypertension": 0.1, "psych_history": 1.2}
_SLEEP = {"age10": 0.1, "female": 0.1, "obesity": 0.5, "smoking": 0.2, "hypertension": 0.2,
          "diabetes": 0.2, "atopic_dermatitis": 0.3, "psych_history": 0.8}
_NC = {"age10": 0.05, "obesity": 0.2, "smoking": 0.2, "diabetes": 0.2, "atopic_dermatitis": 0.1}


def _hr(j: float, i: float, c: float) -> dict[str, float]:
    return {"jaki": j, "immunosuppressant": i, "corticosteroid": c}


def _default_processes() -> list[OutcomeProcess]:
    p = OutcomeProcess
    return [
        p(name="depression", group="neuropsychiatric", codes={"F32.9": 3, "F32.A": 3, "F32.1": 1, "F33.1": 1,
          "F32.0": 1, "F33.9": 1}, rate_per_100py=2.0, log_hr=_NP, class_hr=_hr(0.75, 1.0, 1.3), repeat_mean=2),
        p(name="other_mood", group="neuropsychiatric", codes={"F31.9": 1, "F39": 2}, rate_per_100py=0.6,
          log_hr=_NP, class_hr=_hr(0.8, 1.0, 1.35)),
        p(name="anxiety", group="neuropsychiatric", codes={"F41.9": 4, "F41.1": 3, "F41.0": 1, "F40.10": 1},
          rate_per_100py=2.0, log_hr=_NP, class_hr=_hr(0.8, 1.0, 1.25), repeat_mean=2),
        p(name="insomnia", group="neuropsychiatric", codes={"G47.00": 4, "G47.09": 1}, rate_per_100py=1.5,
          log_hr=_SLEEP, class_hr=_hr(0.75, 1.0, 1.5)),
        p(name="hypersomnia", group="neuropsychiatric", codes={"G47.10": 3, "G47.19": 1}, rate_per_100py=0.8,
          log_hr=_SLEEP, class_hr=_hr(0.9, 1.0, 1.2)),
        p(name="sleep_apnea", group="neuropsychiatric", codes={"G47.33": 4, "G47.30": 1}, rate_per_100py=1.2,
          log_hr={**_SLEEP, "obesity": 1.0, "female": -0.4}, class_hr=_hr(0.9, 1.0, 1.3)),
        p(name="other_sleep", group="neuropsychiatric", codes={"G47.9": 2, "G47.8": 1}, rate_per_100py=0.6,
          log_hr=_SLEEP, class_hr=_hr(0.85, 1.0, 1.3)),
        p(name="adhd", group="neuropsychiatric", codes={"F90.9": 2, "F90.0": 1, "F90.2": 1}, rate_per_100py=0.7,
          log_hr={**_NP, "age10": -0.2, "female": -0.2}, class_hr=_hr(1.0, 1.0, 1.1)),
        p(name="antidepressant", group="neuropsychiatric", kind="drug",
          codes={"FOLLICLE-CD-SERT50": 3, "FOLLICLE-CD-ESC10": 2, "FOLLICLE-CD-FLUOX20": 2, "FOLLICLE-CD-CIT20": 1,
                 "FOLLICLE-CD-BUP150": 2, "FOLLICLE-CD-VEN75": 1, "FOLLICLE-CD-DUL30": 1, "FOLLICLE-CD-MIR15": 1,
                 "FOLLICLE-CD-TRAZ50": 1, "FOLLICLE-CD-AMI25": 1},
          rate_per_100py=2.0, log_hr=_NP, class_hr=_hr(0.8, 1.0, 1.3), repeat_mean=3),
        p(name="ingrowing_nail", group="negative_control", codes={"L60.0": 1}, rate_per_100py=2.0, log_hr=_NC),
        p(name="ankle_sprain", group="negative_control", codes={"S93.409A": 1}, rate_per_100py=2.2,
          log_hr={**_NC, "age10": -0.1}),
        p(name="wrist_sprain", group="negative_control", codes={"S63.509A": 1}, rate_per_100py=1.8,
          log_hr={**_NC, "age10": -0.1}),
        p(name="otitis_media", group="negative_control", codes={"H66.90": 1}, rate_per_100py=2.2,
          log_hr={**_NC, "age10": -0.15}),
        p(name="ankle_fracture", group="negative_control", codes={"S82.899A": 1}, rate_per_100py=1.5,
          log_hr={**_NC, "age10": 0.1}),
        p(name="impacted_cerumen", group="negative_control", codes={"H61.20": 1}, rate_per_100py=2.0,
          log_hr={**_NC, "age10": 0.15}),
        p(name="herpes_zoster", group="adverse_event", codes={"B02.9": 4, "B02.8": 1}, rate_per_100py=1.0,
          log_hr={"age10": 0.25, "diabetes": 0.2, "malignancy_history": 0.4}, class_hr=_hr(3.0, 1.5, 1.4),
          repeat_mean=0.5),
        p(name="serious_infection", group="adverse_event", codes={"J18.9": 3, "A41.9": 1, "L03.90": 2},
          rate_per_100py=1.5, log_hr={"age10": 0.25, "diabetes": 0.5, "smoking": 0.4, "obesity": 0.2},
          class_hr=_hr(1.6, 1.5, 1.8), repeat_mean=0.3, inpatient=True),
        p(name="vte", group="adverse_event", codes={"I82.409": 2, "I26.99": 1}, rate_per_100py=0.8,
          log_hr={"age10": 0.3, "obesity": 0.5, "smoking": 0.3, "prior_vte": 1.5, "malignancy_history": 0.7},
          class_hr=_hr(1.8, 1.0, 1.3), repeat_mean=0.5, inpatient=True),
        p(name="mace", group="adverse_event", codes={"I21.9": 1, "I63.9": 1}, rate_per_100py=0.8,
          log_hr={"age10": 0.35, "smoking": 0.6, "diabetes": 0.5, "hypertension": 0.5, "obesity": 0.2},
          class_hr=_hr(1.3, 1.0, 1.2), repeat_mean=0.3, inpatient=True),
        p(name="malignancy", group="adverse_event", codes={"C50.919": 2, "C18.9": 1, "C34.90": 1},
          rate_per_100py=0.8, log_hr={"age10": 0.35, "smoking": 0.5, "malignancy_history": 1.0},
          class_hr=_hr(1.2, 1.2, 1.0), repeat_mean=1.0),
    ]


def _default_study_outcomes() -> list[StudyOutcome]:
    s = StudyOutcome
    np_ = "neuropsychiatric"
    return [
        s(name="depressive_disorders", processes=["depression"], group=np_),
        s(name="mood_disorders", processes=["depression", "other_mood"], group=np_),
        s(name="anxiety", processes=["anxiety"], group=np_),
        s(name="sleep_disorders", processes=["insomnia", "hypersomnia", "sleep_apnea", "other_sleep"], group=np_),
        s(name="insomnia", processes=["insomnia"], group=np_),
        s(name="hypersomnia", processes=["hypersomnia"], group=np_),
        s(name="sleep_apnea", processes=["sleep_apnea"], group=np_),
        s(name="adhd", processes=["adhd"], group=np_),
        s(name="antidepressant_use", processes=["antidepressant"], group=np_),
        *[s(name=n, processes=[n], group="negative_control") for n in
          ("ingrowing_nail", "ankle_sprain", "wrist_sprain", "otitis_media", "ankle_fracture", "impacted_cerumen")],
        *[s(name=n, processes=[n], group="adverse_event") for n in
          ("herpes_zoster", "serious_infection", "vte", "mace", "malignancy")],
    ]


def _default_confounders() -> list[ConfounderSpec]:
    c = ConfounderSpec
    return [
        c(name="atopic_dermatitis", prevalence=0.15, age10=-0.25, codes={"L20.9": 1}),
        c(name="thyroid", prevalence=0.08, age10=0.2, female=1.0, codes={"E03.9": 3, "E05.90": 1}),
        c(name="vitiligo", prevalence=0.03, codes={"L80": 1}),
        c(name="obesity", prevalence=0.22, age10=0.15, codes={"E66.9": 1}),
        c(name="smoking", prevalence=0.15, age10=0.05, female=-0.3, codes={"F17.210": 1}),
        c(name="diabetes", prevalence=0.06, age10=0.6, codes={"E11.9": 1}),
        c(name="hypertension", prevalence=0.15, age10=0.7, codes={"I10": 1}),
        c(name="prior_vte", prevalence=0.02, age10=0.4, codes={"I82.409": 2, "I26.99": 1}),
        c(name="malignancy_history", prevalence=0.03, age10=0.6, codes={"C50.919": 2, "C18.9": 1, "C34.90": 1}),
        c(name="psych_history", prevalence=0.20, female=0.3,
          codes={"F32.9": 3, "F41.1": 3, "F41.9": 2, "G47.00": 2, "F90.9": 1, "G47.33": 1, "F33.1": 1}),
    ]


class ResponseConfig(_Model):
    """SALT <= 20 by week 36 on systemic treatment (logistic), and relapse after stopping.

    Predictors follow Wada-Irimada et al. 2025 (mission.md source 3): disease duration <= 4
    years, prior IVMP, baseline SALT <= 95 and female sex raise the odds; ophiasis lowers them.
    """

    intercept: dict[ClassName, float] = {"jaki": -1.2, "immunosuppressant": -1.8, "corticosteroid": -2.2}
    duration_le_4y: float = 0.8
    ivmp: float = 0.6
    baseline_salt_le_95: float = 0.9
    female: float = 0.4
    ophiasis: float = -1.0
    relapse_share: dict[ClassName, float] = {"jaki": 0.75, "immunosuppressant": 0.6, "corticosteroid": 0.7}
    followup_weeks: list[int] = [12, 24, 36, 52]
    post_stop_weeks: list[int] = [12, 26]


class TruthConfig(_Model):
    """How the true marginal HRs are computed (counterfactual simulation + Cox fit)."""

    target_persons: int = Field(200_000, gt=0)  # counterfactual copies of the target population, total
    comparisons: list[tuple[ClassName, ClassName]] = [("jaki", "immunosuppressant"), ("jaki", "corticosteroid")]


class WorldConfig(_Model):
    population: PopulationConfig = PopulationConfig()
    confounders: list[ConfounderSpec] = Field(default_factory=_default_confounders)
    disease: DiseaseConfig = DiseaseConfig()
    treatment: TreatmentConfig = TreatmentConfig()
    processes: list[OutcomeProcess] = Field(default_factory=_default_processes)
    study_outcomes: list[StudyOutcome] = Field(default_factory=_default_study_outcomes)
    response: ResponseConfig = ResponseConfig()
    truth: TruthConfig = TruthConfig()
    # persons per random-number block: each block of persons draws from its own streams (derived from the
    # seed and the block's index), so the data do not depend on how many blocks are generated at once
    block_persons: int = Field(250_000, ge=100)

    @model_validator(mode="after")
    def _consistent(self) -> WorldConfig:
        problems = []
        names = {c.name for c in self.confounders}
        if names != set(CONFOUNDERS):
            problems.append(f"confounders must be exactly {list(CONFOUNDERS)}; got {sorted(names)}")
        procs = {p.name for p in self.processes}
        for so in self.study_outcomes:
            for p in so.processes:
                if p not in procs:
                    problems.append(f"study_outcomes[{so.name}].processes: unknown process {p!r}")
        classes = {d.drug_class for d in self.treatment.drugs}
        if classes != set(CLASSES):
            problems.append(f"treatment.drugs must cover every class {list(CLASSES)}; got {sorted(classes)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def process(self, name: str) -> OutcomeProcess:
        return next(p for p in self.processes if p.name == name)
