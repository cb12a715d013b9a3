"""Forest and funnel plots render to PNG and SVG; writes are atomic."""

import pytest

from follicle.report.forest import ForestRow, forest_plot, rows_from_meta, save_figure, save_figures
from follicle.report.funnel import funnel_plot
from follicle.synthesis.effect_sizes import generic_effects
from follicle.synthesis.pooling import meta_analysis


def test_forest_of_hazard_ratios_across_outcomes(tmp_path):
    """The generic form the end-to-end report uses: label/estimate/CI rows on a log axis."""
    rows = [
        ForestRow("Outcomes", kind="header"),
        ForestRow("Depression", 0.92, 0.70, 1.21),
        ForestRow("Anxiety", 1.10, 0.85, 1.42),
        ForestRow("Suicidal ideation", 1.60, 0.60, 4.30),
    ]
    fig = forest_plot(rows, log_scale=True, xlabel="Hazard ratio", estimate_header="HR [95% CI]")
    assert fig.axes[0].get_xscale() == "log"
    path = save_figure(fig, tmp_path / "hr.svg")
    text = path.read_text()
    assert "Suicidal ideation" in text and "1.60 [0.60, 4.30]" in text


def test_forest_of_meta_analysis_has_weights_diamond_and_pi(tmp_path):
    res = meta_analysis(generic_effects([0.1, 0.5, 0.9, -0.2], [0.2, 0.1, 0.3, 0.25]), method="REML")
    assert res.tau2 > 0
    rows = rows_from_meta(res)
    assert rows[-1].kind == "summary" and rows[-1].pi_low is not None
    path = save_figure(forest_plot(rows), tmp_path / "f.svg")
    text = path.read_text()
    assert "Weight" in text and "PI [" in text


def test_funnel_png(tmp_path):
    fig = funnel_plot([0.1, 0.5, 0.9], [0.2, 0.1, 0.3], estimate=0.4, filled_yi=[0.0], filled_sei=[0.3])
    path = save_figure(fig, tmp_path / "u.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_failed_save_leaves_nothing(tmp_path):
    good = forest_plot([ForestRow("a", 1.0, 0.5, 2.0)], log_scale=True)
    bad = forest_plot([ForestRow("b", 1.0, 0.5, 2.0)], log_scale=True)
    with pytest.raises(ValueError, match=".png or .svg"):
        save_figures({tmp_path / "ok.png": good, tmp_path / "bad.pdf": bad})
    assert list(tmp_path.iterdir()) == []
