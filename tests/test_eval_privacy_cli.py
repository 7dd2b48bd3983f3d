"""``veil eval privacy``: the re-identification evaluation as a command with a report.

Bad input and the statistics need no data; the runs use ``$VEIL_DATA/reid/deepface``
(skipped when absent, except in CI) on a few pairs, one filter and one strength.
"""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from conftest import require
from veil.cli.main import app
from veil.config import RenderConfig
from veil.eval.privacy_report import clopper_pearson, rate_text

runner = CliRunner()

#: small same-person images (fast at native resolution)
SMALL = [("img20.jpg", "img21.jpg"), ("img16.jpg", "img17.jpg")]


def run(*args):
    return runner.invoke(app, ["eval", "privacy", *(str(a) for a in args)])


def one_line(res) -> str:
    lines = [line for line in res.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1, res.output
    return lines[0]


def write_csv(path, rows, header="file_x,file_y,Decision"):
    path.write_text("\r\n".join([header, *rows]) + "\r\n")
    return path


@pytest.fixture
def fake_images(tmp_path):
    folder = tmp_path / "img"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        (folder / name).write_bytes(b"not read before the checks")
    return folder


# -- no data needed ------------------------------------------------------------------------
def test_clopper_pearson_exact():
    lo, hi = clopper_pearson(0, 38)
    assert lo == 0 and hi == pytest.approx(1 - 0.025 ** (1 / 38), abs=1e-9)  # 9.25 %
    lo, hi = clopper_pearson(38, 38)
    assert hi == 1 and lo == pytest.approx(0.025 ** (1 / 38), abs=1e-9)
    lo, hi = clopper_pearson(16, 38)  # values of scipy.stats.beta.ppf
    assert lo == pytest.approx(0.26306, abs=1e-4) and hi == pytest.approx(0.59183, abs=1e-4)
    lo2, hi2 = clopper_pearson(22, 38)  # symmetric
    assert (lo2, hi2) == pytest.approx((1 - hi, 1 - lo), abs=1e-9)
    assert all(math.isnan(v) for v in clopper_pearson(0, 0))
    assert rate_text(0, 38) == "0.0 %, 95 % CI 0–9.3 %"


def test_malformed_csv_names_the_line(tmp_path, fake_images):
    bad = write_csv(tmp_path / "bad.csv", ["a.jpg,b.jpg,Yes", "a.jpg,b.jpg,maybe"])
    res = run("--pairs", bad, "--images", fake_images, "--out", tmp_path / "r")
    assert res.exit_code == 3
    line = one_line(res)
    assert "bad.csv:3" in line and "maybe" in line
    short = write_csv(tmp_path / "short.csv", ["a.jpg,b.jpg,Yes", "a.jpg,b.jpg"])
    res = run("--pairs", short, "--images", fake_images, "--out", tmp_path / "r")
    assert res.exit_code == 3 and "short.csv:3" in one_line(res)
    nocol = write_csv(tmp_path / "nocol.csv", ["a.jpg,b.jpg"], header="file_x,file_y")
    res = run("--pairs", nocol, "--images", fake_images, "--out", tmp_path / "r")
    assert res.exit_code == 3 and "nocol.csv:1" in one_line(res) and "Decision" in res.output
    assert not (tmp_path / "r").exists()


def test_missing_image_is_one_line_error(tmp_path, fake_images):
    csv = write_csv(tmp_path / "pairs.csv", ["a.jpg,b.jpg,Yes", "a.jpg,gone.jpg,Yes", "x.jpg,y.jpg,No"])
    res = run("--pairs", csv, "--images", fake_images, "--out", tmp_path / "r")
    assert res.exit_code == 3
    line = one_line(res)
    assert "gone.jpg" in line and "--allow-partial" in line and "x.jpg" not in line  # only pairs evaluated
    assert not (tmp_path / "r").exists()


def test_no_default_data_says_what_to_pass(tmp_path, monkeypatch):
    monkeypatch.setenv("VEIL_DATA", str(tmp_path / "nowhere"))
    res = run("--out", tmp_path / "r")
    assert res.exit_code == 3 and "--pairs" in one_line(res) and "--images" in res.output


def test_bad_filter_and_missing_dlib(tmp_path, fake_images, monkeypatch):
    csv = write_csv(tmp_path / "pairs.csv", ["a.jpg,b.jpg,Yes"])
    res = run("--pairs", csv, "--images", fake_images, "--filters", "blur,none", "--out", tmp_path / "r")
    assert res.exit_code == 2 and "'none'" in one_line(res)
    monkeypatch.setitem(__import__("sys").modules, "dlib", None)  # as if dlib were not installed
    res = run("--pairs", csv, "--images", fake_images, "--out", tmp_path / "r")
    assert res.exit_code == 5 and "pip install" in one_line(res) and "dlib" in res.output


# -- on reid/deepface ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def deepface(data_dir):
    pytest.importorskip("dlib")
    pytest.importorskip("face_recognition_models")
    folder = data_dir / "reid" / "deepface"
    require(folder / "master.csv", "reid/deepface")
    return folder


@pytest.fixture(scope="module")
def default_run(deepface, tmp_path_factory):
    """The command with its default data, on the first 4 same-person pairs, default blur only."""
    out = tmp_path_factory.mktemp("privacy") / "report"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VEIL_DATA", str(deepface.parents[1]))
        res = run("--limit", 4, "--filters", "blur", "--strengths", "1", "--out", out, "-q")
    assert res.exit_code == 0, res.output
    return res, out, json.loads((out / "privacy.json").read_text())


def test_report_is_consistent(default_run, deepface):
    res, out, rep = default_run
    data = rep["data"]
    assert sorted(p.name for p in out.iterdir()) == ["privacy.html", "privacy.json", "privacy.md", "privacy_rates.png"]
    assert data["pairs_csv"] == str(deepface / "master.csv") and data["limit"] == 4
    assert data["same_person_pairs"] == 4 and not data["partial"]
    n = data["evaluated"]
    assert n + len(data["skipped"]) == 4 and n >= 3
    rows = data["rows"]
    assert [(r["filter"], r["strength"]) for r in rows] == [("none (original)", "-"), ("blur", "1")]
    for r in rows:
        assert r["n"] == n == len(r["pairs"])
        assert r["matched"] == sum(p["matched"] for p in r["pairs"])
        assert r["rate"] == round(r["matched"] / n, 4)
        lo, hi = clopper_pearson(r["matched"], n)
        assert (r["ci_low"], r["ci_high"]) == (round(lo, 4), round(hi, 4))
        assert r["ci_low"] <= r["rate"] <= r["ci_high"]
    base, blur = rows
    assert base["matched"] == base["baseline_matched"] >= n - 1  # the attack works on the originals
    assert blur["default"] and blur["veil_filter"] == "blur"
    assert blur["matched"] == 0 and blur["matched_aligned"] == 0  # the default blur defeats it
    assert base["redetected"] == n and blur["redetected"] == 0  # ... and veil no longer finds the face
    assert blur["mean_distance"] > base["mean_distance"] + 0.2
    assert data["target"] == {"filters": ["blur"], "rate": 0.0, "met": True}
    assert rep["summary"].startswith(f"Default blur: 0 of {n} pairs re-identified (0.0 %, 95 % CI 0–")
    assert "blur 1" in res.output and f"0/{n}" in res.output  # the console table


def test_report_has_no_face_pixels(default_run):
    _, out, rep = default_run
    md = (out / "privacy.md").read_text()
    html = (out / "privacy.html").read_text()
    assert md.count("![") == 1 and "privacy_rates.png" in md  # the one figure: rates, not faces
    assert html.count("<img") == 1 and "data:image/png;base64," in html  # self-contained
    assert "Skipped pairs" in md and "Protocol" in md and "Clopper-Pearson" in md
    assert set(rep["data"]["rows"][1]["pairs"][0]) == {  # names and distances only
        "file_x", "file_y", "distance", "matched", "distance_aligned", "matched_aligned", "baseline_distance",
        "baseline_matched", "redetect_score", "redetected"}


def test_allow_partial_reports_skipped_pairs(deepface, tmp_path):
    csv = write_csv(tmp_path / "pairs.csv", [f"{x},{y},Yes" for x, y in SMALL] + ["img20.jpg,gone.jpg,Yes"])
    args = ("--pairs", csv, "--images", deepface, "--filters", "blur", "--strengths", "1", "-q")
    res = run(*args, "--out", tmp_path / "strict")
    assert res.exit_code == 3 and "gone.jpg" in one_line(res)
    res = run(*args, "--allow-partial", "--out", tmp_path / "r")
    assert res.exit_code == 0, res.output
    assert "partial data: 1 pair(s) skipped" in res.output
    data = json.loads((tmp_path / "r" / "privacy.json").read_text())["data"]
    assert data["partial"] and data["evaluated"] == 2 and data["same_person_pairs"] == 3
    assert data["skipped"] == [{"file_x": "img20.jpg", "file_y": "gone.jpg", "reason": "missing image gone.jpg"}]
    assert data["rows"][1]["matched"] == 0
    md = (tmp_path / "r" / "privacy.md").read_text()
    assert "PARTIAL DATA" in md and "gone.jpg" in md


def test_strength_sweep_reports_the_floor(deepface, tmp_path):
    out = tmp_path / "sweep"
    res = run("--pairs", deepface / "master.csv", "--limit", 2, "--filters", "pixelate", "--strengths", "0.1,0.6,1",
              "--out", out, "-q")
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "privacy.json").read_text())
    (floor,) = rep["data"]["floors"]
    assert floor["filter"] == "pixelate" and floor["enforced"] == RenderConfig(filter="pixelate").strength_floor
    assert floor["failing"] == 0.1  # a tenth of the default is re-identified even on 2 pairs
    assert "strength floor, pixelate" in res.output
    assert (out / "privacy_strengths.png").is_file() and "privacy_strengths.png" in (out / "privacy.md").read_text()
