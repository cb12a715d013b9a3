"""Same seed -> identical tables (hash of every CDM table); different seeds -> different tables."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pytest

from follicle.errors import InputError
from follicle.synth import simulate


def table_hash(tbl: pa.Table) -> str:
    h = hashlib.sha256()
    for batch in tbl.combine_chunks().to_batches():
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        h.update(sink.getvalue().to_pybytes())
    return h.hexdigest()


def hashes(seed: int) -> dict[str, str]:
    return {name: table_hash(t) for name, t in simulate(persons=3_000, seed=seed).to_cdm().items()}


def test_same_seed_same_tables():
    a, b = hashes(5), hashes(5)
    assert a == b


def test_different_seed_different_clinical_tables():
    a, b = hashes(5), hashes(6)
    for name in ("person", "observation_period", "condition_occurrence", "drug_exposure", "measurement"):
        assert a[name] != b[name], name
    assert a["concept"] == b["concept"]  # the vocabulary does not depend on the seed


@pytest.mark.parametrize("persons, seed", [(0, 1), (-5, 1), (10, -1)])
def test_bad_arguments_name_the_parameter(persons, seed):
    with pytest.raises(InputError, match="persons|seed"):
        simulate(persons=persons, seed=seed)


@pytest.mark.parametrize("persons", [1, 7])
def test_tiny_worlds_write_a_cdm(persons, tmp_path):
    from follicle.cdm.write import write_cdm

    w = simulate(persons=persons, seed=2)
    rows = write_cdm(w.to_cdm(), tmp_path / "tiny.duckdb")
    assert rows["person"] == persons
    assert isinstance(w.truth()["effects"], list)  # empty when there is no target-class initiator
