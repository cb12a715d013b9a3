"""``follicle nma``: JSON contract, arm and contrast input, the bundled spec with report and figures, and bad
input (one message naming the problem, non-zero exit, nothing written)."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from follicle.cli import app
from nma_networks import senn2013

REPO = Path(__file__).resolve().parents[3]
ARMS = ("study,treatment,events,n\nS1,A,10,100\nS1,B,20,100\nS1,C,25,100\nS2,A,12,80\nS2,B,18,90\n"
        "S3,B,30,120\nS3,C,33,110\nS4,A,8,60\nS4,C,15,70\n")
EFFECT_KEYS = {"treatment", "comparator", "estimate", "se", "ci_low", "ci_high"}


def run(*args):
    return CliRunner().invoke(app, ["nma", *args])


def write(tmp_path: Path, text: str, name: str = "arms.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_arm_input_json_contract(tmp_path):
    res = run(str(write(tmp_path, ARMS)), "--measure", "OR", "--reference", "A", "--better", "higher", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["scale"] == "log" and out["reference"] == "A" and out["k"] == 4
    for model in ("common", "random"):
        effects = out[model]["effects"]
        assert {e["treatment"] for e in effects} == {"B", "C"} and all(e["comparator"] == "A" for e in effects)
        assert all(EFFECT_KEYS <= set(e) for e in effects)
        assert set(out[model]["p_scores"]) == {"A", "B", "C"}
        assert sum(out[model]["p_scores"].values()) == pytest.approx(1.5)
    assert {r["source"] for r in out["decomposition"]["q_decomp"]} == {"whole network", "within designs",
                                                                      "between designs"}


def test_contrast_input_senn2013(tmp_path):
    path = tmp_path / "senn.csv"
    senn2013().to_csv(path, index=False)
    res = run(str(path), "--measure", "MD", "--reference", "plac", "--better", "lower", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["scale"] == "identity" and out["heterogeneity"]["tau2"] == pytest.approx(0.1087, abs=5e-5)
    best = max(out["common"]["p_scores"], key=out["common"]["p_scores"].get)
    assert best == "rosi"
    text = run(str(path), "--measure", "MD", "--reference", "plac", "--better", "lower")
    assert text.exit_code == 0 and "Effects against plac" in text.stdout


def test_bundled_spec_with_report_and_figures(tmp_path, shared_dir, monkeypatch):
    monkeypatch.setenv("FOLLICLE_SHARED", str(shared_dir))
    report, graph, forest = tmp_path / "r.html", tmp_path / "net.png", tmp_path / "forest.svg"
    res = run("--spec", str(REPO / "studies" / "jaki_nma.yaml"), "--report", str(report), "--netgraph", str(graph),
              "--forest", str(forest), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["reference"] == "placebo" and out["k"] == 4 and len(out["treatments"]) == 9
    assert any("week 24: ALLEGRO-2b/3, THRIVE-AA1; week 36: BRAVE-AA1, BRAVE-AA2" in n for n in out["notes"])
    assert out["grade"]["comparisons"] and "do not replace" in out["grade"]["disclaimer"]
    html = report.read_text()
    for section in ("Network", "Effects against placebo", "Ranking", "League table", "Confidence in the results",
                    "data:image/png;base64"):
        assert section in html
    assert graph.read_bytes()[:4] == b"\x89PNG" and forest.read_text().lstrip().startswith("<?xml")
    assert not list(tmp_path.glob(".*tmp*"))


def test_disconnected_network_fails_cleanly_and_writes_nothing(tmp_path):
    data = write(tmp_path, "study,treatment,events,n\nS1,A,1,10\nS1,B,2,10\nS2,C,3,10\nS2,D,4,10\n")
    report = tmp_path / "r.html"
    res = run(str(data), "--measure", "OR", "--better", "higher", "--report", str(report))
    assert res.exit_code == 2
    assert "2 separate sub-networks" in res.output and "treatments A, B" in res.output
    assert "Traceback" not in res.output and not report.exists()


@pytest.mark.parametrize("args, message", [
    (["--measure", "HR", "--better", "higher"], "--measure must be one of"),
    (["--measure", "OR"], "--better must be 'higher' or 'lower'"),
    (["--measure", "OR", "--better", "higher", "--reference", "Z"], "reference treatment 'Z'"),
    (["--measure", "OR", "--better", "higher", "--report", "out.txt"], "--report must name a .html file"),
    (["--measure", "MD", "--better", "higher"], "missing column(s) mean, sd"),
])
def test_bad_options(tmp_path, args, message):
    res = run(str(write(tmp_path, ARMS)), *args)
    assert res.exit_code == 2 and message in res.output.replace("\n", " "), res.output


def test_missing_file_and_bad_rows(tmp_path):
    res = run(str(tmp_path / "nope.csv"), "--measure", "OR", "--better", "higher")
    assert res.exit_code == 2 and "file not found" in res.output
    bad = write(tmp_path, "study,treatment,events,n\nS1,A,11,10\nS1,B,2,10\n")
    res = run(str(bad), "--measure", "OR", "--better", "higher")
    assert res.exit_code == 2 and "row 2: events must be a whole number between 0 and n" in res.output


def test_spec_with_unknown_study_in_grade(tmp_path, shared_dir, monkeypatch):
    monkeypatch.setenv("FOLLICLE_SHARED", str(shared_dir))
    text = (REPO / "studies" / "jaki_nma.yaml").read_text().replace("THRIVE-AA1: low}", "THRIVE-AA1: low, XYZ: low}", 1)
    spec = write(tmp_path, text, "spec.yaml")
    res = run("--spec", str(spec))
    assert res.exit_code == 2 and "names studies not in the network: XYZ" in res.output
