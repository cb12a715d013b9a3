"""The synthetic alopecia-areata world: realistic OMOP CDM data with known true effects.

Python API (no OMOP needed, for fast replicate simulations)::

    from follicle.synth import WorldConfig, simulate
    world = simulate(WorldConfig(), persons=50_000, seed=1)
    world.persons                  # DataFrame, one row per person: confounders, AA onset/subtype/severity,
                                   # treatment courses (class1/drug1/index_day, switch, class2), first event
                                   # day per outcome process (event_<process>), obs_end / death_day
    world.outcome_day("anxiety")   # first day of a study outcome (union of its processes), -1 = none
    world.history_before("vte", world.persons.index_day.to_numpy())   # outcome codes recorded before a day
    world.cohort_frame("jaki", "corticosteroid")   # analysis table: treatment, covariates,
                                   # <outcome>_event / _time / _prior per study outcome
    world.truth()                  # JSON-able: estimand, true marginal HR per comparison x outcome, parameters
    world.to_cdm()                 # dict[str, pyarrow.Table]: OMOP CDM v5.4 incl. bundled vocabulary

    from follicle.synth import build_world   # stream the same world, chunk by chunk, into a CDM + truth JSON
    build_world(200_000, 1, "world.duckdb", truth_path="truth.json")
    build_world(10_000_000, 1, parquet="world-pq", chunk_persons=250_000)   # a Parquet folder for `cdm load`

Persons are drawn in blocks of ``WorldConfig.block_persons``, each from its own random streams, so the
in-memory world and the streamed one are the same (:mod:`follicle.synth.blocks`).
Days are integers counted from 1970-01-01. The config (:class:`WorldConfig`) holds every rate,
coefficient and true conditional hazard ratio; ``docs/synthetic-world.md`` explains them.
"""

from follicle.synth.build import build_world, load_config
from follicle.synth.config import CLASSES, WorldConfig
from follicle.synth.truth import cox_binary
from follicle.synth.world import World, simulate

__all__ = ["CLASSES", "World", "WorldConfig", "build_world", "cox_binary", "load_config", "simulate"]
