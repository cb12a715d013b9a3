"""DuckDB draws a progress bar on stdout for queries over 2 s, even into a pipe (seen with DuckDB 1.5.6
at 10M persons), which would corrupt ``--json``: every connection Follicle opens turns it off. Checked in
a fresh process, as a command runs (the setting's default differs under pytest's captured output)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).parents[2] / "src"
PROBE = """
import json, sys, duckdb
from follicle.cdm.connect import connect, open_duckdb
q = "SELECT current_setting('enable_progress_bar')"
path = sys.argv[1]
plain = duckdb.connect(path).execute(q).fetchone()[0]
raw = open_duckdb(path); a = raw.execute(q).fetchone()[0]; raw.close()
b = connect(path).con.execute(q).fetchone()[0]
c = open_duckdb(path, read_only=True).execute(q).fetchone()[0]
print(json.dumps([plain, a, b, c]))
"""


def test_follicle_connections_have_no_progress_bar(tmp_path):
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "cdm.duckdb")], capture_output=True,
                         text=True, check=True, env=dict(os.environ, PYTHONPATH=str(SRC)))
    plain, *ours = json.loads(out.stdout)
    assert plain is True  # DuckDB's default: why the check matters
    assert ours == [False, False, False]
