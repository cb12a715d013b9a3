"""Run R code on data a test generated, for differential tests against R packages.

``run_r(code, inputs)`` writes each input DataFrame to CSV and reads it in R under its name;
the R code reports numbers with ``out("name", value)``; the result maps each name to a list of
floats (17 significant digits, so 1e-6 relative comparisons are meaningful); R's NA arrives as NaN
and Inf as inf.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pandas as pd

_PREAMBLE = """
options(warn = 1)
out <- function(name, value) {
  value <- as.numeric(value)
  cat(name, "\\t", paste(formatC(value, digits = 17, format = "g"), collapse = " "), "\\n", sep = "")
}
"""


def r_has_package(rscript: str, package: str) -> bool:
    res = subprocess.run(
        [rscript, "-e", f"quit(status = if (requireNamespace('{package}', quietly = TRUE)) 0 else 1)"],
        capture_output=True,
    )
    return res.returncode == 0


def run_r(rscript: str, code: str, inputs: dict[str, pd.DataFrame] | None = None) -> dict[str, list[float]]:
    """Run *code* in R with *inputs* as data frames; return what it reported with ``out``."""
    with tempfile.TemporaryDirectory() as tmp:
        reads = []
        for name, frame in (inputs or {}).items():
            path = Path(tmp) / f"{name}.csv"
            frame.to_csv(path, index=False, float_format="%.17g")
            reads.append(f'{name} <- read.csv("{path}", stringsAsFactors = FALSE)')
        script = Path(tmp) / "run.R"
        script.write_text(_PREAMBLE + "\n".join(reads) + "\n" + code)
        res = subprocess.run([rscript, "--vanilla", str(script)], capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"R failed:\n{res.stderr}")
    result: dict[str, list[float]] = {}
    for line in res.stdout.splitlines():
        if "\t" in line:
            name, values = line.split("\t", 1)
            result[name] = [float("nan") if v == "NA" else float(v) for v in values.split()]
    return result
