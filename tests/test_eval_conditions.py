"""``veil eval conditions`` and ``veil eval model-card``: rendering, matching, reports, CLI.

The renders run on real photos (astronaut, Grace Hopper); the end-to-end runs use the real
CenterFace detector on FairFace crops (``$VEIL_DATA/fairface-dev``) and WIDER FACE images
(``$VEIL_DATA/widerface-dev``). Reports are written to ``tmp_path`` only.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from veil.cli.main import app
from veil.errors import ConfigError, CorruptMediaError, InputError, MediaNotFoundError
from veil.eval.conditions import (CONDITIONS, FACE_BOX, MATCH_IOU, Crop, expected_box, found_in, parse_condition,
                                  read_crops, render)
from veil.faces import Faces
from veil.models import MODELS

runner = CliRunner()


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line(res) -> str:
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    return lines[0]


# -- render ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CONDITIONS))
def test_every_condition_is_deterministic_uint8(name, astronaut):
    level = CONDITIONS[name][1]
    a = render(astronaut, "val/1.jpg", name, level)
    b = render(astronaut, "val/1.jpg", name, level)
    assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3
    np.testing.assert_array_equal(a, b)
    if name == "small":
        assert a.shape == (96, 96, 3)
    else:
        assert a.shape == astronaut.shape
        # every condition but 'clean' changes the pixels
        assert np.array_equal(a, astronaut) == (name == "clean")


def test_dark_is_darker_noisy_and_seeded_per_file(astronaut):
    a = render(astronaut, "val/1.jpg", "dark", 0.025)
    b = render(astronaut, "val/2.jpg", "dark", 0.025)
    assert a.mean() < 0.25 * astronaut.mean()
    assert not np.array_equal(a, b)  # noise drawn per file
    # the same file at another level is another image, and a lower gain is darker
    c = render(astronaut, "val/1.jpg", "dark", 0.005)
    assert c.mean() < a.mean()
    # noise: the two files differ pixel by pixel although the photo is the same, with zero mean
    diff = a.astype(np.float64) - b.astype(np.float64)
    assert diff.std() > 1.0 and abs(diff.mean()) < 0.5
    # in flat regions (here: a constant grey image) the noise is visible as spread
    flat = np.full((64, 64, 3), 180, np.uint8)
    f = render(flat, "flat.jpg", "dark", 0.025)
    assert f.std() > 1.0


def test_motion_direction_depends_on_the_file(grace_hopper):
    a = render(grace_hopper, "a.jpg", "motion", 0.12)
    b = render(grace_hopper, "b.jpg", "motion", 0.12)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("size", [20.0, 32.0])
def test_small_face_has_the_requested_width(size, astronaut):
    out = render(astronaut, "a.jpg", "small", size)
    assert out.shape == (96, 96, 3) and out.dtype == np.uint8
    box = expected_box(astronaut.shape[:2], "small", size, out.shape[:2])
    assert abs((box[2] - box[0]) - size) <= 1.0
    # the box sits on the pasted photo: the photo's extent, derived from the box, is what is not grey
    crop_w = (box[2] - box[0]) / (FACE_BOX[2] - FACE_BOX[0])
    crop_h = (box[3] - box[1]) / (FACE_BOX[3] - FACE_BOX[1])
    x0, y0 = box[0] - FACE_BOX[0] * crop_w, box[1] - FACE_BOX[1] * crop_h
    ys, xs = np.nonzero((out != 128).any(axis=2))
    assert abs(xs.min() - x0) <= 1.5 and abs(xs.max() + 1 - (x0 + crop_w)) <= 1.5
    assert abs(ys.min() - y0) <= 1.5 and abs(ys.max() + 1 - (y0 + crop_h)) <= 1.5


def test_expected_box_of_other_conditions_is_the_nominal_box():
    box = expected_box((200, 100), "dark", 0.025, (200, 100))
    np.testing.assert_allclose(box, [9, 0, 91, 186])


def test_occlusion_covers_only_the_lower_face(grace_hopper):
    h, w = grace_hopper.shape[:2]
    out = render(grace_hopper, "gh.jpg", "occlusion", 0.5)
    changed = (out != grace_hopper).any(axis=2)
    assert changed.any()
    ys, xs = np.nonzero(changed)
    x0, y0, x1, y1 = FACE_BOX
    top = (y1 - 0.5 * (y1 - y0)) * h
    assert ys.min() >= int(top) and ys.max() < round(y1 * h)
    assert xs.min() >= round(x0 * w) and xs.max() < round(x1 * w)
    # the covered block is one plain colour
    assert len(np.unique(out[changed], axis=0)) == 1
    # more cover, more rows
    more = render(grace_hopper, "gh.jpg", "occlusion", 0.8)
    assert (more != grace_hopper).any(axis=2).sum() > changed.sum()


def test_jpeg_changes_pixels_more_at_lower_quality(astronaut):
    q10 = render(astronaut, "a.jpg", "jpeg", 10)
    q90 = render(astronaut, "a.jpg", "jpeg", 90)
    assert q10.shape == astronaut.shape and q10.dtype == np.uint8
    err = lambda im: np.abs(im.astype(int) - astronaut.astype(int)).mean()  # noqa: E731
    assert err(q10) > err(q90) > 0


# -- parse_condition ---------------------------------------------------------------------
def test_parse_condition():
    assert parse_condition("dark") == ("dark", 0.025)
    assert parse_condition("dark:0.03") == ("dark", 0.03)
    assert parse_condition("small:24") == ("small", 24.0)
    assert parse_condition("clean") == ("clean", None)
    with pytest.raises(ConfigError, match="unknown condition 'fog'"):
        parse_condition("fog")
    with pytest.raises(ConfigError, match="takes no level"):
        parse_condition("clean:1")
    with pytest.raises(ConfigError, match="bad level 'abc'"):
        parse_condition("dark:abc")


# -- found_in ----------------------------------------------------------------------------
def faces(*boxes_scores) -> Faces:
    if not boxes_scores:
        return Faces.empty()
    return Faces(xyxy=[b for b, _ in boxes_scores], scores=[s for _, s in boxes_scores])


def test_found_in_iou_and_threshold():
    box = np.array([0.0, 0.0, 10.0, 10.0])
    assert found_in(faces(([0, 0, 10, 10], 0.5)), box, 0.2)
    assert not found_in(faces(([0, 0, 10, 10], 0.1)), box, 0.2)  # below the threshold
    assert found_in(faces(([0, 0, 10, 10], 0.2)), box, 0.2)  # at the threshold
    assert MATCH_IOU == 0.4
    assert found_in(faces(([0, 0, 4, 10], 0.9)), box, 0.2)  # IoU exactly 0.4
    assert not found_in(faces(([0, 0, 3.9, 10], 0.9)), box, 0.2)  # IoU 0.39
    assert not found_in(faces(([20, 20, 30, 30], 0.9)), box, 0.2)  # no overlap
    assert not found_in(faces(), box, 0.2)
    # only a confident detection counts: the overlapping one is below the threshold
    assert not found_in(faces(([0, 0, 10, 10], 0.1), ([20, 20, 30, 30], 0.9)), box, 0.2)
    assert found_in(faces(([20, 20, 30, 30], 0.9), ([1, 1, 11, 11], 0.3)), box, 0.2)
    # a box much larger than the face does not count either
    assert not found_in(faces(([0, 0, 20, 20], 0.9)), box, 0.2)  # IoU 0.25


# -- read_crops --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fairface(fairface_dev) -> Path:
    return fairface_dev


@pytest.fixture(scope="module")
def widerface(wider_dev) -> Path:
    return wider_dev


def test_read_crops_real_labels(fairface):
    with (fairface / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    crops, missing = read_crops(fairface)
    assert missing == [] and len(crops) == len(rows) > 100
    assert all(isinstance(c, Crop) and (fairface / c.file).is_file() for c in crops)
    assert set(crops[0].groups) == {"race", "gender", "age"}
    assert crops[0].file == rows[0]["file"] and crops[0].groups["race"] == rows[0]["race"]
    only_race, _ = read_crops(fairface, ["race"])
    assert set(only_race[0].groups) == {"race"}
    assert len({c.groups["race"] for c in only_race}) >= 5
    with pytest.raises(CorruptMediaError, match="missing group column"):
        read_crops(fairface, ["skin"])


def write_labels(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "labels.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_read_crops_corrupt_labels(tmp_path):
    path = write_labels(tmp_path / "a", "image,race\nx.jpg,White\n")
    with pytest.raises(CorruptMediaError) as exc:
        read_crops(path.parent)
    assert f"{path}:1:" in str(exc.value) and "'file'" in str(exc.value)
    path = write_labels(tmp_path / "b", "file,race\nx.jpg,White\ny.jpg,\n")
    (path.parent / "x.jpg").write_bytes(b"x")
    (path.parent / "y.jpg").write_bytes(b"y")
    with pytest.raises(CorruptMediaError) as exc:
        read_crops(path.parent)
    assert f"{path}:3:" in str(exc.value) and "empty field" in str(exc.value)
    path = write_labels(tmp_path / "c", "file,race\n,White\n")
    with pytest.raises(CorruptMediaError, match=":2:"):
        read_crops(path.parent)
    with pytest.raises(MediaNotFoundError):
        read_crops(tmp_path / "nowhere")


def test_read_crops_missing_files(tmp_path):
    path = write_labels(tmp_path, "file,race,gender\nval/1.jpg,White,Male\nval/2.jpg,Black,Female\nval/3.jpg,Indian,Male\n")
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "2.jpg").write_bytes(b"jpg")
    with pytest.raises(InputError, match="2 crops listed") as exc:
        read_crops(tmp_path)
    assert "val/1.jpg" in str(exc.value) and str(path) in str(exc.value)
    crops, missing = read_crops(tmp_path, allow_partial=True)
    assert [c.file for c in crops] == ["val/2.jpg"] and crops[0].groups == {"race": "Black", "gender": "Female"}
    assert missing == ["val/1.jpg", "val/3.jpg"]


# -- the CLI, end to end -----------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(fairface, tmp_path_factory) -> dict[str, Path]:
    """`veil eval conditions` on 40 crops, clean and dark, without and with the low-light pass."""
    out = {}
    for name, extra in [("plain", ["--no-low-light"]), ("low_light", ["--low-light"])]:
        dst = tmp_path_factory.mktemp(f"conditions_{name}")
        res = cli("eval", "conditions", fairface, "--limit", 40, "-c", "clean", "-c", "dark", "--bootstrap", 50,
                  "--out", dst, "-q", *extra)
        assert res.exit_code == 0, res.output
        out[name] = dst
    return out


def report(folder: Path) -> dict:
    return json.loads((folder / "report.json").read_text(encoding="utf-8"))


def test_conditions_cli_report(runs):
    dst = runs["plain"]
    for ext in ("json", "md", "html"):
        assert (dst / f"report.{ext}").is_file()
    rep = report(dst)
    data = rep["data"]
    conds = data["conditions"]
    assert list(conds) == ["clean", "dark:0.025"]
    assert data["group"] == "race" and 35 <= data["crops"] <= 45 and data["missing"] == []
    assert data["settings"]["low_light"] is False and data["threshold"] == 0.2
    assert data["levels"]["dark"]["level"] == 0.025
    for c in conds.values():
        groups = c["groups"]
        assert sum(g["faces"] for g in groups) == data["crops"]
        for g in groups:
            assert g["recall"] == pytest.approx(g["found"] / g["faces"])
            assert g["ci_low"] <= g["recall"] <= g["ci_high"]
        assert c["recall"] == pytest.approx(sum(g["found"] for g in groups) / data["crops"])
    assert conds["clean"]["recall"] >= conds["dark:0.025"]["recall"]
    assert conds["clean"]["recall"] >= 0.9  # clean FairFace crops are easy
    md = (dst / "report.md").read_text(encoding="utf-8")
    assert "dark:0.025" in md and "clean" in md
    assert (dst / "figures" / "conditions_recall.png").is_file()
    html = (dst / "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in html


def test_low_light_pass_does_not_lower_dark_recall(runs):
    plain, ll = report(runs["plain"])["data"], report(runs["low_light"])["data"]
    assert ll["settings"]["low_light"] is True
    assert ll["crops"] == plain["crops"]
    # same crops, same pixels: the low-light pass only adds detections
    assert ll["conditions"]["dark:0.025"]["recall"] >= plain["conditions"]["dark:0.025"]["recall"]
    assert ll["conditions"]["clean"]["recall"] == plain["conditions"]["clean"]["recall"]
    for g_plain, g_ll in zip(plain["conditions"]["dark:0.025"]["groups"], ll["conditions"]["dark:0.025"]["groups"]):
        assert g_plain["group"] == g_ll["group"] and g_ll["found"] >= g_plain["found"]


def test_conditions_cli_single_group(tmp_path, fairface):
    """One group only: no spread to compute; the command still reports and exits 0."""
    crops, _ = read_crops(fairface, ["race"])
    picked = [c for c in crops if c.groups["race"] == "White"][:3]
    data = tmp_path / "one"
    (data / "val").mkdir(parents=True)
    for c in picked:
        (data / c.file).write_bytes((fairface / c.file).read_bytes())
    write_labels(data, "file,race\n" + "".join(f"{c.file},White\n" for c in picked))
    out = tmp_path / "r"
    res = cli("eval", "conditions", data, "-c", "clean", "--bootstrap", 10, "--out", out)
    assert res.exit_code == 0, res.output
    assert "clean: recall" in res.output and "spread" not in res.output.split("report:")[0]
    cond = report(out)["data"]["conditions"]["clean"]
    assert cond["disparity"] is None and [g["group"] for g in cond["groups"]] == ["White"]
    res = cli("eval", "model-card", "--conditions", out / "report.json", "--out", tmp_path / "card.md")
    assert res.exit_code == 0, res.output
    assert "| clean |" in (tmp_path / "card.md").read_text(encoding="utf-8")


def test_conditions_cli_errors(tmp_path, fairface):
    res = cli("eval", "conditions", fairface, "-c", "fog", "--out", tmp_path / "r", "-q")
    assert res.exit_code == 2 and "unknown condition 'fog'" in one_line(res)
    res = cli("eval", "conditions", tmp_path, "--out", tmp_path / "r", "-q")
    assert res.exit_code == 3 and "labels.csv" in one_line(res)
    assert not (tmp_path / "r").exists()


# -- write_document -----------------------------------------------------------------------
def test_write_document_three_formats(tmp_path):
    import cv2

    from veil.report.document import Document, Figure, Table, write_document

    (tmp_path / "figures").mkdir()
    cv2.imwrite(str(tmp_path / "figures" / "f.png"), np.zeros((4, 4, 3), np.uint8))
    doc = Document(title="T <1>", summary="two\n\nparagraphs", data={"x": np.float32(0.5), "n": float("nan"),
                                                                    "arr": np.arange(3), "p": tmp_path},
                   meta={"settings": "s"})
    doc.add("Sec", "text", [Table(["a", "b|c"], [[0.12345, None], ["x|y", float("nan")]])],
            [Figure("figures/f.png", "cap & co")])
    paths = write_document(doc, tmp_path, "rep")
    assert set(paths) == {"json", "md", "html"} and all(p.parent == tmp_path for p in paths.values())
    rep = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert rep["data"] == {"x": 0.5, "n": None, "arr": [0, 1, 2], "p": str(tmp_path)}
    assert rep["meta"]["settings"] == "s" and rep["meta"]["veil_version"]
    assert rep["sections"][0]["tables"][0]["columns"] == ["a", "b|c"]
    md = paths["md"].read_text(encoding="utf-8")
    assert md.startswith("# T <1>\n") and "| 0.123 | – |" in md and "x\\|y" in md and "![cap & co](figures/f.png)" in md
    page = paths["html"].read_text(encoding="utf-8")
    assert "<h1>T &lt;1&gt;</h1>" in page and "data:image/png;base64," in page and "cap &amp; co" in page
    assert "<p>two</p><p>paragraphs</p>" in page
    assert not list(tmp_path.glob("*.tmp*"))


# -- model card ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wider_report(widerface, tmp_path_factory) -> Path:
    dst = tmp_path_factory.mktemp("wider")
    res = cli("eval", "widerface", widerface, "--limit", 8, "--bootstrap", 20, "--examples", 0, "-q", "--out", dst)
    assert res.exit_code == 0, res.output
    return dst / "report.json"


def test_model_card(wider_report, runs, tmp_path):
    cond_report = runs["plain"] / "report.json"
    out = tmp_path / "card.md"
    res = cli("eval", "model-card", "--wider", wider_report, "--conditions", cond_report, "--out", out)
    assert res.exit_code == 0, res.output
    card = out.read_text(encoding="utf-8")
    assert MODELS["centerface"].sha256 in card
    ap = json.loads(wider_report.read_text())["data"]["ap"]
    for subset in ("easy", "medium", "hard"):
        assert f"{ap[subset]['ap']:.3f}" in card
    row = next(ln for ln in card.splitlines() if ln.startswith("| balanced |"))
    assert all(f"{ap[s]['ap']:.3f}" in row for s in ("easy", "medium", "hard"))
    for key in ("clean", "dark:0.025"):
        assert f"| {key} |" in card
    cond = json.loads(cond_report.read_text())["data"]["conditions"]
    assert f"| dark:0.025 | {100 * cond['dark:0.025']['recall']:.1f} |" in card
    # a conditions-only card works too
    res = cli("eval", "model-card", "--conditions", cond_report, "--out", tmp_path / "c.md")
    assert res.exit_code == 0, res.output
    only = (tmp_path / "c.md").read_text(encoding="utf-8")
    assert "## Detection accuracy" not in only and "## Robustness to capture conditions" in only
    assert "## Detection accuracy (WIDER FACE)" in card


def test_model_card_rejects_non_reports(tmp_path, runs):
    not_report = tmp_path / "other.json"
    not_report.write_text('{"a": 1}', encoding="utf-8")
    not_json = tmp_path / "broken.json"
    not_json.write_text("{not json", encoding="utf-8")
    out = tmp_path / "card.md"
    for flag, bad in [("--wider", not_report), ("--conditions", not_report), ("--wider", not_json),
                      ("--conditions", tmp_path / "absent.json")]:
        res = cli("eval", "model-card", flag, bad, "--out", out)
        assert res.exit_code != 0
        assert bad.name in one_line(res)
    # a conditions report is not a widerface report
    res = cli("eval", "model-card", "--wider", runs["plain"] / "report.json", "--out", out)
    assert res.exit_code != 0 and "not a 'veil eval widerface' report" in one_line(res)
    assert not out.exists()
