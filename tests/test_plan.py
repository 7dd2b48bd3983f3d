"""The redaction plan: analyze + render gives what anonymize gives, render refuses plans for
other files, and hand edits (switch, trim, delete, manual keyframes) do what they say."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clips import anonymized_masks, assert_visible, cut, decode, region_diff, unchanged_diffs
from helpers import run
from veil import Anonymizer
from veil.errors import ConfigError
from veil.plan import Keyframe, PlanError, interpolate_keyframes, json_schema, load_plan, parse_plan, save_plan

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clip(hamilton, tmp_path_factory):
    src = hamilton
    return cut(src, tmp_path_factory.mktemp("clip") / "clip.mp4", start=2.0, frames=24)


@pytest.fixture(scope="module")
def analyzed(clip, tmp_path_factory):
    """The clip analysed and rendered by the CLI, and anonymized in one pass."""
    d = tmp_path_factory.mktemp("plan")
    plan, rendered, onepass = d / "plan.json", d / "rendered.mp4", d / "onepass.mp4"
    assert run("analyze", clip, "-o", plan, "-q").exit_code == 0
    res = run("render", clip, "--plan", plan, "-o", rendered, "-q")
    assert res.exit_code == 0, res.output
    assert run("anonymize", clip, "-o", onepass, "-q").exit_code == 0
    return plan, rendered, onepass


def test_analyze_then_render_gives_the_frames_of_one_pass(clip, analyzed):
    plan_path, rendered, onepass = analyzed
    plan = load_plan(plan_path)
    a, b, src = decode(rendered), decode(onepass), decode(clip)
    assert plan.input.frames == len(src) == len(a) == len(b) == 24
    assert len(plan.input.timestamps) == 24 and plan.input.timestamps == sorted(plan.input.timestamps)
    assert any(t.decision == "anonymize" for t in plan.tracks)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    # and the faces really are hidden: the rendered output differs from the input in the boxes
    box = next(f for t in plan.tracks for f in t.frames if f.index == 5 and not f.interpolated)
    assert region_diff(a[5], src[5], box.box) > 8


def test_render_plan_frames_are_bit_identical_to_the_pipeline(clip):
    """Same frames in, same frames out (no encoder in between)."""
    from veil.pipeline import render_plan

    anon = Anonymizer()
    frames = decode(clip)
    plan = anon.analyze(clip)
    onepass = [r.frame for r in Anonymizer().pipeline.run(iter(frames), 29.97)]
    replan = parse_plan(json.loads(json.dumps(plan.model_dump(mode="json", exclude_none=True))))
    again = list(render_plan(iter(frames), replan, anon.pipeline.filter))
    assert all(np.array_equal(x, y) for x, y in zip(onepass, again))
    assert sum(not np.array_equal(x, f) for x, f in zip(again, frames)) >= 20


def test_render_refuses_a_plan_for_another_file(clip, analyzed, tmp_path):
    plan_path, _, _ = analyzed
    other = cut(clip, tmp_path / "other.mp4", start=0.0, frames=20)
    out = tmp_path / "out.mp4"
    res = run("render", other, "--plan", plan_path, "-o", out)
    assert res.exit_code == 2
    assert "another file" in res.output and len(res.output.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob("*.tmp*"))


def test_render_refuses_a_plan_with_another_frame_count(clip, analyzed, tmp_path):
    plan = load_plan(analyzed[0])
    data = plan.model_dump(mode="json")
    data["input"]["frames"] -= 1
    data["input"]["timestamps"].pop()
    for t in data["tracks"]:
        t["frames"] = [f for f in t["frames"] if f["index"] < 23]
    data["tracks"] = [t for t in data["tracks"] if t["frames"]]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    out = tmp_path / "out.mp4"
    res = run("render", clip, "--plan", bad, "-o", out)
    assert res.exit_code == 2 and "frames" in res.output
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_hand_edits_switch_trim_delete_and_manual(clip, analyzed, tmp_path):
    plan = load_plan(analyzed[0])
    src = decode(clip)
    tracks = sorted(plan.tracks, key=lambda t: (-len(t.frames), -min(f.score for f in t.frames)))
    assert len(tracks) >= 3, "the clip has a crowd"
    kept, missed, trimmed = tracks[0], tracks[1], tracks[2]
    plan.set_decision(kept.id, "keep", "consented on camera")
    plan.trim(trimmed.id, trimmed.first, trimmed.first + 2)
    # a face the detector "missed" (its track deleted) is added back from two drawn keyframes
    plan.delete(missed.id)
    first, last = missed.frames[0], missed.frames[-1]
    manual = plan.add_manual([(first.index, first.box), (last.index, last.box)])
    edited = tmp_path / "edited.json"
    save_plan(plan.validated(), edited)
    out = tmp_path / "out.mp4"
    res = run("render", clip, "--plan", edited, "-o", out, "-q")
    assert res.exit_code == 0, res.output
    got = decode(out)
    masks = anonymized_masks(plan, src[0].shape[:2])
    diffs = unchanged_diffs(got, src, kept.frames, masks)  # the kept face is visible
    assert len(manual.frames) == last.index - first.index + 1
    for f in manual.frames:  # the manual region is hidden over its whole range
        assert region_diff(got[f.index], src[f.index], f.box) > 6
    after_trim = [f for f in load_plan(analyzed[0]).track(trimmed.id).frames if f.index > trimmed.first + 2]
    diffs += unchanged_diffs(got, src, after_trim, masks)
    assert_visible(diffs)


def test_a_hand_written_follow_track_is_followed_both_ways_by_render(clip, analyzed, tmp_path):
    """One drawn box and ``"follow": true`` in the JSON: render follows the face forward and
    backward and hides it there (the detected tracks are deleted, so nothing else hides it)."""
    plan = load_plan(analyzed[0])
    src = decode(clip)
    mid = 12
    # the face drawn: a mid-sized one the detector saw in most frames (the large foreground
    # face goes in and out of focus, so its own detections jump around)
    def observed_mid(t):
        return next((f for f in t.frames if f.index == mid and not f.interpolated), None)

    truth = max((t for t in plan.tracks if observed_mid(t) and observed_mid(t).box[2] - observed_mid(t).box[0] < 100),
                key=lambda t: sum(not f.interpolated for f in t.frames))
    drawn = observed_mid(truth)
    data = plan.model_dump(mode="json", exclude_none=True)
    data["tracks"] = [{"id": 7, "decision": "anonymize", "source": "manual", "reason": "missed, followed",
                       "keyframes": [{"index": mid, "box": list(drawn.box)}], "follow": True}]
    edited = tmp_path / "follow.json"
    edited.write_text(json.dumps(data))
    out = tmp_path / "out.mp4"
    res = run("render", clip, "--plan", edited, "-o", out, "--filter", "solid", "--color", "white")
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("followed track 7: frames "))
    first, last = (int(v) for v in line.rsplit(" ", 1)[1].split(".."))
    assert first < mid - 5 and last > mid + 5, line
    got = decode(out)
    observed = [f for f in truth.frames if not f.interpolated and first <= f.index <= last and abs(f.index - mid) >= 5]
    assert any(f.index < mid for f in observed) and any(f.index > mid for f in observed)
    for f in observed:  # painted over where the detector saw the face, before and after the drawn frame
        assert region_diff(got[f.index], src[f.index], f.box) > 60, f.index
    assert load_plan(edited).tracks[0].follow  # the file is left as written: render followed a copy


def test_keyframes_are_interpolated_and_filled_on_load():
    frames = interpolate_keyframes([Keyframe(index=2, box=(0, 0, 10, 10)), Keyframe(index=6, box=(40, 0, 50, 10))])
    assert [f.index for f in frames] == [2, 3, 4, 5, 6]
    assert frames[2].box == (20.0, 0.0, 30.0, 10.0) and frames[2].interpolated
    assert not frames[0].interpolated and not frames[-1].interpolated
    plan = parse_plan(_plan_dict(tracks=[{"id": 0, "decision": "anonymize", "source": "manual",
                                          "keyframes": [{"index": 0, "box": [0, 0, 8, 8]}, {"index": 3, "box": [3, 3, 11, 11]}]}]))
    assert [f.box[0] for f in plan.tracks[0].frames] == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.parametrize("track, words", [
    ({"id": 0, "decision": "anonymize", "source": "manual", "keyframes": [{"index": 0, "box": [200, 0, 210, 8]}]}, "outside"),
    ({"id": 0, "decision": "anonymize", "frames": [{"index": 12, "box": [0, 0, 8, 8]}]}, "past the last frame"),
    ({"id": 0, "decision": "anonymize", "frames": [{"index": 1, "box": [5, 0, 2, 8]}]}, "empty"),
    ({"id": 0, "decision": "hide", "frames": [{"index": 1, "box": [0, 0, 8, 8]}]}, "decision"),
    ({"id": 0, "decision": "keep", "frames": [{"index": 2, "box": [0, 0, 8, 8]}, {"index": 1, "box": [0, 0, 8, 8]}]}, "increasing"),
    ({"id": 0, "decision": "anonymize", "source": "manual", "follow": True,
      "keyframes": [{"index": 0, "box": [0, 0, 8, 8]}, {"index": 3, "box": [0, 0, 8, 8]}]}, "exactly one keyframe"),
    ({"id": 0, "decision": "anonymize", "follow": True, "keyframes": [{"index": 0, "box": [0, 0, 8, 8]}]},
     "exactly one keyframe"),
])
def test_invalid_plans_are_refused_in_one_line(track, words):
    with pytest.raises(PlanError) as err:
        parse_plan(_plan_dict(tracks=[track]))
    assert words in str(err.value) and "\n" not in str(err.value)


def test_manual_box_outside_the_frame_is_refused():
    plan = parse_plan(_plan_dict())
    with pytest.raises(PlanError, match="outside"):
        plan.add_manual([(0, (90.0, 10.0, 130.0, 40.0))])
    assert plan.tracks == []


def test_not_json_is_one_line_error(tmp_path):
    p = tmp_path / "p.json"
    p.write_text("{nope")
    res = run("render", p, "--plan", p, "-o", tmp_path / "o.mp4")
    assert res.exit_code == 3 and "not valid JSON" in res.output


def test_image_plan_renders_like_anonymize(tmp_path, astronaut):
    from PIL import Image

    img = tmp_path / "a.png"
    Image.fromarray(astronaut).save(img)
    assert run("analyze", img, "-o", tmp_path / "p.json", "-q").exit_code == 0
    plan = load_plan(tmp_path / "p.json")
    assert plan.input.kind == "image" and plan.input.frames == 1 and len(plan.tracks) >= 1
    assert run("render", img, "--plan", tmp_path / "p.json", "-o", tmp_path / "r.png", "-q").exit_code == 0
    assert run("anonymize", img, "-o", tmp_path / "o.png", "-q").exit_code == 0
    r = np.asarray(Image.open(tmp_path / "r.png"))
    assert np.array_equal(r, np.asarray(Image.open(tmp_path / "o.png"))) and not np.array_equal(r, astronaut)


def test_background_filter_cannot_be_planned(tmp_path, astronaut):
    with pytest.raises(ConfigError, match="background"):
        Anonymizer(background_beyond=3.0, focal_px=500.0).analyze(tmp_path / "x.png")


def test_committed_schema_matches_the_models():
    assert (ROOT / "docs" / "plan.schema.json").read_text() == json_schema()


def _plan_dict(tracks=()):
    return {"version": 1, "input": {"name": "x.mp4", "kind": "video", "sha256": "0" * 64, "size": 1, "width": 100,
                                    "height": 50, "frames": 10, "fps": 10.0, "timestamps": [i / 10 for i in range(10)]},
            "tracks": list(tracks)}


def test_merge_unites_tracks_of_one_person_and_privacy_wins():
    plan = parse_plan(_plan_dict(tracks=[
        {"id": 0, "decision": "keep", "reason": "consent", "frames": [{"index": 0, "box": [0, 0, 10, 10]},
                                                                       {"index": 1, "box": [1, 0, 11, 10]}]},
        {"id": 3, "decision": "anonymize", "reason": "detected", "frames": [{"index": 1, "box": [2, 1, 12, 12]},
                                                                             {"index": 4, "box": [5, 0, 15, 10]}]},
        {"id": 5, "decision": "anonymize", "frames": [{"index": 2, "box": [0, 0, 10, 10]}]},
    ]))
    merged = plan.merge([0, 3])
    assert [t.id for t in plan.tracks] == [0, 5]
    assert merged.decision == "anonymize" and merged.reason == "detected"
    assert [f.index for f in merged.frames] == [0, 1, 4]
    assert merged.frames[1].box == (1.0, 0.0, 12.0, 12.0)  # the union on the shared frame
    with pytest.raises(PlanError):
        plan.merge([0])
    with pytest.raises(PlanError, match="no track 9"):
        plan.trim(9, 0, 1)
    with pytest.raises(PlanError, match="leaves no frame"):
        plan.trim(5, 3, 4)
