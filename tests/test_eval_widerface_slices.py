"""``veil eval widerface``: the protocol's per-image parts, recall by slice with bootstrap
intervals, the official ``.mat`` difficulty lists, set loading, threshold calibration and
the command end to end.

Synthetic predictions are drawn from the real dev-split gt (``$VEIL_DATA/widerface-dev``)
with a fixed seed; the end-to-end run uses the real detector on a few real images. Nothing
is written into the data folder.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from veil.cli.main import app
from veil.errors import CorruptMediaError, InputError, MediaNotFoundError
from veil.eval.slices import bootstrap_recall, disparity, read_face_labels
from veil.eval.wider_run import WiderSet, calibrate_threshold, load_set
from veil.eval.widerface import (
    ProtocolParts,
    evaluate,
    face_hits,
    find_wider_set,
    operating_point,
    read_difficulty,
    read_difficulty_mat,
    thresholds_of,
)
from veil.io.wider_format import GtImage, read_wider_gt
from wider_helpers import gt_image

runner = CliRunner()
SETTINGS = ("easy", "medium", "hard")


# -- helpers and fixtures ----------------------------------------------------------------
def write_gt(path: Path, gt: dict[str, GtImage]) -> Path:
    lines = []
    for name, g in gt.items():
        lines += [name, str(len(g))]
        lines += [" ".join(f"{v:g}" for v in [*box, *attr]) for box, attr in zip(g.boxes, g.attributes)]
        if len(g) == 0:
            lines.append("0 0 0 0 0 0 0 0 0 0")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_difficulty(path: Path, table: dict[str, np.ndarray]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "face_index", *SETTINGS])
        for image, flags in table.items():
            for k, row in enumerate(np.asarray(flags, bool).reshape(-1, 3)):
                w.writerow([image, k, *(int(v) for v in row)])
    return path


@pytest.fixture(scope="module")
def dev(wider_dev) -> Path:
    return wider_dev


@pytest.fixture(scope="module")
def dev_gt(dev) -> dict[str, GtImage]:
    return read_wider_gt(dev / "wider_dev_bbx_gt.txt")


@pytest.fixture(scope="module")
def dev_diff(dev, dev_gt) -> dict[str, np.ndarray]:
    return read_difficulty(dev / "wider_dev_difficulty.csv", dev_gt)


@pytest.fixture(scope="module")
def demo_rows(dev) -> list[dict]:
    with (dev / "wider_dev_demographics.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def noisy_predictions(gt: dict[str, GtImage], seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Detector-like predictions drawn from the gt: most faces found with jitter, some false positives."""
    rng = np.random.default_rng(seed)
    preds = {}
    for path, g in gt.items():
        boxes, scores = [], []
        for box in g.boxes:
            if rng.random() < 0.75:
                x, y, w, h = box
                boxes.append([x + rng.normal(0, 0.1 * w + 0.5), y + rng.normal(0, 0.1 * h + 0.5), w, h])
                scores.append(rng.uniform(0.05, 0.95))
        for _ in range(rng.integers(0, 3)):
            boxes.append([rng.uniform(0, 900), rng.uniform(0, 900), rng.uniform(8, 60), rng.uniform(8, 60)])
            scores.append(rng.uniform(0.05, 0.95))
        preds[path] = (np.array(boxes, np.float64).reshape(-1, 4), np.array(scores, np.float64))
    return preds


@pytest.fixture(scope="module")
def synth(dev_gt, dev_diff):
    """60 real gt images spread over the events, synthetic predictions; the first image holds
    the global min and max score, so dropping any other image keeps the score normalisation."""
    paths = list(dev_gt)[:: len(dev_gt) // 60][:60]
    gt = {p: dev_gt[p] for p in paths}
    diff = {p: dev_diff[p] for p in paths}
    preds = noisy_predictions(gt)
    b, s = preds[paths[0]]
    far = np.array([[5000, 5000, 10, 10], [6000, 6000, 10, 10]], np.float64)
    preds[paths[0]] = (np.vstack([b, far]), np.concatenate([s, [0.0, 1.0]]))
    return gt, diff, preds


# -- 1. ProtocolParts and image weights ------------------------------------------------------
def test_protocol_parts_unit_weights_equal_evaluate(synth):
    gt, diff, preds = synth
    res = evaluate(gt, preds, diff)
    parts = ProtocolParts(gt, preds, diff)
    thr = thresholds_of()
    assert len(thr) == 1000 and thr[0] == pytest.approx(0.999) and thr[-1] == 0.0
    for s in SETTINGS:
        assert 0.05 < res["ap"][s] < 0.99  # a real curve, not a degenerate one
        assert parts.ap(s, thr, np.ones(len(gt))) == res["ap"][s]
        assert parts.ap(s, thr) == res["ap"][s]
        assert parts.ap(s, thr, np.full(len(gt), 2.0)) == pytest.approx(res["ap"][s], abs=1e-12)
        p2, r2 = parts.curve(s, thr, np.full(len(gt), 2.0))
        np.testing.assert_allclose(r2, res["pr"][s]["recall"], atol=1e-12)
        assert int(parts.faces[s].sum()) == res["faces"][s]


def test_zero_weight_equals_evaluating_without_the_image(synth):
    gt, diff, preds = synth
    paths = list(gt)
    # the image with most valid faces (so that dropping it moves the AP), not the first one
    drop = max(paths[1:], key=lambda p: int(gt[p].valid.sum()))
    assert preds[drop][1].min() > 0.0 and preds[drop][1].max() < 1.0
    sub = {p: gt[p] for p in paths if p != drop}
    ref = evaluate(sub, preds, {p: diff[p] for p in sub})
    full = evaluate(gt, preds, diff)
    parts = ProtocolParts(gt, preds, diff)
    w = np.ones(len(paths))
    w[paths.index(drop)] = 0.0
    thr = thresholds_of()
    for s in SETTINGS:
        assert parts.ap(s, thr, w) == pytest.approx(ref["ap"][s], abs=1e-12)
    assert any(abs(full["ap"][s] - ref["ap"][s]) > 1e-4 for s in SETTINGS)


def test_weight_two_equals_a_duplicated_image(synth):
    gt, diff, preds = synth
    paths = list(gt)
    dup = paths[7]
    twin = dup.replace(".jpg", "_twin.jpg")
    gt2 = {**gt, twin: GtImage(twin, gt[dup].boxes, gt[dup].attributes)}
    ref = evaluate(gt2, {**preds, twin: preds[dup]}, {**diff, twin: diff[dup]})
    w = np.ones(len(paths))
    w[paths.index(dup)] = 2.0
    parts = ProtocolParts(gt, preds, diff)
    for s in SETTINGS:
        assert parts.ap(s, thresholds_of(), w) == pytest.approx(ref["ap"][s], abs=1e-12)


# -- 2. bootstrap_recall and disparity ------------------------------------------------------
def obj(*labels):
    return np.array(labels, object)


# image a: A A B / b: A B / c: B C C None / d: A C (C not counted)
HITS = {"a": np.array([1, 0, 1], bool), "b": np.array([1, 1], bool),
        "c": np.array([0, 1, 0, 1], bool), "d": np.array([1, 1], bool)}
GROUPS = [obj("A", "A", "B"), obj("A", "B"), obj("B", "C", "C", None), obj("A", "C")]
COUNTS = [np.ones(3, bool), np.ones(2, bool), np.ones(4, bool), np.array([True, False])]
EXPECTED = {"A": (4, 3), "B": (3, 2), "C": (2, 1)}  # faces, found


def test_bootstrap_recall_point_estimates_and_intervals():
    rows, boot = bootstrap_recall(HITS, GROUPS, COUNTS, n_boot=300, seed=1)
    assert [r.group for r in rows] == ["A", "B", "C"]
    assert boot.shape == (300, 3)
    for r in rows:
        faces, found = EXPECTED[r.group]
        assert (r.faces, r.found) == (faces, found)
        assert r.recall == pytest.approx(found / faces)
        assert r.ci_low <= r.recall <= r.ci_high
        if r.group in ("A", "B"):  # on several images that disagree: a real interval
            assert r.ci_low < r.ci_high
    again, boot2 = bootstrap_recall(HITS, GROUPS, COUNTS, n_boot=300, seed=1)
    np.testing.assert_array_equal(boot, boot2)
    # without the counts mask, d's C face counts (found): C becomes 2 of 3
    rows_all, _ = bootstrap_recall(HITS, GROUPS, None, n_boot=0)
    assert {r.group: (r.faces, r.found) for r in rows_all}["C"] == (3, 2)


def test_bootstrap_recall_order_and_no_resamples():
    rows, boot = bootstrap_recall(HITS, GROUPS, COUNTS, order=["C", "Z", "A", "B"], n_boot=0)
    assert [r.group for r in rows] == ["C", "A", "B"]  # unknown Z dropped
    assert boot.shape == (0, 3)
    assert all(np.isnan(r.ci_low) and np.isnan(r.ci_high) for r in rows)
    assert [r.recall for r in rows] == pytest.approx([0.5, 0.75, 2 / 3])
    d = disparity(rows, boot)
    assert d.spread == pytest.approx(25.0)
    assert all(np.isnan(v) for v in (*d.spread_ci, *d.ratio_ci))


def test_group_only_on_uncounted_faces_is_not_reported():
    groups = [obj("A", "A", "B"), obj("A", "B"), obj("B", "C", "C", None), obj("A", "D")]
    rows, boot = bootstrap_recall(HITS, groups, COUNTS, n_boot=50)
    assert [r.group for r in rows] == ["A", "B", "C"]
    assert boot.shape == (50, 3)
    d = disparity(rows, boot)
    assert np.isfinite(d.spread) and d.worst == "C"


def test_identical_images_give_a_zero_width_interval():
    # every image: one E face found, one missed; F varies between images
    hits = {f"i{k}": np.array([1, 0, k % 2], bool) for k in range(6)}
    groups = [obj("E", "E", "F") for _ in range(6)]
    rows, boot = bootstrap_recall(hits, groups, n_boot=200)
    e, f = rows
    assert (e.group, e.recall, e.ci_low, e.ci_high) == ("E", 0.5, 0.5, 0.5)
    assert f.recall == 0.5 and f.ci_low < f.ci_high
    np.testing.assert_array_equal(boot[:, 0], 0.5)


def test_disparity_spread_ratio_and_names():
    rows, boot = bootstrap_recall(HITS, GROUPS, COUNTS, n_boot=400, seed=3)
    d = disparity(rows, boot)
    rec = {r.group: r.recall for r in rows}
    assert d.spread == pytest.approx(100 * (rec["A"] - rec["C"]))
    assert d.ratio == pytest.approx(rec["C"] / rec["A"])
    assert (d.worst, d.best) == ("C", "A")
    # intervals from the same resamples
    b_spread = 100 * (np.nanmax(boot, axis=1) - np.nanmin(boot, axis=1))
    assert list(d.spread_ci) == pytest.approx(list(np.nanpercentile(b_spread, [2.5, 97.5])))
    assert 0 <= d.ratio_ci[0] <= d.ratio_ci[1] <= 1
    as_json = d.as_dict()
    assert as_json["worst"] == "C" and as_json["spread_points"] == d.spread and as_json["min_max_ratio"] == d.ratio


# -- 3. face_hits ---------------------------------------------------------------------------
FOUR = [[10, 10, 50, 50], [100, 10, 50, 50], [200, 10, 50, 50], [300, 10, 50, 50]]


def test_face_hits_perfect_below_threshold_and_shifted():
    gt = {"0--Parade/a.jpg": gt_image("0--Parade/a.jpg", FOUR, invalid=[0, 0, 0, 1]),
          "0--Parade/b.jpg": gt_image("0--Parade/b.jpg", FOUR[:2])}
    perfect = {p: (g.boxes.copy(), np.ones(len(g))) for p, g in gt.items()}
    hits = face_hits(gt, perfect, 0.5)
    assert list(hits) == list(gt)
    assert all(h.all() for h in hits.values())  # invalid faces too
    low = {p: (g.boxes.copy(), np.full(len(g), 0.3)) for p, g in gt.items()}
    assert not any(h.any() for h in face_hits(gt, low, 0.5).values())
    assert all(h.all() for h in face_hits(gt, low, 0.3).values())  # score >= threshold
    # a shift of 30 px (IoU 0.26) misses, 5 px (IoU 0.82) hits; keys without .jpg work too
    shifted = {"0--Parade/b": (np.array([[40, 10, 50, 50], [105, 10, 50, 50]], float), np.array([0.9, 0.9]))}
    hits = face_hits(gt, shifted, 0.5)
    assert hits["0--Parade/b.jpg"].tolist() == [False, True]
    assert hits["0--Parade/a.jpg"].tolist() == [False] * 4  # no predictions


# -- 4. read_face_labels ------------------------------------------------------------------
LABEL_COLS = {"perceived_gender", "perceived_age", "perceived_skin"}


def test_face_labels_join_the_real_csv(dev, dev_gt, demo_rows):
    labels = read_face_labels(dev / "wider_dev_demographics.csv", dev_gt)
    assert set(labels) == {r["image"] for r in demo_rows}
    for row in (demo_rows[0], demo_rows[len(demo_rows) // 2], demo_rows[-1]):
        per = labels[row["image"]]
        assert set(per) == LABEL_COLS
        k = int(row["face_index"])
        for c in LABEL_COLS:
            assert len(per[c]) == len(dev_gt[row["image"]])
            assert per[c][k] == (None if row[c] == "Not Sure" else row[c])
        np.testing.assert_allclose(dev_gt[row["image"]].boxes[k], [float(row[c]) for c in "xywh"])
    listed = {(r["image"], int(r["face_index"])) for r in demo_rows}
    image = demo_rows[0]["image"]
    unlisted = [k for k in range(len(dev_gt[image])) if (image, k) not in listed]
    assert unlisted and all(labels[image]["perceived_skin"][k] is None for k in unlisted)
    unsure = next(r for r in demo_rows if r["perceived_skin"] == "Not Sure")
    assert labels[unsure["image"]]["perceived_skin"][int(unsure["face_index"])] is None
    only = read_face_labels(dev / "wider_dev_demographics.csv", dev_gt, columns=["perceived_skin"])
    assert set(only[image]) == {"perceived_skin"}


def corrupt_copy(dev: Path, tmp_path: Path, line: int, **changes) -> Path:
    """The demographics CSV with row ``line`` (1-based file line, header = 1) changed."""
    src = (dev / "wider_dev_demographics.csv").read_text(encoding="utf-8").splitlines()
    header = src[0].split(",")
    row = dict(zip(header, next(csv.reader([src[line - 1]]))))
    row.update({k: str(v) for k, v in changes.items()})
    src[line - 1] = ",".join(row[c] for c in header)
    out = tmp_path / "labels_copy.csv"
    out.write_text("\n".join(src) + "\n", encoding="utf-8")
    return out


@pytest.mark.parametrize("what", ["box", "image", "index_high", "index_negative", "index_text"])
def test_face_labels_mismatch_names_file_and_line(dev, dev_gt, demo_rows, tmp_path, what):
    line = 100
    row = demo_rows[line - 2]
    changes = {
        "box": {"w": float(row["w"]) + 5},
        "image": {"image": "0--Parade/not_in_gt.jpg"},
        "index_high": {"face_index": len(dev_gt[row["image"]])},
        "index_negative": {"face_index": -1},
        "index_text": {"face_index": "three"},
    }[what]
    bad = corrupt_copy(dev, tmp_path, line, **changes)
    with pytest.raises(CorruptMediaError) as info:
        read_face_labels(bad, dev_gt)
    assert f"{bad}:{line}:" in str(info.value)
    assert isinstance(info.value, InputError)
    # the unchanged rows are fine: the same file without the change reads
    good = corrupt_copy(dev, tmp_path, line)
    assert read_face_labels(good, dev_gt)[row["image"]]


def test_face_labels_missing_file(dev_gt, tmp_path):
    with pytest.raises(MediaNotFoundError):
        read_face_labels(tmp_path / "nope.csv", dev_gt)


# -- 5. read_difficulty_mat and find_wider_set ---------------------------------------------
def cell(items) -> np.ndarray:
    out = np.empty((len(items), 1), object)
    for i, v in enumerate(items):
        out[i, 0] = v
    return out


def write_mats(folder: Path, table: dict[str, np.ndarray], extra: dict[str, list[int]] | None = None,
               override: dict[tuple[str, str], list[int]] | None = None) -> Path:
    """Official-layout ``wider_{easy,medium,hard}_val.mat`` from ``{event/name.jpg: (n, 3) bool}``."""
    from scipy.io import savemat

    folder.mkdir(parents=True, exist_ok=True)
    events: dict[str, list[str]] = {}
    for image in [*table, *(extra or {})]:
        ev, name = image.split("/")
        events.setdefault(ev, []).append(name)
    for col, setting in enumerate(SETTINGS):
        files, lists = [], []
        for ev, names in events.items():
            files.append(cell([n[: -len(".jpg")] for n in names]))
            per = []
            for n in names:
                image = f"{ev}/{n}"
                if override and (setting, image) in override:
                    idx = override[(setting, image)]
                elif image in table:
                    idx = (np.nonzero(table[image][:, col])[0] + 1).tolist()
                else:
                    idx = extra[image]  # type: ignore[index]
                per.append(np.array(idx, np.float64).reshape(-1, 1))
            lists.append(cell(per))
        savemat(str(folder / f"wider_{setting}_val.mat"),
                {"event_list": cell(list(events)), "file_list": cell(files), "gt_list": cell(lists)})
    return folder


def pick_three(dev_gt, dev_diff) -> list[str]:
    paths = list(dev_gt)
    other = next(p for p in paths if p.split("/")[0] != paths[0].split("/")[0])
    # one image with faces outside the easy setting, so the columns differ
    mixed = next(p for p in paths if dev_diff[p].any() and not dev_diff[p][:, 0].all())
    return list(dict.fromkeys([paths[0], mixed, other]))


def test_difficulty_mat_matches_the_csv(dev_gt, dev_diff, tmp_path):
    chosen = pick_three(dev_gt, dev_diff)
    table = {p: dev_diff[p] for p in chosen}
    folder = write_mats(tmp_path / "ground_truth", table, extra={"0--Parade/0_Parade_not_in_gt_0_1.jpg": [1, 2]})
    gt = {p: dev_gt[p] for p in chosen}
    got = read_difficulty_mat(folder, gt)
    assert list(got) == chosen
    for p in chosen:
        assert got[p].dtype == bool and got[p].shape == (len(gt[p]), 3)
        np.testing.assert_array_equal(got[p], dev_diff[p])
    assert any(not (got[p][:, 0] == got[p][:, 2]).all() for p in chosen)
    # an image the lists do not mention has no face in any setting
    absent = next(p for p in dev_gt if p not in gt)
    got2 = read_difficulty_mat(folder, {**gt, absent: dev_gt[absent]})
    assert not got2[absent].any() and got2[absent].shape == (len(dev_gt[absent]), 3)


def test_difficulty_mat_index_beyond_the_faces(dev_gt, dev_diff, tmp_path):
    chosen = pick_three(dev_gt, dev_diff)
    bad_image = chosen[1]
    n = len(dev_gt[bad_image])
    folder = write_mats(tmp_path / "gt", {p: dev_diff[p] for p in chosen}, override={("hard", bad_image): [1, n + 1]})
    with pytest.raises(CorruptMediaError) as info:
        read_difficulty_mat(folder, {p: dev_gt[p] for p in chosen})
    msg = str(info.value)
    assert "wider_hard_val.mat" in msg and bad_image.removesuffix(".jpg") in msg and str(n + 1) in msg
    (folder / "wider_medium_val.mat").unlink()
    with pytest.raises(MediaNotFoundError, match="wider_medium_val.mat"):
        read_difficulty_mat(folder, {p: dev_gt[p] for p in chosen})


def test_find_wider_set_dev_folder(dev):
    found = find_wider_set(dev)
    assert found == {"gt": dev / "wider_dev_bbx_gt.txt", "images": dev / "images",
                     "difficulty": dev / "wider_dev_difficulty.csv", "difficulty_mat": None,
                     "labels": dev / "wider_dev_demographics.csv"}
    with pytest.raises(MediaNotFoundError):
        find_wider_set(dev / "no_such_folder")


def test_official_layout_found_and_loaded(dev, dev_gt, dev_diff, tmp_path):
    chosen = pick_three(dev_gt, dev_diff)
    root = tmp_path / "WIDER"
    write_gt(root / "wider_face_split" / "wider_face_val_bbx_gt.txt", {p: dev_gt[p] for p in chosen})
    write_gt(root / "wider_face_split" / "wider_face_train_bbx_gt.txt", {chosen[0]: dev_gt[chosen[0]]})
    for p in chosen:
        (root / "WIDER_val" / "images" / p).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dev / "images" / p, root / "WIDER_val" / "images" / p)
    (root / "WIDER_train" / "images").mkdir(parents=True)
    write_mats(root / "eval_tools" / "ground_truth", {p: dev_diff[p] for p in chosen})
    found = find_wider_set(root)
    assert found == {"gt": root / "wider_face_split" / "wider_face_val_bbx_gt.txt",
                     "images": root / "WIDER_val" / "images", "difficulty": None,
                     "difficulty_mat": root / "eval_tools" / "ground_truth", "labels": None}
    wset = load_set(root)
    assert list(wset.gt) == chosen and not wset.partial and wset.labels is None
    for p in chosen:
        np.testing.assert_array_equal(wset.difficulty[p], dev_diff[p])


# -- 6. load_set and missing images ------------------------------------------------------------
def test_load_set_refuses_missing_images_unless_partial(dev, dev_gt, dev_diff, tmp_path):
    real = list(dev_gt)[:2]
    absent = "0--Parade/0_Parade_absent_0_0.jpg"
    gt = {p: dev_gt[p] for p in real}
    gt[absent] = gt_image(absent, [[10, 10, 40, 40]])
    gt_file = write_gt(tmp_path / "sub_bbx_gt.txt", {real[0]: gt[real[0]], absent: gt[absent], real[1]: gt[real[1]]})
    diff_file = write_difficulty(tmp_path / "sub_difficulty.csv",
                                 {real[0]: dev_diff[real[0]], absent: np.ones((1, 3), bool), real[1]: dev_diff[real[1]]})
    with pytest.raises(InputError) as info:
        load_set(gt=gt_file, images=dev / "images", difficulty=diff_file)
    msg = str(info.value)
    assert "1 of 3 images" in msg and absent in msg and "--allow-partial" in msg
    wset = load_set(gt=gt_file, images=dev / "images", difficulty=diff_file, allow_partial=True)
    assert wset.partial is True and wset.missing == [absent]
    assert list(wset.gt) == real and list(wset.difficulty) == real
    assert wset.images == dev / "images" and wset.labels is None
    with pytest.raises(InputError, match="--difficulty"):
        load_set(gt=gt_file, images=dev / "images")


# -- 7. calibrate_threshold ---------------------------------------------------------------------
def test_calibrate_threshold_reaches_the_target_and_no_higher_score_does():
    rng = np.random.default_rng(5)
    gt, preds = {}, {}
    for i in range(4):
        path = f"0--Parade/img_{i}.jpg"
        boxes = np.array([[60 * k, 10, 40, 40] for k in range(5)], np.float64)
        gt[path] = gt_image(path, boxes, invalid=[0, 0, 0, 0, int(i == 0)])
        keep = boxes[:4] if i else boxes  # the fifth face of images 1-3 is never found
        fps = np.array([[600, 400, 30, 30]], np.float64)
        preds[path] = (np.vstack([keep, fps]), rng.uniform(0.01, 0.99, len(keep) + 1))
    wset = WiderSet(gt, {p: np.ones((len(g), 3), bool) for p, g in gt.items()}, Path("."))
    scores = np.unique(np.concatenate([s for _, s in preds.values()]))
    for target in (0.25, 0.5, 0.8):
        cal = calibrate_threshold(wset, preds, target)
        assert cal["reachable"] is True
        thr = cal["threshold"]
        op = operating_point(gt, preds, thr)
        assert op["recall"] >= target and cal["recall"] == op["recall"] and cal["precision"] == op["precision"]
        assert cal["fp_per_image"] == pytest.approx(op["fp"] / 4)
        higher = scores[scores > thr]
        assert len(higher) and operating_point(gt, preds, float(higher.min()))["recall"] < target
        # the oracle: the highest score whose recall reaches the target
        assert thr == max(s for s in scores if operating_point(gt, preds, float(s))["recall"] >= target)
    best = operating_point(gt, preds, 0.0)["recall"]
    assert best == pytest.approx(16 / 19)
    cal = calibrate_threshold(wset, preds, 0.9)
    assert cal == {"target_recall": 0.9, "threshold": None, "reachable": False}


# -- 8. the command end to end ----------------------------------------------------------------
@pytest.fixture(scope="module")
def cli_run(dev, tmp_path_factory):
    out = tmp_path_factory.mktemp("wider") / "report"
    res = runner.invoke(app, ["eval", "widerface", str(dev), "--limit", "12", "--bootstrap", "50",
                              "--out", str(out), "--calibrate", "0.5", "-q"])
    return res, out


def test_cli_report(cli_run):
    res, out = cli_run
    assert res.exit_code == 0, res.output
    for name in ("report.json", "report.md", "report.html"):
        assert (out / name).is_file()
    assert str(out / "report.html") in res.output
    data = json.loads((out / "report.json").read_text())["data"]
    assert data["images"] == 12 and data["partial"] is False and data["missing_images"] == []
    for s in SETTINGS:
        a = data["ap"][s]
        assert 0.0 <= a["ap"] <= 1.0 and 0.0 <= a["ci_low"] <= a["ci_high"] <= 1.0 and a["faces"] > 0
    assert data["bootstrap"]["recall"] == 50 and data["bootstrap"]["ap"] == 10
    slices = data["slices"]
    assert {"size", "perceived_skin"} <= set(slices)
    for fam in slices.values():
        for g in fam["groups"]:
            assert 0 < g["faces"] and 0 <= g["found"] <= g["faces"]
            assert g["recall"] == pytest.approx(g["found"] / g["faces"])
            assert g["ci_low"] <= g["ci_high"]
        d = fam["disparity"]
        assert np.isfinite(d["spread_points"]) and d["worst"] in {g["group"] for g in fam["groups"]}
    op = data["operating_point"]
    size = slices["size"]["groups"]
    assert sum(g["faces"] for g in size) == op["faces_valid"]
    assert op["recall_valid"] == pytest.approx(sum(g["found"] for g in size) / sum(g["faces"] for g in size))
    cal = data["calibration"]
    assert cal["reachable"] and cal["recall"] >= 0.5 and cal["threshold"] is not None
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in html
    assert (out / "figures" / "pr_curves.png").is_file()
    assert "perceived skin" in (out / "report.md").read_text(encoding="utf-8").lower()


def test_cli_labels_box_mismatch_is_one_line(dev, tmp_path):
    line = 50
    bad = corrupt_copy(dev, tmp_path, line, x=-40)
    out = tmp_path / "report"
    res = runner.invoke(app, ["eval", "widerface", str(dev), "--labels", str(bad), "--limit", "2", "--out", str(out), "-q"])
    assert res.exit_code == CorruptMediaError.exit_code == 3
    msg = res.output.strip()
    assert len(msg.splitlines()) == 1 and msg.startswith("veil: error:") and f"{bad}:{line}:" in msg
    assert "does not match" in msg
    assert not out.exists()
