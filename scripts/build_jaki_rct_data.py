"""Build src/follicle/synthesis/data/jaki_rct_salt20.csv from shared/data/trials/jaki_aa_rct_arms.csv.

Usage: python scripts/build_jaki_rct_data.py [PATH_TO_ARMS_CSV]
Responder counts are reconstructed as round(percent x n / 100); see follicle.synthesis.data.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from follicle.synthesis.data import JAKI_RCT_FILE, build_pairwise

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "data" / "trials" / "jaki_aa_rct_arms.csv"
    out = REPO / "src" / "follicle" / "synthesis" / "data" / JAKI_RCT_FILE
    table = build_pairwise(pd.read_csv(src))
    tmp = out.with_suffix(".tmp")
    table.to_csv(tmp, index=False, lineterminator="\n")
    tmp.replace(out)
    print(f"wrote {out} ({len(table)} comparisons)")


if __name__ == "__main__":
    main()
