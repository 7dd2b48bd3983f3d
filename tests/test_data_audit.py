"""``veil data audit``: counts and box shape per group, near-duplicates, train/val overlap, bad input.

Real data: a 30-image subset of the WIDER FACE dev split (``$VEIL_DATA/widerface-dev``), copied
to ``tmp_path`` with a byte-identical copy and a resized, re-encoded copy of one image added.
Synthetic COCO sets are drawn with OpenCV. Nothing is written into the data folder.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from veil.cli.main import app
from veil.errors import ConfigError, CorruptMediaError, InputError, MediaNotFoundError
from veil.eval import audit as audit_mod
from veil.eval.audit import UNLABELLED, audit, dhash, hamming, load_coco, load_wider, near_duplicate_pairs
from veil.eval.audit_report import write_audit_report
from veil.io.wider_format import read_wider_gt

runner = CliRunner()
N_SUBSET = 30


def cli(*args):
    return runner.invoke(app, ["data", "audit", *[str(a) for a in args]])


# -- fixtures --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dev(wider_dev) -> Path:
    return wider_dev


def write_gt(path: Path, entries) -> Path:
    """``entries``: [(image path, GtImage)] -> a WIDER gt file."""
    lines = []
    for name, g in entries:
        lines += [name, str(len(g))]
        lines += [" ".join(f"{v:g}" for v in [*box, *attr]) for box, attr in zip(g.boxes, g.attributes)]
        if len(g) == 0:
            lines.append("0 0 0 0 0 0 0 0 0 0")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def wider(tmp_path, dev):
    """A 30-image training subset + two copies of image 2: byte-identical, and resized/re-encoded."""
    gt = read_wider_gt(dev / "wider_dev_bbx_gt.txt")
    names = list(gt)[:N_SUBSET]
    img = tmp_path / "images"
    for n in names:
        (img / n).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dev / "images" / n, img / n)
    src = names[2]
    (img / "copies").mkdir()
    shutil.copyfile(img / src, img / "copies" / "identical.jpg")
    im = cv2.imread(str(img / src))
    small = cv2.resize(im, None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(img / "copies" / "reencoded.jpg"), small, [cv2.IMWRITE_JPEG_QUALITY, 60])
    entries = [(n, gt[n]) for n in names] + [("copies/identical.jpg", gt[src])]
    g_small = type(gt[src])(path="copies/reencoded.jpg", boxes=gt[src].boxes * 0.7, attributes=gt[src].attributes)
    entries.append(("copies/reencoded.jpg", g_small))
    gt_file = write_gt(tmp_path / "train_gt.txt", entries)
    # labels: the dev demographics rows of the subset (x, y, w, h repeated, as in the real file)
    with (dev / "wider_dev_demographics.csv").open(newline="") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames
        rows = [r for r in reader if r["image"] in set(names)]
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as fh:
        w = csv.DictWriter(fh, cols)
        w.writeheader()
        w.writerows(rows)
    return {"gt": gt_file, "images": img, "labels": labels, "names": names, "src": src, "rows": rows,
            "faces": sum(len(g) for _, g in entries), "all_gt": gt}


def noise_image(path: Path, seed: int, size=(240, 320)) -> Path:
    """A JPEG of smooth random blobs: distinct images get unrelated dHashes."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    img = cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return path


@pytest.fixture
def coco(tmp_path):
    """10 images x 9 faces: 30 'head' boxes (h/w 1.6) and 60 'face' boxes (h/w 1.2), skin labels."""
    img_dir = tmp_path / "coco_images"
    images, anns = [], []
    for i in range(10):
        noise_image(img_dir / f"img_{i:02d}.jpg", seed=i)
        images.append({"id": 100 + i, "file_name": f"img_{i:02d}.jpg", "width": 320, "height": 240})
        for k in range(9):
            head = k < 3
            w = 20.0 + k
            h = w * (1.6 if head else 1.2)
            anns.append({"id": len(anns) + 1, "image_id": 100 + i, "category_id": 1, "bbox": [10.0 + 30 * k, 20.0, w, h],
                         "iscrowd": 0, "area": w * h,
                         "attributes": {"convention": "head" if head else "face", "skin": ["I", "V", "VI"][k % 3]}})
    doc = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "face"}]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(doc, indent=1))
    return {"json": path, "images": img_dir, "doc": doc}


def rewrite(path: Path, doc) -> Path:
    path.write_text(json.dumps(doc, indent=1))
    return path


# -- WIDER, real data ------------------------------------------------------------------
def test_wider_counts_and_groups(wider):
    split = load_wider(wider["gt"], wider["images"], wider["labels"])
    r = audit(split)
    c = r["train"]["counts"]
    assert c["images"] == N_SUBSET + 2 and c["faces"] == wider["faces"] and not r["partial"]
    assert set(c["groups"]) == {"perceived_skin", "perceived_gender", "perceived_age"}
    skin = c["groups"]["perceived_skin"]
    labelled = len(wider["rows"])
    assert sum(v["faces"] for k, v in skin.items() if k != UNLABELLED) == labelled
    assert skin[UNLABELLED]["faces"] == wider["faces"] - labelled
    for value in {r_["perceived_skin"] for r_ in wider["rows"]}:
        assert skin[value]["faces"] == sum(r_["perceived_skin"] == value for r_ in wider["rows"])
    # box statistics: overall median aspect of WIDER faces is about 1.2-1.35; every group has a flag verdict
    ov = r["train"]["boxes"]["overall"]
    assert 1.1 < ov["aspect"]["median"] < 1.45 and ov["size_px"]["p10"] <= ov["size_px"]["median"] <= ov["size_px"]["p90"]
    for vals in r["train"]["boxes"]["groups"].values():
        for st in vals.values():
            assert st["flag"] in (True, False, None)
            if st["faces"] < 30:
                assert st["flag"] is None


def test_wider_near_duplicates(wider):
    r = audit(load_wider(wider["gt"], wider["images"]))
    nd = r["train"]["near_duplicates"]
    pairs = {frozenset((p["a"], p["b"])): p for p in nd["pairs"]}
    same = pairs[frozenset((wider["src"], "copies/identical.jpg"))]
    assert same["distance"] == 0 and same["identical"]
    resized = pairs[frozenset((wider["src"], "copies/reencoded.jpg"))]
    assert resized["distance"] <= 4 and not resized["identical"]
    assert nd["clusters"] >= 1 and nd["redundant_images"] >= 2
    assert nd["identical_files"]["redundant_files"] == 1
    assert any(set(c) >= {wider["src"], "copies/identical.jpg", "copies/reencoded.jpg"} for c in nd["clusters_listed"])
    # with 0 bits allowed the re-encoded copy is (almost surely) no longer a duplicate, the identical one still is
    r0 = audit(load_wider(wider["gt"], wider["images"]), dup_distance=0)
    assert any(p["identical"] for p in r0["train"]["near_duplicates"]["pairs"])


def test_train_val_overlap(wider, dev, tmp_path):
    gt = wider["all_gt"]
    val_names = list(gt)[N_SUBSET:N_SUBSET + 8]
    vdir = tmp_path / "val_images"
    for n in val_names:
        (vdir / n).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dev / "images" / n, vdir / n)
    # a training image under another name in val, and a different image under a training image's name
    leak = wider["names"][5]
    (vdir / "leaks").mkdir()
    shutil.copyfile(wider["images"] / leak, vdir / "leaks" / "renamed.jpg")
    clash = wider["names"][7].rsplit("/", 1)[-1]
    shutil.copyfile(vdir / val_names[0], vdir / "leaks" / clash)
    entries = [(n, gt[n]) for n in val_names] + [("leaks/renamed.jpg", gt[leak]), (f"leaks/{clash}", gt[val_names[0]])]
    vgt = write_gt(tmp_path / "val_gt.txt", entries)
    r = audit(load_wider(wider["gt"], wider["images"]), load_wider(vgt, vdir, name="val"))
    o = r["overlap"]
    assert o["identical_files"]["count"] == 1
    assert o["identical_files"]["examples"][0] == {"train": leak, "val": "leaks/renamed.jpg"}
    assert any(p["train"] == leak and p["val"] == "leaks/renamed.jpg" and p["distance"] == 0
               for p in o["near_duplicates"]["pairs"])
    assert o["same_file_name"]["count"] == 1 and o["same_file_name"]["examples"][0]["val"] == f"leaks/{clash}"
    assert r["val"]["counts"]["images"] == len(entries)


def test_labels_box_mismatch_names_file_and_line(wider):
    lines = wider["labels"].read_text().splitlines()
    header = lines[0].split(",")
    row = lines[3].split(",")
    row[header.index("x")] = str(int(row[header.index("x")]) + 5)
    lines[3] = ",".join(row)
    wider["labels"].write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=rf"{wider['labels'].name}:4: box .* does not match the annotation box"):
        load_wider(wider["gt"], wider["images"], wider["labels"])


def test_labels_unknown_image_and_bad_index(wider):
    with wider["labels"].open("a") as fh:
        fh.write("0--Parade/not_there.jpg,0,1,1,1,1,0,0,0,0,0,0,Male,Adult,I\n")
    n = len(wider["labels"].read_text().splitlines())
    with pytest.raises(InputError, match=rf"labels.csv:{n}: image '0--Parade/not_there.jpg' is not in the annotations"):
        load_wider(wider["gt"], wider["images"], wider["labels"])
    lines = wider["labels"].read_text().splitlines()[:-1]
    first = lines[1].split(",")
    first[1] = "999"
    lines[1] = ",".join(first)
    wider["labels"].write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"labels.csv:2: face_index 999 out of range"):
        load_wider(wider["gt"], wider["images"], wider["labels"])


def test_missing_image_refused_unless_partial(wider, tmp_path):
    gone = wider["names"][4]
    (wider["images"] / gone).unlink()
    with pytest.raises(MediaNotFoundError, match=rf"1 of {N_SUBSET + 2} image\(s\) .* missing .*{gone}.*--allow-partial"):
        audit(load_wider(wider["gt"], wider["images"]))
    r = audit(load_wider(wider["gt"], wider["images"]), allow_partial=True)
    assert r["partial"] and r["train"]["missing_images"] == [gone]
    assert r["train"]["counts"]["images"] == N_SUBSET + 1
    n_gone = len(wider["all_gt"][gone])
    assert r["train"]["counts"]["faces"] == wider["faces"] - n_gone
    paths = write_audit_report(r, tmp_path / "rep")
    md = paths["md"].read_text()
    assert "PARTIAL DATA" in md and gone in md
    assert json.loads(paths["json"].read_text())["data"]["partial"] is True


def test_unreadable_image_refused(wider):
    bad = wider["names"][1]
    (wider["images"] / bad).write_bytes(b"\xff\xd8 this is not a jpeg")
    with pytest.raises(CorruptMediaError, match=rf"cannot be read: .*{bad}"):
        audit(load_wider(wider["gt"], wider["images"]))
    r = audit(load_wider(wider["gt"], wider["images"]), allow_partial=True)
    assert r["partial"] and r["train"]["unreadable_images"][0]["image"] == bad


# -- COCO, synthetic -------------------------------------------------------------------
def test_coco_groups_from_attributes_and_convention_flag(coco, tmp_path):
    r = audit(load_coco(coco["json"], coco["images"]))
    c = r["train"]["counts"]
    assert c["images"] == 10 and c["faces"] == 90
    assert c["groups"]["convention"]["head"]["faces"] == 30 and c["groups"]["convention"]["face"]["faces"] == 60
    assert c["groups"]["skin"]["V"]["faces"] == 30 and c["groups"]["skin"][UNLABELLED]["faces"] == 0
    boxes = r["train"]["boxes"]
    assert boxes["overall"]["aspect"]["median"] == pytest.approx(1.2)
    head = boxes["groups"]["convention"]["head"]
    assert head["aspect"]["median"] == pytest.approx(1.6) and head["flag"] is True
    assert head["aspect_vs_overall"] == pytest.approx(1.6 / 1.2 - 1)
    assert boxes["groups"]["convention"]["face"]["flag"] is False
    assert r["train"]["near_duplicates"]["pairs_count"] == 0
    # report: the rule is stated and the group is flagged
    paths = write_audit_report(r, tmp_path / "rep")
    md = paths["md"].read_text()
    assert "more than 10 %" in md and "CHECK" in md and "convention=head" in md
    html = paths["html"].read_text()
    assert html.count("data:image/png;base64,") == 4  # 2 group columns x (summary + histogram)
    assert all((tmp_path / "rep" / f).is_file() for f in ("audit.json", "audit.md", "audit.html"))


def test_summary_names_groups_too_small_to_judge(coco, tmp_path):
    """A group under min_group_faces gets no flag; the summary must say so rather than report
    that no group differs (24 bald faces boxed to the crown: docs/analysis.md, question 4)."""
    r = audit(load_coco(coco["json"], coco["images"]), min_group_faces=40)
    assert r["train"]["boxes"]["groups"]["convention"]["head"]["flag"] is None
    summary = write_audit_report(r, tmp_path / "rep")["md"].read_text().split("## ")[0]
    assert "no judged group's median aspect ratio differs" in summary
    assert "Not judged (fewer than 40 faces): convention=head (30 faces, +33.3 %)" in summary


def test_coco_labels_csv_and_mismatch(coco, tmp_path):
    csv_path = tmp_path / "coco_labels.csv"
    anns = coco["doc"]["annotations"]
    rows = ["image,face_index,x,y,w,h,age"]
    for k in range(9):  # image 0's annotations, in file order
        x, y, w, h = anns[k]["bbox"]
        rows.append(f"img_00.jpg,{k},{x},{y},{w},{h},{'old' if k == 0 else 'young'}")
    csv_path.write_text("\n".join(rows) + "\n")
    split = load_coco(coco["json"], coco["images"], labels=csv_path)
    assert set(split.groups) == {"convention", "skin", "age"}
    r = audit(split)
    age = r["train"]["counts"]["groups"]["age"]
    assert age["old"]["faces"] == 1 and age["young"]["faces"] == 8 and age[UNLABELLED]["faces"] == 81
    rows[3] = rows[3].replace(",20.0,", ",21.5,", 1)
    csv_path.write_text("\n".join(rows) + "\n")
    with pytest.raises(InputError, match=r"coco_labels.csv:4: box \[.*\] of face 2 of 'img_00.jpg' does not match"):
        load_coco(coco["json"], coco["images"], labels=csv_path)


def test_coco_malformed_inputs(coco, tmp_path):
    doc = coco["doc"]
    bad = rewrite(tmp_path / "no_ann.json", {k: v for k, v in doc.items() if k != "annotations"})
    with pytest.raises(CorruptMediaError, match=r"no_ann.json: missing top-level key 'annotations'"):
        load_coco(bad, coco["images"])

    d = json.loads(json.dumps(doc))
    del d["annotations"][5]["bbox"]
    with pytest.raises(CorruptMediaError, match=r"annotations\[5\] \(id 6\): missing key 'bbox'"):
        load_coco(rewrite(tmp_path / "a.json", d), coco["images"])

    d = json.loads(json.dumps(doc))
    d["annotations"][3]["image_id"] = 999
    with pytest.raises(InputError, match=r"a.json: annotations\[3\] \(id 4\): image_id 999 is not in 'images'"):
        load_coco(rewrite(tmp_path / "a.json", d), coco["images"])

    d = json.loads(json.dumps(doc))
    d["annotations"][7]["bbox"][3] = 0
    with pytest.raises(InputError, match=r"annotations\[7\] \(id 8\): non-positive box"):
        load_coco(rewrite(tmp_path / "a.json", d), coco["images"])

    d = json.loads(json.dumps(doc))
    d["annotations"][2]["category_id"] = 7
    with pytest.raises(InputError, match=r"annotations\[2\] \(id 3\): category_id 7 is not in 'categories'"):
        load_coco(rewrite(tmp_path / "a.json", d), coco["images"])

    text = json.dumps(doc, indent=1).splitlines()
    text[4] = text[4] + ","  # trailing comma inside the first image object
    broken = tmp_path / "broken.json"
    broken.write_text("\n".join(text))
    with pytest.raises(CorruptMediaError, match=r"broken.json:\d+: not valid JSON"):
        load_coco(broken, coco["images"])

    with pytest.raises(ConfigError, match="group column"):
        load_coco(coco["json"], coco["images"], groups=["nope"])


def test_coco_val_overlap_and_unannotated_files(coco, tmp_path):
    doc = coco["doc"]
    val = {"images": [{"id": 1, "file_name": "val_0.jpg"}, {"id": 2, "file_name": "val_1.jpg"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 5, 20, 24]}],
           "categories": doc["categories"]}
    shutil.copyfile(coco["images"] / "img_03.jpg", coco["images"] / "val_0.jpg")  # leak
    noise_image(coco["images"] / "val_1.jpg", seed=77)
    noise_image(coco["images"] / "stray.jpg", seed=78)  # in the folder, in no split
    vjson = rewrite(tmp_path / "val.json", val)
    r = audit(load_coco(coco["json"], coco["images"]), load_coco(vjson, coco["images"], name="val"))
    assert r["overlap"]["identical_files"]["count"] == 1
    assert r["overlap"]["near_duplicates"]["pairs"][0]["train"] == "img_03.jpg"
    assert r["val"]["counts"]["images_without_faces"] == 1
    assert r["unannotated_files"]["train"] == {"count": 1, "examples": ["stray.jpg"]}


# -- hashing ---------------------------------------------------------------------------
def test_near_duplicate_pairs_matches_brute_force():
    rng = np.random.default_rng(0)
    n = 3000  # several chunks
    h = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64) * np.uint64(2) + rng.integers(0, 2, n).astype(np.uint64)
    for i in range(0, 300, 3):  # plant near-duplicates: flip 0..5 bits
        flips = rng.choice(64, size=i % 6, replace=False)
        h[n - 1 - i] = h[i] ^ np.uint64(sum(1 << int(b) for b in flips))
    d = np.array([[bin(int(a) ^ int(b)).count("1") for b in h[:400]] for a in h[:400]])
    count, pairs = near_duplicate_pairs(h, max_distance=4)
    x = h[:, None] ^ h[None, :]
    full = audit_mod._popcount(x)
    iu = np.triu_indices(n, 1)
    assert count == int((full[iu] <= 4).sum()) == len(pairs)
    assert (pairs[:, 0] < pairs[:, 1]).all() and (np.diff(pairs[:, 2]) >= 0).all()
    assert all(full[i, j] == dist for i, j, dist in pairs)
    assert (full[:400, :400] == d).all()  # numpy popcount equals Python's
    cross_count, _ = near_duplicate_pairs(h[:1500], h[1500:], max_distance=4)
    assert cross_count == int((full[:1500, 1500:] <= 4).sum())


def test_popcount_fallback_without_bitwise_count(monkeypatch):
    x = np.array([0, 1, 2**64 - 1, 0xF0F0F0F0F0F0F0F0], np.uint64)
    monkeypatch.delattr(np, "bitwise_count", raising=False)
    assert audit_mod._popcount(x).tolist() == [0, 1, 64, 32]
    assert audit_mod._popcount(x.reshape(2, 2)).tolist() == [[0, 1], [64, 32]]


def test_dhash_is_stable_under_resize_and_differs_between_photos(astronaut, grace_hopper):
    a = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    b = cv2.cvtColor(grace_hopper, cv2.COLOR_RGB2GRAY)
    assert hamming(dhash(a), dhash(cv2.resize(a, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))) <= 4
    assert hamming(dhash(a), dhash(b)) > 12


# -- CLI ---------------------------------------------------------------------------------
def test_cli_wider_report(wider, tmp_path):
    out = tmp_path / "report"
    res = cli("--wider-gt", wider["gt"], "--images", wider["images"], "--labels", wider["labels"], "--out", out, "-q")
    assert res.exit_code == 0, res.output
    assert "perceived_skin" in res.output and "near-duplicates" in res.output and str(out / "audit.html") in res.output
    data = json.loads((out / "audit.json").read_text())["data"]
    assert data["train"]["counts"]["images"] == N_SUBSET + 2 and data["partial"] is False
    assert data["train"]["near_duplicates"]["pairs_count"] >= 3
    assert len(list(out.glob("*.png"))) == 6


def test_cli_missing_image_exit_code_and_partial(wider, tmp_path):
    gone = wider["names"][0]
    (wider["images"] / gone).unlink()
    out = tmp_path / "report"
    res = cli("--wider-gt", wider["gt"], "--images", wider["images"], "--out", out, "-q")
    assert res.exit_code == 3
    msg = res.output.strip()
    assert len(msg.splitlines()) == 1 and msg.startswith("veil: error:") and gone in msg and "--allow-partial" in msg
    assert not out.exists()
    res = cli("--wider-gt", wider["gt"], "--images", wider["images"], "--out", out, "-q", "--allow-partial")
    assert res.exit_code == 0, res.output
    assert "PARTIAL DATA" in res.output and "PARTIAL DATA" in (out / "audit.md").read_text()


def test_cli_bad_inputs(coco, wider, tmp_path):
    d = json.loads(json.dumps(coco["doc"]))
    del d["images"]
    bad = rewrite(tmp_path / "bad.json", d)
    res = cli("--coco", bad, "--images", coco["images"], "--out", tmp_path / "r")
    assert res.exit_code == 3
    assert len(res.output.strip().splitlines()) == 1 and "bad.json: missing top-level key 'images'" in res.output
    res = cli("--coco", coco["json"], "--wider-gt", wider["gt"], "--images", coco["images"])
    assert res.exit_code == 2 and "exactly one of" in res.output
    res = cli("--coco", coco["json"])
    assert res.exit_code == 2 and "--images" in res.output
    broken = wider["gt"].read_text().splitlines()
    broken[1] = "many"
    wider["gt"].write_text("\n".join(broken))
    res = cli("--wider-gt", wider["gt"], "--images", wider["images"], "--out", tmp_path / "r")
    assert res.exit_code == 3 and f"{wider['gt']}:2: face count must be an integer" in res.output


def test_cli_coco_with_val(coco, tmp_path):
    val = {"images": [{"id": 1, "file_name": "img_04.jpg"}], "annotations": [], "categories": coco["doc"]["categories"]}
    vdir = tmp_path / "val_imgs"
    vdir.mkdir()
    shutil.copyfile(coco["images"] / "img_04.jpg", vdir / "img_04.jpg")
    out = tmp_path / "r"
    res = cli("--coco", coco["json"], "--images", coco["images"], "--val-coco", rewrite(tmp_path / "v.json", val),
              "--val-images", vdir, "--out", out, "--dup-distance", "2", "-q")
    assert res.exit_code == 0, res.output
    assert "train/val overlap: 1 identical file(s)" in res.output
    data = json.loads((out / "audit.json").read_text())["data"]
    assert data["settings"]["dup_distance"] == 2 and data["overlap"]["same_file_name"]["count"] == 1
    assert "Train/validation overlap" in (out / "audit.md").read_text()
