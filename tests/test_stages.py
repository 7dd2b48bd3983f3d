"""The stage protocol (veil.stages): the pipeline tells stages when an input begins, hands
each frame's data from stage to stage and to the renderer, and reads each stage's own
counters; the policy builds its rules from the config and the decided faces once."""

from __future__ import annotations

import numpy as np
import pytest

from veil.config import Config
from veil.depth import BackgroundBlur, DistanceAnnotator
from veil.depth.landmarks import FACE_MODEL_MM
from veil.faces import ANONYMIZE, DISTANCE_SOURCE, KEEP, Faces
from veil.pipeline import Pipeline
from veil.policy import AllMustKeep, AnonymizeAll, build_policy
from veil.policy.distance import KeepNearest, OnlyBeyond
from veil.policy.identity import OnlyIdentities, SpareIdentities
from veil.stages import Item, Stage, StageBase
from veil.track import Tracker


@pytest.fixture(scope="module")
def detector():
    """One real detector for the module (the pipelines below differ in their other stages)."""
    return Pipeline(Config()).detector


def _face_at(z_mm: float, focal: float, cx: float = 320, cy: float = 240, track_id: int = -1) -> Faces:
    """A frontal face of the generic model at ``z_mm`` seen with ``focal`` (pinhole)."""
    X, Y, Z = FACE_MODEL_MM.T
    lm = np.stack([cx + focal * X / (z_mm - Z), cy + focal * Y / (z_mm - Z)], -1).astype(np.float32)
    xyxy = np.concatenate([lm.min(0) - 20, lm.max(0) + 20])[None]
    return Faces(xyxy=xyxy, scores=[0.9], landmarks=lm[None], track_id=[track_id])


class _Counting(StageBase):
    """A stage that counts the frames of the current input and says what it was told."""

    name = "counting"

    def __init__(self, depth_m: np.ndarray | None = None):
        self.depth_m = depth_m
        self.items: list[Item] = []
        self.frames = 0

    def begin_item(self, item: Item) -> None:
        self.items.append(item)
        self.frames = 0

    def annotate(self, frame, faces, info=None):
        self.frames += 1
        if self.depth_m is not None and info is not None:
            info.depth_m = self.depth_m
        return faces

    @property
    def stats(self):
        return {"frames": self.frames}


def test_built_stages_follow_the_protocol(detector):
    pipe = Pipeline(Config().updated(depth={"estimate": True}), detector=detector)
    assert [s.name for s in pipe.annotators] == ["distance"]
    assert all(isinstance(s, Stage) for s in pipe.annotators)
    assert isinstance(_Counting(), Stage)


def test_an_images_camera_data_goes_with_that_frame_only(detector):
    """The EXIF focal length is passed with the image's frame, not matched by the frame's id:
    the same pixels finished again, as another frame, have no focal length."""
    pipe = Pipeline(Config().updated(depth={"estimate": True}), detector=detector)
    frame = np.zeros((480, 640, 3), np.uint8)
    focal = 50 * np.hypot(640, 480) / np.hypot(36, 24)  # what a 50 mm (35 mm equivalent) lens gives here
    pipe.begin_item(Item("image", {"FocalLengthIn35mmFilm": 50}))
    first = pipe.finish(frame, _face_at(2000, focal)).faces
    assert first.data[DISTANCE_SOURCE][0] == "landmarks" and first.distance_m[0] == pytest.approx(2.0, rel=0.05)
    again = pipe.finish(frame, _face_at(2000, focal)).faces
    assert np.isnan(again.distance_m[0]) and again.data[DISTANCE_SOURCE][0].startswith("unknown: no focal length")


def test_the_background_blur_gets_the_depth_map_of_its_frame(detector):
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    depth = np.full((60, 80), 5.0, np.float32)
    depth[:, :40] = 1.0  # the left half is near
    pipe = Pipeline(Config(), detector=detector, annotators=[_Counting(depth)], background=BackgroundBlur(3.0))
    out = pipe.finish(frame, Faces.empty()).frame
    assert np.array_equal(out[:, :80], frame[:, :80]) and out[:, 80:].std() < frame[:, 80:].std() / 3
    # a frame without a depth map: everything counts as far (fail closed)
    pipe = Pipeline(Config(), detector=detector, annotators=[_Counting()], background=BackgroundBlur(3.0))
    out = pipe.finish(frame, Faces.empty()).frame
    assert out[:, :80].std() < frame[:, :80].std() / 3


def test_a_new_input_restarts_stages_and_rules_and_their_counters(detector):
    stage = _Counting()
    pipe = Pipeline(Config().updated(depth={"hfov": 60.0, "only_beyond": 3.0}), detector=detector,
                    annotators=[stage])
    rule = pipe.policy.rules[0]
    assert isinstance(rule, OnlyBeyond)
    frame = np.zeros((480, 640, 3), np.uint8)
    list(pipe.run([frame] * 3, 30.0, render=False))
    assert [i.kind for i in stage.items] == ["video"] and pipe.stats() == {"counting": {"frames": 3}}
    rule._visible.add(7)  # hysteresis state left by a video
    pipe.begin_item(Item("image"))
    assert pipe.stats() == {"counting": {"frames": 0}} and rule._visible == set()
    pipe.process([frame])
    assert pipe.stats() == {"counting": {"frames": 1}}


def test_stages_without_counters_add_nothing_to_the_report(detector):
    pipe = Pipeline(Config().updated(depth={"estimate": True}), detector=detector)
    pipe.begin_item(Item("image"))
    pipe.process([np.zeros((64, 64, 3), np.uint8)])
    assert pipe.stats() == {}


def test_the_policy_builds_its_rules_from_the_config():
    assert build_policy(Config()).rules == []
    cfg = Config().updated(depth={"only_beyond": 3.0, "keep_nearest": 1, "hysteresis": 0.2},
                           identify={"spare": ["ann"], "name_hidden": True})
    policy = build_policy(cfg)
    assert [type(r) for r in policy.rules] == [OnlyBeyond, KeepNearest, SpareIdentities]
    assert policy.rules[0].beyond_m == 3.0 and policy.rules[1].margin == 0.2 and policy.rules[2].name_hidden
    assert policy.base.threshold == cfg.detect.threshold
    only = build_policy(Config().updated(identify={"only": ["bob"]})).rules
    assert len(only) == 1 and isinstance(only[0], OnlyIdentities) and only[0].names == {"bob"}


@pytest.fixture
def builds(monkeypatch):
    """Counts Faces built (each one validated)."""
    count = [0]
    original = Faces.__post_init__

    def counting(self):
        count[0] += 1
        original(self)

    monkeypatch.setattr(Faces, "__post_init__", counting)
    return count


def test_the_policy_builds_the_decided_faces_once(builds):
    ann = DistanceAnnotator(focal_px=800)
    faces = ann.annotate(np.zeros((480, 640, 3), np.uint8),
                         Faces.concatenate([_face_at(1500, 800, cx=200), _face_at(5000, 800, cx=450)]))
    policy = AllMustKeep(AnonymizeAll(0.2), [OnlyBeyond(3.0), KeepNearest(1), SpareIdentities(None)])
    builds[0] = 0
    out = policy.decide(faces)
    assert builds[0] == 1
    assert list(out.decision) == [ANONYMIZE, ANONYMIZE]  # nobody identified: the identity rule anonymizes
    out = AllMustKeep(AnonymizeAll(0.2), [OnlyBeyond(3.0), KeepNearest(1)]).decide(faces)
    assert list(out.decision) == [KEEP, ANONYMIZE] and "nearer than 3 m" in out.reason[0]


def test_the_tracker_builds_a_frames_faces_once(builds):
    tracker = Tracker(0.5, 0.1, coast_frames=5)
    tracker.update(Faces.concatenate([_face_at(1500, 800, cx=200), _face_at(1500, 800, cx=450)]))
    one = _face_at(1500, 800, cx=205)
    builds[0] = 0
    out = tracker.update(one)  # one matched, one lost: coasted
    assert builds[0] == 1
    assert sorted(out.data["source"]) == ["coasted", "detected"] and sorted(out.track_id) == [0, 1]
    builds[0] = 0
    out = tracker.update(None)  # not detected: both coasted
    assert builds[0] == 1 and list(out.data["source"]) == ["coasted", "coasted"]
