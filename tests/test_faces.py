import numpy as np
import pytest

from veil.faces import ANONYMIZE, KEEP, Faces


def make(n=3):
    xyxy = np.array([[10, 10, 50, 60], [100, 20, 140, 70], [5, 5, 15, 15]][:n], np.float32)
    return Faces(xyxy=xyxy, scores=np.array([0.9, 0.5, 0.3][:n]))


def test_defaults_are_safe():
    f = make()
    assert (f.decision == ANONYMIZE).all()
    assert f.to_anonymize.all()
    assert (f.track_id == -1).all()
    assert np.isnan(f.landmarks).all() and f.landmarks.shape == (3, 5, 2)
    assert np.isnan(f.distance_m).all()


def test_empty_and_concatenate():
    e = Faces.empty()
    assert len(e) == 0 and e.xyxy.shape == (0, 4)
    both = Faces.concatenate([make(2), e, make(1)])
    assert len(both) == 3
    np.testing.assert_allclose(both.xyxy[2], [10, 10, 50, 60])


def test_boolean_indexing_and_immutability():
    f = make()
    sub = f[f.scores > 0.4]
    assert len(sub) == 2
    changed = f.with_columns(decision=np.array([KEEP, ANONYMIZE, KEEP], object))
    assert list(f.decision) == [ANONYMIZE] * 3  # original untouched
    assert changed.to_anonymize.tolist() == [False, True, False]


def test_scaled_maps_boxes_and_landmarks():
    lm = np.tile(np.array([[20.0, 30.0]], np.float32), (5, 1))[None]
    f = Faces(xyxy=[[10, 10, 50, 60]], scores=[0.9], landmarks=lm)
    g = f.scaled(2, 3, 1, -1)
    np.testing.assert_allclose(g.xyxy[0], [21, 29, 101, 179])
    np.testing.assert_allclose(g.landmarks[0, 0], [41, 89])


def test_clipped_keeps_every_face():
    f = Faces(xyxy=[[-5, -5, 20, 20], [90, 90, 200, 200]], scores=[0.9, 0.8])
    c = f.clipped(100, 100)
    assert len(c) == 2
    np.testing.assert_allclose(c.xyxy, [[0, 0, 20, 20], [90, 90, 100, 100]])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(xyxy=np.zeros((2, 3)), scores=[1, 1]), "xyxy"),
        (dict(xyxy=np.zeros((2, 4)), scores=[1]), "scores"),
        (dict(xyxy=np.zeros((1, 4)), scores=[1], landmarks=np.zeros((1, 4, 2))), "landmarks"),
        (dict(xyxy=np.zeros((1, 4)), scores=[1], track_id=[1, 2]), "track_id"),
        (dict(xyxy=np.zeros((1, 4)), scores=[1], data={"x": np.zeros(2)}), "data"),
    ],
)
def test_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Faces(**kwargs)


def test_records_have_no_pixels_and_round_trip_json():
    import json

    f = make(1).with_columns(identity=np.array(["alice"], object), distance_m=np.array([2.5], np.float32))
    rec = f.records()[0]
    assert set(rec) == {"box", "score", "landmarks", "anonymized", "reason", "identity", "distance_m"}
    json.dumps(rec)
