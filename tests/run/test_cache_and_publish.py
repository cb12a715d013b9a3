"""The step cache is keyed by content, stores no pickle, lives outside the shareable folder; a
run's outputs are published as a whole and stale temporaries are cleaned (issue 14, points 1, 4)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from follicle.cdm.connect import connect
from follicle.cdm.fingerprint import table_hashes
from follicle.run.cache import ArtifactStore, CorruptArtifact, decode
from follicle.run.publish import MARKER, publish, remove_stale, work_dir_for
from follicle.run.study import run_study
from follicle.errors import InputError
from follicle.study.spec import load_spec
from follicle.synth.build import build_world

REPO = Path(__file__).resolve().parents[2]
STUDY = REPO / "studies" / "jaki_neuropsych.yaml"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("world") / "world.duckdb"
    build_world(8_000, 3, db)
    return db


@pytest.fixture(scope="module")
def first(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    return run_study(load_spec(STUDY), world, out)


def test_tampered_copy_with_same_counts_and_dates_recomputes(world, first, tmp_path):
    """The issue's scenario: every condition concept set to 0 and every person made male."""
    copy = tmp_path / "tampered.duckdb"
    shutil.copy(world, copy)
    with duckdb.connect(str(copy)) as con:
        con.execute("UPDATE condition_occurrence SET condition_concept_id = 0")
        con.execute("UPDATE person SET gender_concept_id = 8507")
    rerun = run_study(load_spec(STUDY), copy, first.out_dir)
    assert rerun.store.computed["population"] == 2 and rerun.store.reused["population"] == 0
    assert rerun.results["cdm_fingerprint"] != first.results["cdm_fingerprint"]
    again = run_study(load_spec(STUDY), world, first.out_dir)  # the original is still cached
    assert sum(again.store.computed.values()) == 0
    assert json.loads((first.out_dir / "results.json").read_text()) == first.results


def test_a_table_the_study_does_not_read_keeps_the_cache(world, first, tmp_path):
    """Only the tables a study reads are hashed: the bundled study resolves no concept set to the
    measurement domain, so changing every measurement reuses every step (and the fingerprint),
    while one changed drug exposure recomputes what reads it."""
    from follicle.run.study import tables_read
    from follicle.study.population import StudySession

    spec = load_spec(STUDY)
    with StudySession(spec, connect(world, read_only=True)) as session:
        read = tables_read(spec, session)
    assert "measurement" not in read and {"condition_occurrence", "drug_exposure"} <= set(read)
    copy = tmp_path / "measured.duckdb"
    shutil.copy(world, copy)
    with duckdb.connect(str(copy)) as con:
        assert con.execute("SELECT count(*) FROM measurement").fetchone()[0] > 0
        con.execute("UPDATE measurement SET value_as_number = -1")
    rerun = run_study(spec, copy, tmp_path / "m", work_dir=work_dir_for(first.out_dir))
    assert rerun.results["cdm_fingerprint"] == first.results["cdm_fingerprint"]
    assert sum(rerun.store.computed.values()) == 0 and rerun.store.reused["population"] == 2
    with duckdb.connect(str(copy)) as con:
        con.execute("UPDATE drug_exposure SET drug_exposure_end_date = drug_exposure_end_date + 1 "
                    "WHERE drug_exposure_id = (SELECT min(drug_exposure_id) FROM drug_exposure)")
    again = run_study(spec, copy, tmp_path / "m", work_dir=work_dir_for(first.out_dir))
    assert again.results["cdm_fingerprint"] != first.results["cdm_fingerprint"]
    assert again.store.computed["population"] == 2


def test_an_atlas_cohort_makes_every_circe_table_part_of_the_key():
    """An ATLAS cohort reads what its criteria name (visits, eras...), not only concept-set domains."""
    from follicle.run.study import tables_read

    spec = load_spec(REPO / "tests" / "study" / "atlas" / "atlas_spec.yaml")
    assert any(c.atlas for c in spec.cohorts.values())
    read = tables_read(spec, session=None)
    assert {"visit_occurrence", "condition_era", "drug_era", "measurement", "condition_occurrence"} <= set(read)


def test_adding_an_adjustment_computes_only_it(world, first, tmp_path):
    """Every adjustment is an artefact of its own (Parquet, keyed by its settings and the content
    keys upstream): adding one to the spec computes that adjustment and its estimates, nothing else."""
    spec = load_spec(STUDY)
    analysis = spec.analysis.model_copy(update={"adjustments": list(spec.analysis.adjustments) + [
        spec.analysis.model_validate({"adjustments": [{"kind": "iptw", "name": "weighted"}]}).adjustments[0]]})
    more = spec.model_copy(update={"analysis": analysis})
    rerun = run_study(more, world, tmp_path / "out", work_dir=work_dir_for(first.out_dir))
    comparisons, outcomes = len(spec.comparisons), sum(
        len(dict.fromkeys(c.outcomes + c.negative_controls)) for c in spec.comparisons.values())
    assert rerun.store.computed["adjustment"] == comparisons and rerun.store.reused["adjustment"] == comparisons
    assert rerun.store.computed["outcome"] == outcomes and rerun.store.reused["outcome"] == outcomes
    assert not rerun.store.computed["population"] and not rerun.store.computed["propensity"]
    stored = list((first.store.root / "adjustment").rglob("*"))
    assert {p.suffix for p in stored if p.is_file()} == {".arrow", ".json"}
    for old, new in zip(first.results["comparisons"], rerun.results["comparisons"]):
        assert [a["name"] for a in new["adjustments"]] == ["matching", "weighted"]
        assert new["adjustments"][0] == old["adjustments"][0]  # the matching one, as before


def test_one_changed_value_changes_that_tables_hash_only(world, tmp_path):
    copy = tmp_path / "one.duckdb"
    shutil.copy(world, copy)
    with duckdb.connect(str(copy)) as con:
        con.execute("UPDATE drug_exposure SET drug_source_value = 'x' WHERE drug_exposure_id = "
                    "(SELECT min(drug_exposure_id) FROM drug_exposure)")
    for portable in (False, True):
        a = table_hashes(connect(world, read_only=True), portable=portable)
        b = table_hashes(connect(copy, read_only=True), portable=portable)
        assert {k for k in a if a[k] != b[k]} == {"drug_exposure"}


def test_cache_is_plain_data_outside_the_shareable_folder(first):
    out, work = first.out_dir, work_dir_for(first.out_dir)
    assert first.store.root.is_relative_to(work)
    shared = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert shared == sorted([MARKER, "report.html", "results.json"] + [
        f"tables/{n}.parquet" for n in ("adjusted_balance", "adjusted_diagnostics", "adjusted_estimates",
                                        "adjusted_table1", "attrition", "balance", "diagnostics", "estimates", "km",
                                        "km_at_risk", "preference", "table1")])
    stored = [p for p in work.rglob("*") if p.is_file()]
    assert stored and {p.suffix for p in stored} <= {".arrow", ".json"}
    assert not [p for p in stored if p.suffix in (".pkl", ".pickle")]
    # the shareable tables have no person-level column
    for p in (out / "tables").glob("*.parquet"):
        assert "person_id" not in pd.read_parquet(p).columns


def test_planted_or_corrupt_cache_entries_are_recomputed_not_executed(world, first, tmp_path):
    work = tmp_path / "w"
    run_study(load_spec(STUDY), world, tmp_path / "o", work_dir=work)
    store = ArtifactStore(work / "cache")
    folders = sorted((work / "cache" / "propensity").iterdir())
    assert folders
    meta = folders[0] / "meta.json"
    # a pickle planted beside the artefact is never read
    (folders[0] / "evil.pkl").write_bytes(b"cos\nsystem\n(S'touch /tmp/follicle-pwned'\ntR.")
    # a data file of the population flipped: the digest no longer matches
    pop = next((work / "cache" / "population").iterdir())
    blob = next(pop.glob("*.arrow"))
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(CorruptArtifact):
        decode(pop)
    meta.write_text(json.dumps(json.loads(meta.read_text()) | {"root": {"__dc__": "os.system"}}))
    rerun = run_study(load_spec(STUDY), world, tmp_path / "o", work_dir=work)
    assert rerun.store.damaged["population"] >= 1 and rerun.store.damaged["propensity"] >= 1
    assert not Path("/tmp/follicle-pwned").exists()
    assert rerun.results["comparisons"] == json.loads((tmp_path / "o" / "results.json").read_text())["comparisons"]
    assert store.root.exists()


def test_forged_data_file_with_a_matching_digest_is_refused(first, tmp_path):
    """Someone who can write the store can also rewrite meta.json's digests: a data file that is
    not a valid Arrow stream (or whose buffers lie about their sizes) must still fail to decode
    as CorruptArtifact, never crash or return garbage."""
    import hashlib

    src = next((first.store.root / "population").iterdir())
    for forge in (lambda d: d[: len(d) // 3], lambda d: d[:200] + bytes(len(d) - 200), lambda d: b"PAR1" + d[4:]):
        folder = tmp_path / f"forged{len(list(tmp_path.iterdir()))}"
        shutil.copytree(src, folder)
        meta = json.loads((folder / "meta.json").read_text())
        name = max(meta["files"], key=lambda n: (folder / n).stat().st_size)
        data = forge((folder / name).read_bytes())
        (folder / name).write_bytes(data)
        meta["files"][name] = hashlib.sha256(data).hexdigest()
        (folder / "meta.json").write_text(json.dumps(meta))
        with pytest.raises(CorruptArtifact):
            decode(folder)


def test_work_folder_inside_out_is_refused(world, tmp_path):
    with pytest.raises(InputError, match="--work"):
        run_study(load_spec(STUDY), world, tmp_path / "o", work_dir=tmp_path / "o" / "cache")


def test_out_folder_with_foreign_files_is_refused(world, tmp_path):
    out = tmp_path / "home"
    out.mkdir()
    (out / "thesis.docx").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        run_study(load_spec(STUDY), world, out)
    assert (out / "thesis.docx").read_text() == "mine"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_are_cleaned_live_ones_kept(tmp_path):
    dead, live = _dead_pid(), os.getppid()
    (tmp_path / f".out.tmp-{dead}-abc").mkdir()
    (tmp_path / f".world.duckdb.tmp-{dead}").write_text("x")
    (tmp_path / f".out.old-{dead}").mkdir()
    (tmp_path / f".out.tmp-{live}-abc").mkdir()
    (tmp_path / "keep.txt").write_text("x")
    assert remove_stale(tmp_path) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f".out.tmp-{live}-abc", "keep.txt"])


def test_publish_replaces_the_whole_folder(tmp_path):
    out = tmp_path / "out"
    publish(out, {"results.json": b"1", "tables/a.parquet": b"a", "tables/b.parquet": b"b"})
    publish(out, {"results.json": b"2", "tables/a.parquet": b"A"})
    assert (out / "results.json").read_bytes() == b"2"
    assert not (out / "tables" / "b.parquet").exists()  # nothing of the old run is left in the new one
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_publish_recovers_old_outputs_after_a_death_between_renames(tmp_path):
    """The two-rename fallback: a run killed after moving the old folder aside is undone."""
    out = tmp_path / "out"
    publish(out, {"results.json": b"old"})
    os.rename(out, tmp_path / f".out.old-{_dead_pid()}")
    with pytest.raises(ValueError, match="leaves the output folder"):
        publish(out, {"../escape.json": b"x"})
    assert (out / "results.json").read_bytes() == b"old"  # recovered, and the failed publish changed nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_small_min_cell_count_needs_the_flag_and_warns_in_results_and_report(world, tmp_path):
    spec = load_spec(STUDY).model_copy(update={"min_cell_count": 3})
    with pytest.raises(InputError, match="--allow-small-cells"):
        run_study(spec, world, tmp_path / "o")
    assert not (tmp_path / "o").exists()
    done = run_study(spec, world, tmp_path / "o", allow_small_cells=True)
    warning = done.results["privacy_warning"]
    assert "weakened" in warning and json.loads((tmp_path / "o" / "results.json").read_text())["privacy_warning"] == warning
    assert 'role="alert"' in (tmp_path / "o" / "report.html").read_text()


FRAMES = {
    "numeric (stored without pandas metadata)": pd.DataFrame(
        {"t": [1.5, 2.0, float("nan")], "n": [3, 2, 1], "ok": [True, False, True],
         "i32": pd.array([1, 2, 3], dtype="int32"), "f32": pd.array([0.5, 1, 2], dtype="float32")}),
    "numeric, no rows": pd.DataFrame({"t": pd.array([], dtype="float64"), "n": pd.array([], dtype="int64")}),
    "nullable ints and dates": pd.DataFrame({"n": pd.array([1, None], dtype="Int64"),
                                             "d": pd.to_datetime(["2020-01-01", "2021-06-30"])}),
    "strings and nested cells": pd.DataFrame({"s": ["a", None], "nested": [{"k": [1, 2]}, None]}),
    "numeric with an index of its own": pd.DataFrame({"x": [1.0, 2.0]}, index=pd.Index([10, 20], name="person_id")),
    "numeric, a named range index": pd.DataFrame({"x": [1.0, 2.0]}, index=pd.RangeIndex(2, name="row")),
    "numeric, non-string column names": pd.DataFrame({0: [1.0], 1: [2.0]}),
}


@pytest.mark.parametrize("kind", list(FRAMES))
def test_stored_frames_come_back_unchanged(kind, tmp_path):
    """Every frame comes back with its values, dtypes, index and column names (plain numeric frames
    take a fast path without pandas metadata; the others keep it); column names become strings."""
    frame = FRAMES[kind]
    store = ArtifactStore(tmp_path)
    store.put("step", "k", {"frame": frame, "array": frame.index.to_numpy()})
    back = store.get_or_compute("step", "k", lambda: pytest.fail("recomputed instead of read"))
    expected = frame.rename(columns=str)
    pd.testing.assert_frame_equal(back["frame"], expected, check_index_type=True, check_column_type=True)
    assert list(back["array"]) == list(frame.index)
