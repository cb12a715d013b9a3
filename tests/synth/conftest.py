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


BLOCKS = dict(persons=10_000, seed=12)  # test_stream.py relies on these numbers


@pytest.fixture(scope="session")
def blocks_config():
    """A world of small blocks (4,000 persons), so that 10,000 persons are 3 blocks."""
    cfg = WorldConfig(block_persons=4_000)
    return cfg.model_copy(update={"truth": cfg.truth.model_copy(update={"target_persons": 30_000})})


@pytest.fixture(scope="session")
def blocks_world(blocks_config):
    return simulate(blocks_config, **BLOCKS)


@pytest.fixture(scope="session")
def streamed(blocks_config, tmp_path_factory):
    """The same world streamed into DuckDB in chunks of 2 blocks: (path, rows, truth)."""
    from follicle.synth.build import build_world

    folder = tmp_path_factory.mktemp("streamed")
    _, rows, truth = build_world(BLOCKS["persons"], BLOCKS["seed"], folder / "world.duckdb", config=blocks_config,
                                 chunk_persons=8_000, truth_path=folder / "truth.json")
    return folder / "world.duckdb", rows, truth


@pytest.fixture(scope="session")
def streamed_path(streamed):
    return streamed[0]
