"""Spaghetti plot: one line per patient, dashed off drug, written atomically."""

import pandas as pd

from follicle.report.spaghetti import spaghetti_figure, write_spaghetti


def visits():
    return pd.DataFrame({
        "patient_id": ["a"] * 4 + ["b"] * 3,
        "day": [0, 90, 180, 270, 10, 100, 190],
        "salt": [90, 40, 10, 50, 70, 60, 65],
        "on_drug": [1, 1, 1, 0, 1, 1, 1],
    })


def test_lines_and_styles():
    fig = spaghetti_figure(visits())
    ax = fig.axes[0]
    styles = [ln.get_linestyle() for ln in ax.get_lines() if len(ln.get_xdata()) == 2]
    assert styles.count("--") == 1  # a's last segment, after the stop
    assert styles.count("-") == 4
    xs = [x for ln in ax.get_lines() for x in ln.get_xdata()]
    assert min(xs) == 0  # days counted from each patient's first on-drug visit (b starts at day 10)


def test_written_atomically(tmp_path):
    out = write_spaghetti(visits(), tmp_path / "s.svg")
    assert out.read_text().startswith("<?xml")
    assert [p.name for p in tmp_path.iterdir()] == ["s.svg"]
