"""The CLI, in-process, on real photos: outputs, reports, directory runs and bad input."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import box_slices, run
from veil.faces import Faces


@pytest.fixture
def photos(tmp_path, astronaut, grace_hopper):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(astronaut).save(src / "astronaut.png")
    Image.fromarray(grace_hopper).save(src / "sub" / "hopper.jpg", quality=95)
    (src / "notes.txt").write_text("not media")
    return src


def face_changed(before: np.ndarray, after: np.ndarray, box) -> float:
    sl = box_slices(box, before.shape)
    return float((np.abs(before[sl].astype(int) - after[sl]).sum(axis=2) > 12).mean())


def test_single_image_default_output_name(photos, astronaut):
    res = run("anonymize", photos / "astronaut.png", "-q")
    assert res.exit_code == 0, res.output
    out = photos / "astronaut_anonymized.png"
    after = np.asarray(Image.open(out).convert("RGB"))
    assert after.shape == astronaut.shape
    assert face_changed(astronaut, after, (190, 70, 260, 170)) > 0.6
    assert (after[400:, :100] == astronaut[400:, :100]).all()  # far from the face: untouched (lossless PNG)


@pytest.mark.parametrize("flt", ["blur", "pixelate", "solid"])
def test_each_filter_from_cli(photos, tmp_path, astronaut, flt):
    out = tmp_path / f"{flt}.png"
    res = run("anonymize", photos / "astronaut.png", "-o", out, "--filter", flt, "--color", "#ff00ff", "-q")
    assert res.exit_code == 0, res.output
    after = np.asarray(Image.open(out).convert("RGB"))
    assert face_changed(astronaut, after, (190, 70, 260, 170)) > 0.6
    if flt == "solid":
        assert (after[120, 225] == [255, 0, 255]).all()


def test_debug_filter_warns_and_keeps_faces(photos, tmp_path, astronaut):
    out = tmp_path / "dbg.png"
    res = run("anonymize", photos / "astronaut.png", "-o", out, "--filter", "debug", "-q")
    assert res.exit_code == 0 and "does not anonymize" in res.output
    after = np.asarray(Image.open(out).convert("RGB"))
    assert face_changed(astronaut, after, (200, 90, 250, 150)) < 0.2


def test_directory_mirrors_tree_and_reports(photos, tmp_path):
    out = tmp_path / "out"
    report = tmp_path / "report.json"
    res = run("anonymize", photos, "-o", out, "--report", report, "-q")
    assert res.exit_code == 0, res.output
    assert (out / "astronaut.png").is_file() and (out / "sub" / "hopper.jpg").is_file()
    assert not (out / "notes.txt").exists()
    rep = json.loads(report.read_text())
    m = rep["manifest"]
    assert m["model"]["name"] == "centerface" and len(m["model"]["sha256"]) == 64
    assert m["settings"]["render"]["filter"] == "blur"
    assert m["totals"]["ok"] == 2 and m["totals"]["anonymized"] >= 2
    for item in rep["items"]:
        assert len(item["input_sha256"]) == 64 and len(item["output_sha256"]) == 64
        face = item["frames"][0]["faces"][0]
        assert set(face) >= {"box", "score", "landmarks", "anonymized", "reason"}
        assert face["anonymized"] is True
    # the report holds geometry only: no long arrays of numbers that could be pixels or embeddings
    assert len(report.read_text()) < 20_000


def test_existing_outputs_skip_and_overwrite(photos, tmp_path):
    out = tmp_path / "out"
    assert run("anonymize", photos, "-o", out, "-q").exit_code == 0
    again = run("anonymize", photos, "-o", out, "-q")
    assert again.exit_code != 0 and "exists" in again.output
    assert run("anonymize", photos, "-o", out, "--skip-existing", "-q").exit_code == 0
    assert run("anonymize", photos, "-o", out, "--overwrite", "-q").exit_code == 0


def test_bad_file_in_directory_others_still_processed(photos, tmp_path):
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 50)
    out = tmp_path / "out"
    res = run("anonymize", photos, "-o", out)
    assert res.exit_code == 3
    assert "broken.jpg" in res.output
    assert (out / "astronaut.png").is_file() and (out / "sub" / "hopper.jpg").is_file()
    assert not (out / "broken.jpg").exists()
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or "tmp" in p.name]


@pytest.mark.parametrize(
    "name, content, code, words",
    [
        ("missing.jpg", None, 3, "no such file"),
        ("empty.jpg", b"", 3, "empty"),
        ("text.png", b"hello", 3, "text.png"),
        ("notes.txt", b"hello", 3, "not a supported"),
    ],
)
def test_bad_single_inputs(tmp_path, name, content, code, words):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    res = run("anonymize", path, "-o", tmp_path / "out.jpg")
    assert res.exit_code == code, res.output
    assert words in res.output.lower()
    assert len([line for line in res.output.strip().splitlines() if line.strip()]) == 1
    assert not (tmp_path / "out.jpg").exists()


def test_truncated_image_fails_closed(photos, tmp_path):
    data = (photos / "sub" / "hopper.jpg").read_bytes()
    bad = tmp_path / "trunc.jpg"
    bad.write_bytes(data[: len(data) // 2])
    res = run("anonymize", bad, "-o", tmp_path / "o.jpg")
    assert res.exit_code == 3 and not (tmp_path / "o.jpg").exists()


def test_unwritable_output(photos, tmp_path):
    res = run("anonymize", photos / "astronaut.png", "-o", tmp_path / "nodir" / "x.png")
    assert res.exit_code == 4 and "does not exist" in res.output


def test_invalid_flag_values(photos, tmp_path):
    res = run("anonymize", photos / "astronaut.png", "--threshold", "3")
    assert res.exit_code == 2 and "threshold" in res.output
    res = run("anonymize", photos / "astronaut.png", "--filter", "solid", "--color", "nope")
    assert res.exit_code == 2 and "colour" in res.output


def test_detection_pass_flags_reach_the_settings(photos, tmp_path):
    report = tmp_path / "r.json"
    res = run("anonymize", photos / "astronaut.png", "-o", tmp_path / "o.png", "--scales", "0.5,1.5", "--flip",
              "--no-low-light", "--report", report, "-q")
    assert res.exit_code == 0, res.output
    detect = json.loads(report.read_text())["manifest"]["settings"]["detect"]
    assert detect["scales"] == [0.5, 1.5] and detect["flip"] is True and detect["low_light"] is False
    assert detect["low_light_bright_end"] == 256.0  # default: the mean alone decides
    res = run("anonymize", photos / "astronaut.png", "-o", tmp_path / "o.png", "--low-light-bright-end", "100",
              "--report", report, "-q", "--overwrite")
    assert res.exit_code == 0, res.output
    assert json.loads(report.read_text())["manifest"]["settings"]["detect"]["low_light_bright_end"] == 100.0
    res = run("anonymize", photos / "astronaut.png", "-o", tmp_path / "y.png", "--low-light-bright-end", "300")
    assert res.exit_code == 2 and "--low-light-bright-end" in res.output and not (tmp_path / "y.png").exists()
    for bad, words in (("abc", "--scales"), ("9", "scales")):
        res = run("anonymize", photos / "astronaut.png", "-o", tmp_path / "x.png", "--scales", bad)
        assert res.exit_code == 2 and words in res.output
        assert not (tmp_path / "x.png").exists()


def test_detect_writes_wider_layout(tmp_path, astronaut, grace_hopper):
    src = tmp_path / "images" / "0--Parade"
    src.mkdir(parents=True)
    Image.fromarray(astronaut).save(src / "a_1.jpg")
    Image.fromarray(grace_hopper).save(src / "b_2.jpg")
    preds = tmp_path / "preds"
    res = run("detect", tmp_path / "images", "--wider-out", preds, "--min-score", "0.05", "-q")
    assert res.exit_code == 0, res.output
    lines = (preds / "0--Parade" / "a_1.txt").read_text().splitlines()
    assert lines[0] == "a_1" and int(lines[1]) == len(lines) - 2 >= 1
    x, y, w, h, s = map(float, lines[2].split())
    assert 150 < x < 220 and w > 50 and s > 0.8
    # the operating threshold keeps fewer (or equal) detections than the lowered floor
    res = run("detect", tmp_path / "images", "--wider-out", tmp_path / "p2", "-q")
    assert int((tmp_path / "p2" / "0--Parade" / "a_1.txt").read_text().splitlines()[1]) <= int(lines[1])


def test_api_frame_and_image(astronaut, tmp_path):
    import veil

    anon = veil.Anonymizer(filter="pixelate")
    res = anon.frame(astronaut)
    assert isinstance(res.faces, Faces) and len(res.faces) == 1 and res.faces.to_anonymize.all()
    assert res.frame.shape == astronaut.shape and not (res.frame == astronaut).all()
    Image.fromarray(astronaut).save(tmp_path / "a.png")
    item = anon.image(tmp_path / "a.png")
    assert item.status == "ok" and Path(item.output).name == "a_anonymized.png"
    with pytest.raises(veil.ConfigError):
        anon.frame(astronaut.astype(np.float32))
