"""``follicle meta``: JSON keys, plots, specs, and bad data (a message naming the row; nothing written)."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from follicle.cli import app

REPO = Path(__file__).resolve().parents[2]
BINARY = "study,events_t,total_t,events_c,total_c\nA,4,123,11,139\nB,6,306,29,303\nC,3,231,11,220\nD,62,13598,248,12867\n"
KEYS = {"estimate", "se", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "tau2_ci_low", "tau2_ci_high", "i2",
        "i2_conventional", "h2", "q", "q_p", "k"}


def run(*args: str):
    return CliRunner().invoke(app, ["meta", *args])


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_json_keys_and_exp_for_ratio(tmp_path):
    res = run(str(write(tmp_path, BINARY)), "--measure", "RR", "--method", "REML", "--knha", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert KEYS <= set(out)
    assert out["k"] == 4 and out["knha"] is True
    assert out["exp"]["estimate"] == pytest.approx(2.718281828459045 ** out["estimate"])
    assert set(out["exp"]) == {"estimate", "ci_low", "ci_high", "pi_low", "pi_high"}


def test_no_exp_block_for_differences(tmp_path):
    res = run(str(write(tmp_path, BINARY)), "--measure", "RD", "--method", "DL", "--json")
    assert res.exit_code == 0, res.output
    assert "exp" not in json.loads(res.stdout)


@pytest.mark.parametrize("method", ["EE", "MH", "PETO", "DL", "REML", "PM", "ML", "SJ", "HE"])
def test_every_method_runs(tmp_path, method):
    res = run(str(write(tmp_path, BINARY)), "--measure", "OR", "--method", method, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["method"] == method


def test_continuous_and_generic(tmp_path):
    cont = "study,mean_t,sd_t,n_t,mean_c,sd_c,n_c\nA,-30,20,100,-5,18,50\nB,-35,25,80,-8,22,40\nC,-28,19,150,-4,21,75\n"
    res = run(str(write(tmp_path, cont)), "--measure", "SMD", "--method", "DL", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["estimate"] < 0
    gen = "study,estimate,se\nA,0.1,0.2\nB,0.3,0.1\nC,-0.2,0.3\n"
    res = run(str(write(tmp_path, gen, "g.csv")), "--measure", "GEN", "--method", "REML", "--json")
    assert res.exit_code == 0, res.output


def test_plots_png_and_svg(tmp_path):
    forest, funnel = tmp_path / "f.png", tmp_path / "sub" / "u.svg"
    res = run(str(write(tmp_path, BINARY)), "--forest", str(forest), "--funnel", str(funnel))
    assert res.exit_code == 0, res.output
    assert forest.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in funnel.read_bytes()[:400]
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()], "temporary files left behind"


BAD = [
    ("negative count", "study,events_t,total_t,events_c,total_c\nA,4,123,11,139\nB,-6,306,29,303\n", "row 2 (study 'B'): events_t must be >= 0"),
    ("events > total", "study,events_t,total_t,events_c,total_c\nA,4,123,11,139\nB,6,306,329,303\n", "row 2 (study 'B'): events_c = 329 exceeds total_c = 303"),
    ("non-numeric", "study,events_t,total_t,events_c,total_c\nA,4,123,11,139\nB,six,306,29,303\n", "row 2 (study 'B'): events_t must be a finite number; got 'six'"),
    ("duplicate", "study,events_t,total_t,events_c,total_c\nA,4,123,11,139\nA,6,306,29,303\n", "row 2 (study 'A'): duplicate study name (also row 1)"),
    ("no study", "study,events_t,total_t,events_c,total_c\n", "at least 1 study"),
    ("missing column", "study,events_t,total_t,events_c\nA,4,123,11\nB,6,306,29\n", "missing total_c"),
]


@pytest.mark.parametrize("case, text, message", BAD, ids=[b[0] for b in BAD])
def test_bad_binary_data_names_the_row_and_writes_nothing(tmp_path, case, text, message):
    forest = tmp_path / "forest.png"
    res = run(str(write(tmp_path, text)), "--measure", "OR", "--forest", str(forest), "--json")
    assert res.exit_code == 2
    assert message in " ".join(res.output.split())
    assert res.stdout.strip() == "" or "error" in res.output
    assert not forest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv"]


def test_sd_not_positive_names_the_row(tmp_path):
    cont = "study,mean_t,sd_t,n_t,mean_c,sd_c,n_c\nA,-30,20,100,-5,18,50\nB,-35,0,80,-8,22,40\n"
    res = run(str(write(tmp_path, cont)), "--measure", "MD", "--funnel", str(tmp_path / "u.png"))
    assert res.exit_code == 2
    assert "row 2 (study 'B'): sd_t must be > 0; got 0" in " ".join(res.output.split())
    assert not (tmp_path / "u.png").exists()


def test_all_problems_reported_at_once(tmp_path):
    text = "study,events_t,total_t,events_c,total_c\nA,4,123,x,139\nB,-1,306,29,303\nB,5,4,1,10\n"
    res = run(str(write(tmp_path, text)), "--measure", "OR")
    flat = " ".join(res.output.split())
    assert res.exit_code == 2
    for part in ("row 1 (study 'A'): events_c", "row 2 (study 'B'): events_t must be >= 0",
                 "row 3 (study 'B'): duplicate", "row 3 (study 'B'): events_t = 5 exceeds total_t = 4"):
        assert part in flat


def test_bad_options(tmp_path):
    data = str(write(tmp_path, BINARY))
    assert run(data, "--measure", "XX").exit_code == 2
    assert run(data, "--method", "FOO").exit_code == 2
    res = run(data, "--forest", str(tmp_path / "f.pdf"))
    assert res.exit_code == 2 and ".png or .svg" in res.output
    res = run(data, "--method", "MH", "--knha")
    assert res.exit_code == 2


def test_spec_runs_bundled_jaki_meta(tmp_path):
    forest = tmp_path / "jaki_forest.png"
    res = run("--spec", str(REPO / "studies" / "jaki_rct_meta.yaml"), "--json", "--forest", str(forest))
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["overall"]["knha"] is True and out["overall"]["k"] == 10
    assert set(out["subgroups"]["groups"]) == {"baricitinib", "ritlecitinib", "deuruxolitinib"}
    assert out["grade"]["profile"]["certainty"] in {"High", "Moderate", "Low", "Very low"}
    assert forest.stat().st_size > 10_000


def test_bad_spec_is_reported(tmp_path):
    spec = write(tmp_path, "name: x\ndata: bundled:jaki_rct_salt20\nmeasure: OR\nmethod: NOPE\n", "s.yaml")
    res = run("--spec", str(spec))
    assert res.exit_code == 2 and "method" in res.output


def test_double_zero_studies_kept_or_dropped_as_metafor(tmp_path):
    """escalc/rma.uni keep a double-zero study (0.5 added); rma.mh/rma.peto drop it (drop00=TRUE)."""
    data = str(write(tmp_path, BINARY + "E,0,50,0,50\n"))
    kept = json.loads(run(data, "--measure", "OR", "--method", "DL", "--json").stdout)
    assert kept["k"] == 5 and "dropped" not in kept
    dropped = json.loads(run(data, "--measure", "OR", "--method", "DL", "--drop00", "--json").stdout)
    assert dropped["k"] == 4 and dropped["dropped"] == ["E"]
    mh = json.loads(run(data, "--measure", "OR", "--method", "MH", "--json").stdout)
    assert mh["dropped"] == ["E"] and mh["q_df"] == 3
    allcc = json.loads(run(data, "--measure", "OR", "--method", "DL", "--to", "all", "--json").stdout)
    assert allcc["studies"][0]["yi"] != kept["studies"][0]["yi"]  # correction now added to every study


def test_spec_with_relative_csv_and_json_format(tmp_path):
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", BINARY + "E,20,200,30,210\n", "trials.csv")
    spec = {"name": "rel", "data": "sub/trials.csv", "measure": "RR", "method": "DL", "knha": True,
            "grade": {"outcome": "death", "baseline_risk": 0.1}}
    path = write(tmp_path, json.dumps(spec), "spec.json")
    res = run("--spec", str(path), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["overall"]["k"] == 5 and out["overall"]["method"] == "DL"
    assert out["grade"]["profile"]["absolute"]["control_per_1000"] == pytest.approx(100)
    assert len(out["spec_hash"]) == 16
    missing = write(tmp_path, json.dumps(spec | {"data": "nope.csv"}), "spec2.json")
    res = run("--spec", str(missing))
    assert res.exit_code == 2 and "nope.csv" in res.output


def test_zero_cell_without_correction_is_reported(tmp_path):
    data = str(write(tmp_path, BINARY + "E,0,50,3,50\n"))
    res = run(data, "--measure", "OR", "--to", "none")
    assert res.exit_code == 2
    assert "row 5 (study 'E'): effect size or variance not finite" in " ".join(res.output.split())
