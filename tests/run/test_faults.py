"""Fault injection (issue 14, points 4 and 6): a process killed at each write of the cache and of the
output publication, a whole `follicle run` killed at random moments, two runs at once, damaged
cache files. (The report draws its figures in-process since issue 21: no worker to outlive it.)"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from follicle.run import publish as publish_mod
from follicle.run.cache import ArtifactStore, decode
from follicle.run.estimate import OutcomeEstimate
from follicle.run.publish import MARKER, publish
from follicle.tempfiles import remove_stale

REPO = Path(__file__).resolve().parents[2]
STUDY = REPO / "studies" / "jaki_neuropsych.yaml"
ENV = dict(os.environ, PYTHONPATH=str(REPO / "src"))
DONE = (0, 3)  # 3: outputs written, but something was not estimable on the small world (issue 16)


def _die_at(n: int, targets: list[tuple[object, str]]) -> None:
    """In a child: patch each (owner, name) so that the n-th call among them kills the process."""
    calls = {"k": 0}
    for owner, name in targets:
        original = getattr(owner, name)

        def wrapper(*a, _orig=original, **kw):
            calls["k"] += 1
            if calls["k"] == n:
                os._exit(9)  # as abrupt as SIGKILL: no finally, no cleanup
            return _orig(*a, **kw)

        setattr(owner, name, wrapper)


def _in_child(fn) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            fn()
        finally:
            os._exit(0)
    return os.waitpid(pid, 0)[1] >> 8


def _estimate() -> OutcomeEstimate:
    curve = pd.DataFrame({"time": [1.0, 2.0], "survival": [0.9, 0.8], "at_risk": [20, 18]})
    return OutcomeEstimate("x", False, {"n_target": 20, "hr": float("nan"), "p": 0.5},
                           curves={"a": curve}, at_risk=curve, warnings=["w"])


def test_cache_put_killed_at_each_write_leaves_nothing_half_written(tmp_path):
    value = _estimate()
    writes = [(Path, "write_bytes"), (Path, "write_text"), (os, "rename")]
    for n in range(1, 8):
        root = tmp_path / f"c{n}"
        code = _in_child(lambda: (_die_at(n, writes), ArtifactStore(root).put("outcome", "k", value)))
        store = ArtifactStore(root)
        if code == 9:  # died mid-put: either absent, or complete
            assert not store.has("outcome", "k") or decode(store.path("outcome", "k")).numbers["n_target"] == 20
        remove_stale(root, depth=2)
        leftovers = [p for p in root.rglob("*") if p.name.startswith(".tmp-")]
        assert not leftovers, leftovers
        got = store.get_or_compute("outcome", "k", _estimate)
        assert got.numbers["n_target"] == 20 and got.curves["a"].equals(value.curves["a"])


@pytest.mark.parametrize("damage", ["truncate", "delete_blob", "garbage_meta", "empty_meta"])
def test_damaged_cache_entries_are_recomputed(tmp_path, damage):
    store = ArtifactStore(tmp_path)
    store.put("outcome", "k", _estimate())
    folder = store.path("outcome", "k")
    blob = next(folder.glob("*.arrow"))
    if damage == "truncate":
        blob.write_bytes(blob.read_bytes()[:20])
    elif damage == "delete_blob":
        blob.unlink()
    elif damage == "garbage_meta":
        (folder / "meta.json").write_bytes(os.urandom(64))
    else:
        (folder / "meta.json").write_text("")
    again = ArtifactStore(tmp_path)
    got = again.get_or_compute("outcome", "k", _estimate)
    assert again.damaged["outcome"] == 1 and again.computed["outcome"] == 1 and got.numbers["n_target"] == 20


def test_publish_killed_at_each_step_shows_old_or_new_never_a_mix(tmp_path):
    old = {"results.json": b'{"run": "old"}', "tables/a.parquet": b"old-a", "tables/b.parquet": b"old-b"}
    new = {"results.json": b'{"run": "new"}', "tables/a.parquet": b"new-a", "report.html": b"new"}
    steps = [(Path, "write_bytes"), (Path, "write_text"), (os, "rename"), (os, "chmod"), (publish_mod, "_exchange")]
    seen_new = seen_old = 0
    for n in range(1, 12):
        out = tmp_path / f"r{n}" / "out"
        publish(out, old)
        _in_child(lambda: (_die_at(n, steps), publish(out, new)))
        publish_mod._recover(out)  # what the next run does first
        files = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
        files.pop(MARKER)
        if files == old:
            seen_old += 1
        else:
            assert files == new, files
            seen_new += 1
        publish(out, new)  # the next run succeeds and leaves no temporary behind
        assert sorted(p.name for p in out.parent.iterdir()) == ["out"]
    assert seen_old and seen_new


@pytest.fixture(scope="module")
def small_world(tmp_path_factory) -> Path:
    from follicle.synth.build import build_world

    db = tmp_path_factory.mktemp("fw") / "w.duckdb"
    build_world(6_000, 5, db)
    return db


def _run_cmd(db: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "follicle", "run", str(STUDY), "--db", str(db), "--out", str(out), "--json", *extra]


def test_run_killed_at_random_moments_keeps_whole_results(small_world, tmp_path):
    out = tmp_path / "out"
    first = subprocess.run(_run_cmd(small_world, out), capture_output=True, env=ENV, timeout=600)
    assert first.returncode in DONE, first.stderr.decode()[-2000:]
    before = (out / "results.json").read_bytes()
    rng = random.Random(14)
    for _ in range(3):
        proc = subprocess.Popen(_run_cmd(small_world, out, "--force"), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=ENV)
        time.sleep(rng.uniform(0.5, 8.0))
        proc.kill()
        proc.wait()
        doc = json.loads((out / "results.json").read_bytes())  # whole and parseable
        assert doc["comparisons"] and sorted(p.name for p in (out / "tables").iterdir())
    again = subprocess.run(_run_cmd(small_world, out), capture_output=True, env=ENV, timeout=600)
    assert again.returncode in DONE, again.stderr.decode()[-2000:]
    assert (out / "results.json").read_bytes() == before  # same inputs, same bytes
    left = [p.name for p in tmp_path.iterdir() if p.name not in ("out", "out.work")]
    assert not left, left
    stale = [p for p in (tmp_path / "out.work").rglob("*") if ".tmp-" in p.name]
    assert not stale, stale


def test_two_runs_at_once_end_with_one_whole_result(small_world, tmp_path):
    out = tmp_path / "out"
    procs = [subprocess.Popen(_run_cmd(small_world, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
             for _ in range(2)]
    results = [p.communicate(timeout=900) for p in procs]
    assert all(p.returncode in DONE for p in procs), [r[1].decode()[-1500:] for r in results]
    doc = json.loads((out / "results.json").read_bytes())
    assert len(doc["comparisons"]) == 2
    for p in (out / "tables").glob("*.parquet"):
        pd.read_parquet(p)
    third = subprocess.run(_run_cmd(small_world, out), capture_output=True, env=ENV, timeout=600)
    computed = json.loads(third.stdout)["computed"]
    assert third.returncode in DONE and sum(computed.values()) == 0, computed  # the shared cache is whole
