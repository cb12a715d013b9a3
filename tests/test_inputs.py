"""Bad inputs give one clear message naming the file, row or field and a non-zero exit (issue 14,
point 5): spec size and encoding, zip limits, symlinks out of the source folder, headers that
match no column, ids beyond the database's integers, the PH test on degenerate data, Ctrl-C."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from follicle.cdm import source
from follicle.cli import app
from follicle.errors import InputError
from follicle.textinput import MAX_SPEC_BYTES, load_data

REPO = Path(__file__).resolve().parents[1]
GIBLEED = Path(os.environ.get("FOLLICLE_SHARED", REPO.parent / "shared")) / "data" / "omop" / "gibleed"  # as conftest.shared_dir
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _one_message(res, *needles):
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    for n in needles:
        assert n in res.output, (n, res.output)


@pytest.fixture
def latin1_yaml(tmp_path):
    p = tmp_path / "spec.yaml"
    p.write_bytes("name: caf\xe9\n".encode("latin-1"))
    return p


@pytest.mark.parametrize("args", [
    ["run", "{spec}", "--db", "x.duckdb"], ["meta", "--spec", "{spec}"], ["synth", "--config", "{spec}"],
    ["response", "cdm", "{spec}", "--db", "x.duckdb"], ["cohorts", "{spec}", "--db", "x.duckdb"],
])
def test_non_utf8_yaml_is_one_message(latin1_yaml, args):
    res = invoke(*[a.format(spec=latin1_yaml) for a in args])
    _one_message(res, "spec.yaml", "not UTF-8", "line 1")


def test_oversized_spec_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "big.yaml"
    with big.open("w") as fh:
        fh.write("name: x\nconcept_sets:\n")
        while fh.tell() <= MAX_SPEC_BYTES:
            fh.write("  - a\n" * 1000)
    t0 = time.perf_counter()
    res = invoke("run", big, "--db", "x.duckdb")
    _one_message(res, "big.yaml", "limit is 1,000,000 bytes")
    assert time.perf_counter() - t0 < 5


def test_yaml_alias_bomb_is_refused(tmp_path):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 14):  # 13 x 9 = 117 aliases, 9**13 leaves when expanded
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 9) + "]")
    p = tmp_path / "bomb.yaml"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="aliases"):
        load_data(p)


def test_broken_yaml_names_the_position(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("name: [unclosed\n")
    with pytest.raises(InputError, match=r"(?s)s\.yaml: not valid YAML .*line 1, column 7"):
        load_data(p)


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for t in ("person", "observation_period"):
        shutil.copy(GIBLEED / f"{t}.csv", src / f"{t}.csv")
    return src


def test_symlink_out_of_the_source_is_refused(tmp_path):
    src = _source(tmp_path)
    (src / "death.csv").symlink_to("/etc/passwd")
    res = invoke("cdm", "load", src, "--db", tmp_path / "x.duckdb")
    _one_message(res, "death.csv", "outside the source folder")
    assert not (tmp_path / "x.duckdb").exists()
    assert "root:" not in res.output


def test_symlink_inside_the_source_is_fine(tmp_path):
    src = _source(tmp_path)
    (src / "sub").mkdir()
    shutil.move(src / "person.csv", src / "sub" / "real_person.csv")
    (src / "person.csv").symlink_to(src / "sub" / "real_person.csv")
    res = invoke("cdm", "load", src, "--db", tmp_path / "x.duckdb")
    assert res.exit_code == 0, res.output


def test_header_matching_no_column_is_refused(tmp_path):
    src = _source(tmp_path)
    (src / "death.csv").write_text("person_id;death_date\n1;2020-01-01\n")
    res = invoke("cdm", "load", src, "--db", tmp_path / "x.duckdb")
    _one_message(res, "death.csv", "no column of its header matches", "death")
    assert not (tmp_path / "x.duckdb").exists()


def test_zip_bomb_is_refused(tmp_path):
    src = _source(tmp_path)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(src / "observation_period.csv", "observation_period.csv")
        with z.open("person.csv", "w") as fh:
            for _ in range(64):
                fh.write(b"0" * (1 << 20))
    assert bomb.stat().st_size < 1_000_000
    res = invoke("cdm", "load", bomb, "--db", tmp_path / "x.duckdb")
    _one_message(res, "bomb.zip", "person.csv", "zip bomb")


def test_zip_total_and_member_limits(tmp_path, monkeypatch):
    src = _source(tmp_path)
    z = tmp_path / "cdm.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in src.iterdir():
            zf.write(f, f.name)
    with pytest.raises(InputError, match="the limit is 1,000"), zipfile.ZipFile(z) as zf:
        source._extract(z, zf, tmp_path / "out", max_total=1000)
    monkeypatch.setattr(source, "MAX_ZIP_MEMBERS", 1)
    with pytest.raises(InputError, match="at most 1 are unpacked"), zipfile.ZipFile(z) as zf:
        source._extract(z, zf, tmp_path / "out2")


def test_route_id_beyond_int64_names_the_field(tmp_path):
    spec = (REPO / "studies" / "jaki_neuropsych.yaml").read_text()
    assert "route: {exclude: [4263689]}" in spec
    p = tmp_path / "s.yaml"
    p.write_text(spec.replace("route: {exclude: [4263689]}", "route: {exclude: [99999999999999999999999]}"))
    res = invoke("run", p, "--db", tmp_path / "x.duckdb")
    _one_message(res, "cohorts.jaki.route.exclude.0", "2147483647")


def test_sigint_in_synth_write_phase_is_one_line_and_leaves_nothing(tmp_path):
    """Ctrl-C while the world is built or written: exit 130, no traceback, no database, no temporaries."""
    db = tmp_path / "w.duckdb"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen([sys.executable, "-m", "follicle", "synth", "--persons", "40000", "--db", str(db)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob(".w.duckdb.tmp-*")):  # the write phase began
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    if proc.poll() is not None:
        pytest.fail("synth finished before its write phase could be interrupted")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in err and b"interrupted" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_driver_error_caused_by_ctrl_c_counts_as_interrupt():
    """DuckDB turns Ctrl-C during a statement into RuntimeError("Query interrupted") caused by the
    KeyboardInterrupt (seen in CI); the CLI must treat it as an interrupt, not a crash."""
    from follicle.cli._common import _is_interrupt

    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as ki:
            raise RuntimeError("Query interrupted") from ki
    except RuntimeError as exc:
        assert _is_interrupt(exc)
    assert not _is_interrupt(RuntimeError("Query interrupted"))
    assert not _is_interrupt(ValueError("bad"))
