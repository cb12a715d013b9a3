"""The GiBleed Circe definitions of the ATLAS tests, with their sources."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
CIRCE_TABLES = (
    "person", "observation_period", "drug_exposure", "condition_occurrence", "death", "concept", "concept_ancestor",
    "concept_relationship", "measurement", "procedure_occurrence", "observation", "visit_occurrence",
    "condition_era", "drug_era",
)
#: GiBleed definitions published by OHDSI-network packages (file -> source), and Follicle's
#: feature-coverage definitions (source: this repository)
PUBLISHED = {
    "ohdsi/celecoxibCensored.json": "OHDSI/CohortGenerator inst/testdata/name/cohorts/celecoxibCensored.json",
    "ohdsi/celecoxibAge40Male.json": "OHDSI/CohortGenerator inst/testdata/name/cohorts/celecoxibAge40Male.json",
    "ohdsi/GIBleed_male.json": "darwin-eu/CDMConnector inst/example_cohorts/GIBleed_male.json",
    "ohdsi/gibleed_all_end_10.json": "darwin-eu/CDMConnector inst/cohorts3/gibleed_all_end_10.json",
    "ohdsi/viral_sinusitus.json": "darwin-eu/CDMConnector inst/cohorts5/viral_sinusitus.json",
}
FEATURES = sorted(f"features/{p.name}" for p in (HERE / "features").glob("*.json"))
DEFINITIONS = [*PUBLISHED, *FEATURES]
