"""Small worlds shared by the synth tests (built once per session)."""

from __future__ import annotations

import pytest

from follicle.synth import WorldConfig, simulate


@pytest.fixture(scope="session")
def world():
    cfg = WorldConfig()
    cfg = cfg.model_copy(update={"truth": cfg.truth.model_copy(update={"target_persons": 60_000})})
    return simulate(cfg, persons=20_000, seed=11)


@pytest.fixture(scope="session")
def truth(world):
    return world.truth()


@pytest.fixture(scope="session")
def cdm_path(world, tmp_path_factory):
    from follicle.cdm.write import write_cdm

    path = tmp_path_factory.mktemp("synth") / "world.duckdb"
    write_cdm(world.to_cdm(), path)
    return path
