"""The WIDER FACE protocol (veil.eval.widerface) and file formats (veil.io.wider_format).

Hand-made sets whose AP is known by hand, a loop-by-loop port of the official MATLAB code
as an oracle for the vectorised implementation, and one run of the real detector on real
dev-split images.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from veil.errors import CorruptMediaError, InputError
from veil.eval.widerface import (
    box_iou_xywh,
    evaluate,
    load_wider_dev,
    operating_point,
    read_difficulty,
    recall_at,
    voc_ap,
)
from veil.faces import Faces
from veil.io.wider_format import read_wider_gt, read_wider_predictions, write_wider_predictions
from wider_helpers import gt_image

ALL = (True, True, True)


def one_image(boxes, flags, invalid=None):
    gt = {"0--Parade/a.jpg": gt_image("0--Parade/a.jpg", boxes, invalid)}
    diff = {"0--Parade/a.jpg": np.asarray(flags, bool).reshape(-1, 3)}
    return gt, diff


FOUR = [[10, 10, 50, 50], [100, 10, 50, 50], [200, 10, 50, 50], [300, 10, 50, 50]]


# -- hand-computed APs ----------------------------------------------------------------
def test_perfect_predictions_give_ap_one():
    gt, diff = one_image(FOUR, [ALL] * 4)
    preds = {"0--Parade/a.jpg": (np.array(FOUR, float), np.array([0.9, 0.8, 0.7, 0.6]))}
    res = evaluate(gt, preds, diff)
    assert res["ap"] == pytest.approx({"easy": 1.0, "medium": 1.0, "hard": 1.0})
    assert res["faces"] == {"easy": 4, "medium": 4, "hard": 4}


def test_half_the_faces_with_perfect_precision_gives_ap_half():
    gt, diff = one_image(FOUR, [ALL] * 4)
    preds = {"0--Parade/a.jpg": (np.array(FOUR[:2], float), np.array([0.9, 0.8]))}
    res = evaluate(gt, preds, diff)
    assert res["ap"]["easy"] == pytest.approx(0.5)
    assert res["pr"]["easy"]["recall"].max() == pytest.approx(0.5)
    assert np.nanmin(res["pr"]["easy"]["precision"]) == pytest.approx(1.0)


def test_false_positive_ranked_first_halves_ap():
    gt, diff = one_image(FOUR[:1], [ALL])
    preds = {"0--Parade/a.jpg": (np.array([[500, 500, 40, 40], FOUR[0]], float), np.array([0.9, 0.5]))}
    assert evaluate(gt, preds, diff)["ap"]["easy"] == pytest.approx(0.5)


def test_ignored_face_matched_is_neither_hit_nor_false_positive():
    # face 0 is easy, face 1 only counts in hard; the best-scored prediction is on face 1
    gt, diff = one_image(FOUR[:2], [ALL, (False, False, True)])
    preds = {"0--Parade/a.jpg": (np.array([FOUR[1], FOUR[0]], float), np.array([0.9, 0.5]))}
    res = evaluate(gt, preds, diff)
    assert res["ap"]["easy"] == pytest.approx(1.0)  # a false positive first would give 0.5
    assert res["faces"]["easy"] == 1
    assert res["ap"]["hard"] == pytest.approx(1.0)


def test_invalid_face_is_ignored_even_if_listed_in_a_setting():
    gt, diff = one_image(FOUR[:2], [ALL, ALL], invalid=[0, 1])
    preds = {"0--Parade/a.jpg": (np.array([FOUR[1], FOUR[0]], float), np.array([0.9, 0.5]))}
    assert evaluate(gt, preds, diff)["ap"]["easy"] == pytest.approx(1.0)
    op = operating_point(gt, preds, 0.1)
    assert (op["tp"], op["fp"], op["faces"]) == (1, 0, 1)
    assert op["precision"] == 1.0


def test_duplicate_detection_counts_as_false_positive():
    gt, diff = one_image(FOUR[:1], [ALL])
    box = np.array(FOUR[0], float)
    preds = {"0--Parade/a.jpg": (np.stack([box, box + 1]), np.array([0.9, 0.8]))}
    op = operating_point(gt, preds, 0.5)
    assert (op["tp"], op["fp"], op["recall"], op["precision"]) == (1, 1, 1.0, 0.5)


def test_scores_are_min_max_normalised_over_the_whole_set():
    # raw scores 1e-4 apart would all fall into one of the 1,000 threshold bins; after
    # normalisation to [0, 1] the order TP, FP, TP is resolved: AP = .5 * 1 + .5 * 2/3
    gt, diff = one_image(FOUR[:2], [ALL, ALL])
    boxes = np.array([FOUR[0], [500, 500, 40, 40], FOUR[1]], float)
    preds = {"0--Parade/a.jpg": (boxes, np.array([0.5003, 0.5002, 0.5001]))}
    res = evaluate(gt, preds, diff)
    assert res["score_range"] == pytest.approx([0.5001, 0.5003])
    assert res["ap"]["easy"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    # any increasing affine map of the scores gives the same curve
    again = evaluate(gt, {"0--Parade/a.jpg": (boxes, np.array([0.5003, 0.5002, 0.5001]) * 7 + 3)}, diff)
    np.testing.assert_allclose(again["pr"]["easy"]["recall"], res["pr"]["easy"]["recall"])
    # predictions for images outside the evaluated set do not stretch the range
    extra = {**preds, "5--Car_Accident/other.jpg": (np.array([[0, 0, 9, 9]], float), np.array([0.0]))}
    assert evaluate(gt, extra, diff)["ap"]["easy"] == pytest.approx(res["ap"]["easy"])


def test_missing_predictions_and_keys_without_extension():
    gt, diff = one_image(FOUR, [ALL] * 4)
    gt["1--Handshaking/b.jpg"] = gt_image("1--Handshaking/b.jpg", FOUR[:1])
    diff["1--Handshaking/b.jpg"] = np.array([ALL])
    faces = Faces(xyxy=[[x, y, x + w, y + h] for x, y, w, h in FOUR], scores=[0.9, 0.8, 0.7, 0.6])
    res = evaluate(gt, {"0--Parade/a": faces}, diff)  # b has no predictions: its face is missed
    assert res["faces"]["easy"] == 5
    assert res["ap"]["easy"] == pytest.approx(0.8)
    assert recall_at(gt, {"0--Parade/a": faces}, 0.75) == pytest.approx(2 / 5)
    assert recall_at(gt, {"0--Parade/a": faces}, 0.75, diff, "easy") == pytest.approx(2 / 5)


def test_iou_uses_the_official_inclusive_pixel_convention():
    a = np.array([[0, 0, 9, 9]], float)  # 10 x 10 pixels inclusive
    b = np.array([[5, 0, 9, 9]], float)
    assert box_iou_xywh(a, b)[0, 0] == pytest.approx(50 / 150)
    assert box_iou_xywh(a, b, plus_one=False)[0, 0] == pytest.approx(36 / 126)
    assert box_iou_xywh(a, np.array([[20, 20, 5, 5]], float))[0, 0] == 0.0


def test_voc_ap_is_the_area_under_the_precision_envelope():
    assert voc_ap(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])) == pytest.approx(5 / 6)
    assert voc_ap(np.array([0.0, 1.0]), np.array([np.nan, 1.0])) == pytest.approx(1.0)


# -- the vectorised protocol against a literal port of the official loops -------------------
def _official(gt, preds, diff, n=1000):
    """evaluation.m / image_evaluation / image_pr_info / dataset_pr_info, loop by loop."""
    allsc = np.concatenate([s for _, s in preds.values()])
    lo, hi = allsc.min(), allsc.max()
    aps = []
    for si in range(3):
        curve, count = np.zeros((n, 2)), 0
        for path, g in gt.items():
            keep = np.nonzero(diff[path][:, si] & g.valid)[0]
            count += len(keep)
            if path not in preds or len(g) == 0:
                continue
            b, s = preds[path]
            o = np.argsort(-s, kind="stable")
            b, s = b[o], (s[o] - lo) / (hi - lo)
            recall_list, proposal, pred_recall = np.zeros(len(g)), np.ones(len(b)), np.zeros(len(b))
            for h in range(len(b)):
                ov = box_iou_xywh(b[h : h + 1], g.boxes)[0]
                idx = int(ov.argmax())
                if ov[idx] >= 0.5:
                    if idx not in keep:
                        recall_list[idx], proposal[h] = -1, -1
                    elif recall_list[idx] == 0:
                        recall_list[idx] = 1
                pred_recall[h] = (recall_list == 1).sum()
            for t in range(1, n + 1):
                r = np.nonzero(s >= 1 - t / n)[0]
                if len(r):
                    curve[t - 1] += [(proposal[: r[-1] + 1] == 1).sum(), pred_recall[r[-1]]]
        with np.errstate(all="ignore"):
            aps.append(voc_ap(curve[:, 1] / count, curve[:, 1] / curve[:, 0]))
    return aps


def test_matches_a_literal_port_of_the_official_code_on_random_sets():
    rng = np.random.default_rng(0)
    gt, diff, preds = {}, {}, {}
    for i in range(12):
        path = f"9--Event/img_{i}.jpg"
        n = int(rng.integers(0, 8))
        xy = rng.uniform(0, 400, (n, 2))
        wh = rng.uniform(5, 80, (n, 2))
        boxes = np.concatenate([xy, wh], 1).round()
        gt[path] = gt_image(path, boxes, invalid=rng.random(n) < 0.1)
        hard = rng.random(n) < 0.9
        medium = hard & (rng.random(n) < 0.7)
        diff[path] = np.stack([medium & (rng.random(n) < 0.6), medium, hard], 1)
        # jittered copies of gt boxes (some twice) plus random false positives
        take = boxes[rng.random(n) < 0.8]
        dup = take[rng.random(len(take)) < 0.3]
        fp = np.concatenate([rng.uniform(0, 400, (3, 2)), rng.uniform(5, 80, (3, 2))], 1)
        pb = np.concatenate([take, dup, fp]) + rng.normal(0, 3, (len(take) + len(dup) + 3, 4))
        preds[path] = (pb, rng.random(len(pb)))
    ours = evaluate(gt, preds, diff)["ap"]
    assert [ours[s] for s in ("easy", "medium", "hard")] == pytest.approx(_official(gt, preds, diff), abs=1e-12)


# -- file formats ---------------------------------------------------------------------
def test_predictions_round_trip(tmp_path):
    faces = Faces(xyxy=[[10.25, 20.5, 60.75, 90.0], [300, 40, 320, 64]], scores=[0.4123456, 0.987654])
    path = write_wider_predictions(tmp_path, "0--Parade/0_Parade_marchingband_1_20.jpg", faces)
    assert path == tmp_path / "0--Parade" / "0_Parade_marchingband_1_20.txt"
    lines = path.read_text().splitlines()
    assert lines[:2] == ["0_Parade_marchingband_1_20", "2"]
    assert lines[2] == "300.0 40.0 20.0 24.0 0.987654"  # best score first
    write_wider_predictions(tmp_path, "1--Handshaking/empty.jpg", Faces.empty())
    back = read_wider_predictions(tmp_path)
    assert set(back) == {"0--Parade/0_Parade_marchingband_1_20.jpg", "1--Handshaking/empty.jpg"}
    boxes, scores = back["0--Parade/0_Parade_marchingband_1_20.jpg"]
    np.testing.assert_allclose(boxes, [[300, 40, 20, 24], [10.25, 20.5, 50.5, 69.5]], atol=0.051)
    np.testing.assert_allclose(scores, [0.987654, 0.4123456], atol=1e-6)
    assert back["1--Handshaking/empty.jpg"][0].shape == (0, 4)
    assert not [f for f in tmp_path.rglob("*") if f.name.startswith(".")]


def test_gt_reader_handles_the_dummy_line_after_an_empty_image(tmp_path):
    f = tmp_path / "gt.txt"
    f.write_text(
        "0--Parade/a.jpg\n2\n1 2 3 4 0 0 0 0 0 0 \n5 6 7 8 2 0 1 1 0 1 \n"
        "0--Parade/empty.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \n"
        "1--Handshaking/b.jpg\n1\n9 9 9 9 0 0 0 0 0 0\n"
    )
    gt = read_wider_gt(f)
    assert list(gt) == ["0--Parade/a.jpg", "0--Parade/empty.jpg", "1--Handshaking/b.jpg"]
    assert [len(g) for g in gt.values()] == [2, 0, 1]
    a = gt["0--Parade/a.jpg"]
    assert a.boxes.tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert a.invalid.tolist() == [False, True]
    assert a.attribute("blur").tolist() == [0, 2] and a.attribute("pose").tolist() == [0, 1]


@pytest.mark.parametrize(
    "text, line",
    [
        ("0--Parade/a.jpg\n2\n1 2 3 4 0 0 0 0 0 0\n5 6 seven 8 0 0 0 0 0 0\n", 4),
        ("0--Parade/a.jpg\ntwo\n1 2 3 4 0 0 0 0 0 0\n", 2),
        ("0--Parade/a.jpg\n1\n1 2 3 4 0 0 0 0 0 0\n0--Parade/b.jpg\n3\n1 2 3 4 0 0 0 0 0 0\n", 7),
        ("0--Parade/a.jpg\n1\n1 2 3\n", 3),
    ],
)
def test_malformed_gt_names_file_and_line(tmp_path, text, line):
    f = tmp_path / "broken_gt.txt"
    f.write_text(text)
    with pytest.raises(CorruptMediaError, match=rf"broken_gt\.txt:{line}:") as info:
        read_wider_gt(f)
    assert isinstance(info.value, InputError)


# -- real data ------------------------------------------------------------------------
def test_dev_split_files_agree(wider_dev):
    gt, diff, images = load_wider_dev(wider_dev)
    assert len(gt) == 1076
    assert sum(int(g.valid.sum()) for g in gt.values()) == 13784  # as documented in the README
    assert all(not d[g.invalid].any() for g, d in ((gt[k], diff[k]) for k in gt))  # invalid never counts
    assert all((d[:, 0] <= d[:, 1]).all() and (d[:, 1] <= d[:, 2]).all() for d in diff.values())
    assert (images / next(iter(gt))).is_file()
    with pytest.raises(InputError, match="difficulty rows"):
        read_difficulty(wider_dev / "wider_dev_difficulty.csv", {"x/y.jpg": gt_image("x/y.jpg", FOUR)})


def test_real_detector_on_dev_images(wider_dev):
    import cv2

    from veil.config import DetectConfig
    from veil.detect import build_detector

    t0 = time.perf_counter()
    gt, diff, images = load_wider_dev(wider_dev)
    paths = list(gt)[:: len(gt) // 20][:20]  # spread over the events
    det = build_detector(DetectConfig(max_side=0, device="cpu"), batch=1)
    preds = {}
    for p in paths:
        img = cv2.cvtColor(cv2.imread(str(images / p)), cv2.COLOR_BGR2RGB)
        preds[p] = det.detect([img], 0.02)[0]
    sub_gt, sub_diff = {p: gt[p] for p in paths}, {p: diff[p] for p in paths}
    res = evaluate(sub_gt, preds, sub_diff)
    assert res["faces"]["easy"] >= 20
    assert res["ap"]["easy"] > 0.7, res["ap"]
    assert res["ap"]["easy"] >= res["ap"]["hard"]
    assert 0.7 < recall_at(sub_gt, preds, 0.2, sub_diff, "easy") <= 1.0
    assert time.perf_counter() - t0 < 60
