"""Privacy: after veil's default blur and pixelate, a face recognizer no longer re-identifies.

The attack (dlib's 128-d descriptor, match below 0.6, attacker handed the original face box)
is :mod:`veil.eval.privacy`; the numbers behind the defaults come from
``bench/privacy_eval.py`` on reid/deepface.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("dlib")
pytest.importorskip("face_recognition_models")

from conftest import require  # noqa: E402
from veil.config import RenderConfig  # noqa: E402
from veil.eval import privacy  # noqa: E402
from veil.eval.privacy import DlibEmbedder, Pair, ReidEvaluator, largest_face, read_pairs  # noqa: E402
from veil.errors import ModelError  # noqa: E402
from veil.faces import Faces  # noqa: E402
from veil.render import build_filter  # noqa: E402

#: same-person pairs of small images (fast at native resolution), several identities
FAST_PAIRS = [
    ("img20.jpg", "img21.jpg"),
    ("img16.jpg", "img17.jpg"),
    ("img24.jpg", "img25.jpg"),
    ("img5.jpg", "img10.jpg"),
    ("img10.jpg", "img11.jpg"),
    ("img5.jpg", "img6.jpg"),
]


def _filter(name: str, strength: float = 1.0):
    # strength 1 = veil's default; weaker than the product's floor is allowed here, to measure it
    flt = build_filter(RenderConfig(filter=name, strength=strength, allow_weak=True))
    return lambda rgb, faces: flt.apply(rgb, faces)


@pytest.fixture(scope="module")
def deepface(data_dir):
    folder = data_dir / "reid" / "deepface"
    require(folder / "master.csv", "reid/deepface")
    return folder


@pytest.fixture(scope="module")
def evaluator(deepface):
    return ReidEvaluator(deepface)


# -- no data needed ----------------------------------------------------------------------
def test_read_pairs_handles_crlf(tmp_path):
    p = tmp_path / "master.csv"
    p.write_bytes(b"file_x,file_y,Decision\r\na.jpg,b.jpg,Yes\r\nc.jpg,d.jpg,No\r\n")
    assert read_pairs(p) == [Pair("a.jpg", "b.jpg", True), Pair("c.jpg", "d.jpg", False)]


def test_largest_face_by_area():
    f = Faces(xyxy=[[0, 0, 10, 10], [0, 0, 30, 5], [5, 5, 25, 20]], scores=[0.9, 0.8, 0.7])
    assert largest_face(f).xyxy.tolist() == [[5, 5, 25, 20]]
    assert len(largest_face(Faces.empty())) == 0


def test_dlib_models_are_verified(monkeypatch):
    emb = DlibEmbedder()
    assert set(emb.model_sha256) == set(privacy.DLIB_MODELS)
    bad = {k: (loc, "0" * 64) for k, (loc, _) in privacy.DLIB_MODELS.items()}
    monkeypatch.setattr("veil.identify.embedder.DLIB_MODELS", bad)
    with pytest.raises(ModelError, match="checksum"):
        DlibEmbedder()


# -- on reid/deepface ----------------------------------------------------------------------
def test_defaults_defeat_reidentification_fast(evaluator):
    pairs = [Pair(x, y, True) for x, y in FAST_PAIRS]
    base = evaluator.evaluate(pairs, None)
    assert base.n == len(FAST_PAIRS) and not base.skipped
    # sanity: the attack works on the originals, so a 0 below means something
    assert base.baseline_matched == base.n, [p.as_dict() for p in base.pairs]
    for name in ("blur", "pixelate"):
        res = evaluator.evaluate(pairs, _filter(name))
        assert res.matched == 0, (name, [p.as_dict() for p in res.pairs if p.matched])
        assert res.matched_aligned == 0, (name, [p.as_dict() for p in res.pairs if p.matched_aligned])
        assert res.mean_distance > base.baseline_mean_distance + 0.2
    # and the attack is not blind to filtering: a light blur still gets re-identified, and found
    weak = evaluator.evaluate(pairs, _filter("blur", 0.1))
    assert weak.matched >= base.n // 2
    assert weak.redetected >= base.n // 2 and base.redetected == base.n


@pytest.mark.parametrize("name", ["blur", "pixelate"])
def test_floor_defeats_both_attackers_fast(evaluator, name):
    """At the floor veil enforces, neither dlib nor veil's own detector gets the face back,
    while a tenth of the default strength is re-identified (the floor is behaviour, not a number)."""
    pairs = [Pair(x, y, True) for x, y in FAST_PAIRS]
    floor = RenderConfig(filter=name).strength_floor
    res = evaluator.evaluate(pairs, _filter(name, floor))
    assert res.n == len(FAST_PAIRS)
    assert res.matched == 0 and res.matched_aligned == 0, [p.as_dict() for p in res.pairs if p.matched]
    assert res.redetected == 0, [p.as_dict() for p in res.pairs if p.redetected]
    weak = evaluator.evaluate(pairs, _filter(name, 0.1))
    assert weak.matched >= len(FAST_PAIRS) // 2


def test_anonymize_fn_gets_only_the_face_and_a_copy(evaluator):
    seen = []

    def fn(rgb, faces):
        seen.append(len(faces))
        rgb[:] = 0  # the evaluator must hand over a copy
        return rgb

    pairs = [Pair(*FAST_PAIRS[0], True)]
    res = evaluator.evaluate(pairs, fn)
    assert seen == [1] and res.n == 1 and not res.pairs[0].matched
    again = evaluator.evaluate(pairs, None)
    assert again.pairs[0].baseline_matched  # cached originals were not damaged


@pytest.mark.slow
def test_defaults_defeat_reidentification_all_pairs(evaluator, deepface):
    pairs = read_pairs(deepface / "master.csv")
    base = evaluator.evaluate(pairs, None)
    assert base.n == sum(p.same for p in pairs) == 38 and not base.skipped
    assert base.baseline_matched == base.n
    for name in ("blur", "pixelate"):
        res = evaluator.evaluate(pairs, _filter(name))
        assert res.matched == 0, (name, [p.as_dict() for p in res.pairs if p.matched])
        assert res.matched_aligned == 0, (name, [p.as_dict() for p in res.pairs if p.matched_aligned])
        assert np.isfinite(res.mean_distance) and res.mean_distance > 0.75
