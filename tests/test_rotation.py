"""Rotated and mirrored videos (phone clips): veil works in display orientation (issue #10).

Phones store most clips sideways and tag them with a display matrix that players apply.
veil must see, mask and write the frames the way they are shown: detecting on the stored
(sideways) pixels missed the faces in up to 59 of 60 frames of a portrait clip.

"As displayed" is FFmpeg's own view: the imageio-ffmpeg binary decodes with its
autorotation (its default), the same as ffplay and other players.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from helpers import box_slices
from helpers import ffmpeg as ffmpeg_exe
from veil.boxes import box_iou
from veil.config import VideoConfig
from veil.io.video import probe_video, read_frames, transcode_video

GREEN = "#00ff00"  # solid fill: the mask is read back from the output's pixels
REF_SCORE = 0.5  # reference faces: confident detections on the upright clip


def ffmpeg(*args) -> None:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *map(str, args)], check=True)


def as_displayed(path: Path, tmp: Path) -> list[np.ndarray]:
    """Frames as a player shows them (FFmpeg applies the display matrix), RGB."""
    raw = tmp / f"{path.stem}.displayed.nut"
    ffmpeg("-i", path, "-an", "-c:v", "rawvideo", "-pix_fmt", "rgb24", raw)
    with av.open(str(raw)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def tag(src: Path, dst: Path, flags: list[str]) -> Path:
    """``src``'s stream with a display matrix set by FFmpeg's -display_* flags (no re-encode)."""
    ffmpeg(*flags, "-i", src, "-c", "copy", dst)
    return dst


# ----------------------------------------------------------------------------- every orientation, exactly


def pattern(w: int = 64, h: int = 48) -> np.ndarray:
    """No symmetry: any turn or mirror of it is a different image."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:12, :20] = (255, 255, 255)  # top-left block
    img[:, -8:] = (255, 0, 0)  # right bar
    img[-10:, 20:36] = (0, 0, 255)  # bottom block, left of centre
    return img


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("orient") / "plain.mp4"
    img = pattern()
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "crf": "10"})
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv444p"
        for i in range(3):
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv444p")
            f.pts = i
            out.mux(vs.encode(f))
        out.mux(vs.encode())
    return path


#: FFmpeg flags (its rotation is counter-clockwise) -> (clockwise turn, mirrored) veil reports
TAGS = {
    "rot90ccw": (["-display_rotation", "90"], 270, False),
    "rot90cw": (["-display_rotation", "-90"], 90, False),
    "rot180": (["-display_rotation", "180"], 180, False),
    "hflip": (["-display_hflip"], 0, True),
    "vflip": (["-display_vflip"], 180, True),
    "rot90ccw+hflip": (["-display_rotation", "90", "-display_hflip"], 90, True),
    "rot90ccw+vflip": (["-display_rotation", "90", "-display_vflip"], 270, True),
}


@pytest.mark.parametrize("name", TAGS)
def test_frames_reach_process_as_ffmpeg_displays_them(plain, tmp_path, name):
    flags, rotation, mirrored = TAGS[name]
    src = tag(plain, tmp_path / "tagged.mp4", flags)
    shown = as_displayed(src, tmp_path)
    info = probe_video(src)
    assert (info.rotation, info.mirrored) == (rotation, mirrored)
    assert (info.height, info.width) == shown[0].shape[:2]
    seen = []
    dst = tmp_path / "out.mp4"
    transcode_video(src, dst, lambda frames: (seen.append(f.copy()) or f for f in frames), VideoConfig())
    assert len(seen) == len(shown) == 3
    for got, want in zip(seen, shown):
        assert got.shape == want.shape
        assert np.abs(got.astype(int) - want).mean() < 4  # the same picture (encoding noise only)
    for got, want in zip(read_frames(src), shown):
        assert np.abs(got.astype(int) - want).mean() < 4
    # written upright: plays the same without the matrix
    with av.open(str(dst)) as c:
        assert next(c.decode(video=0)).side_data.get("DISPLAYMATRIX") is None
    out = as_displayed(dst, tmp_path)
    assert np.abs(out[0].astype(int) - shown[0]).mean() < 6


def test_every_turn_is_what_numpy_says_and_the_matrix_round_trips():
    """All 8 orientations: apply() is the transpose-then-flips it claims, and the display
    matrix FFmpeg would write for it (entries a, b, c, d) reads back as the same turn."""
    import itertools

    from veil.io.orientation import Orientation, orientation_from_matrix

    a = np.random.default_rng(1).integers(0, 255, (5, 7, 3), np.uint8)
    for t, r, c in itertools.product([False, True], repeat=3):
        turn = Orientation(t, r, c)
        v = a.swapaxes(0, 1) if t else a
        v = v[::-1] if r else v
        v = v[:, ::-1] if c else v
        assert np.array_equal(turn.apply(a), v)
        one = 1 << 16
        if t:  # x' = c*y, y' = b*x
            m = (0, -one if r else one, 0, -one if c else one, 0, 0, 0, 0, 1 << 30)
        else:  # x' = a*x, y' = d*y
            m = (-one if c else one, 0, 0, 0, -one if r else one, 0, 0, 0, 1 << 30)
        assert orientation_from_matrix(m) == turn


def test_a_matrix_that_is_not_a_right_angle_is_refused(plain, tmp_path):
    from veil.errors import UnsupportedMediaError

    src = tag(plain, tmp_path / "tilted.mp4", ["-display_rotation", "30"])
    with pytest.raises(UnsupportedMediaError, match="right angle"):
        probe_video(src)
    dst = tmp_path / "out.mp4"
    with pytest.raises(UnsupportedMediaError, match="right angle"):
        transcode_video(src, dst, lambda frames: frames, VideoConfig())
    assert not dst.exists()


def test_legacy_rotate_tag_is_applied(plain, tmp_path):
    """Files from older muxers carry a ``rotate`` tag (clockwise degrees) instead of a matrix."""
    src = tmp_path / "tagged.mkv"
    ffmpeg("-i", plain, "-c", "copy", "-metadata:s:v:0", "rotate=90", src)
    with av.open(str(src)) as c:
        assert {k.lower(): v for k, v in c.streams.video[0].metadata.items()}["rotate"] == "90"  # a tag, no matrix
        assert next(c.decode(video=0)).side_data.get("DISPLAYMATRIX") is None
    info = probe_video(src)
    assert (info.rotation, info.width, info.height) == (90, 48, 64)
    want = np.rot90(pattern(), -1)  # 90 deg clockwise
    for got in read_frames(src):
        assert np.abs(got.astype(int) - want).mean() < 4


# ----------------------------------------------------------------------------- real faces: the hamilton clip


@pytest.fixture(scope="module")
def upright(hamilton, tmp_path_factory):
    """2 s of the hamilton clip at 384x216 (no audio), and the faces veil finds on it."""
    from veil.api import Anonymizer

    src = hamilton
    path = tmp_path_factory.mktemp("hamilton") / "upright.mp4"
    ffmpeg("-i", src, "-t", "2", "-an", "-vf", "scale=384:216", "-c:v", "libx264", "-preset", "ultrafast",
           "-crf", "16", path)
    frames = list(read_frames(path))
    anon = Anonymizer()
    refs = [f.xyxy[f.scores >= REF_SCORE] for f in (anon.detect(fr) for fr in frames)]
    assert sum(len(r) for r in refs) >= 2 * len(frames)  # the performer and the pianist, at least
    return path, frames, refs


#: how the stored pixels are made from the upright clip, and the tag that shows them upright
PORTRAIT = {
    90: ("transpose=2", ["-display_rotation", "-90"]),  # stored turned 90 ccw; shown turned 90 cw
    180: ("hflip,vflip", ["-display_rotation", "180"]),
    270: ("transpose=1", ["-display_rotation", "90"]),
}


def green(frame: np.ndarray) -> np.ndarray:
    """Pixels of the solid green mask."""
    r, g, b = (frame[..., i].astype(int) for i in range(3))
    return (g > 170) & (r < 100) & (b < 100)


@pytest.mark.parametrize("rotation", sorted(PORTRAIT))
def test_rotated_clip_hides_every_face_and_grows_heads_upward(upright, tmp_path, rotation):
    from veil.api import Anonymizer

    path, frames, refs = upright
    vf, flags = PORTRAIT[rotation]
    stored = tmp_path / "stored.mp4"
    ffmpeg("-i", path, "-vf", vf, "-c:v", "libx264", "-preset", "ultrafast", "-crf", "16", stored)
    src = tag(stored, tmp_path / "phone.mp4", flags)
    shown = as_displayed(src, tmp_path)
    assert len(shown) == len(frames) and shown[0].shape == frames[0].shape  # the phone clip plays upright
    assert probe_video(src).rotation == rotation

    anon = Anonymizer(filter="solid", color=GREEN, report_path=tmp_path / "report.json")
    item = anon.video(src, tmp_path / "out.mp4")
    anon.write_report()
    records = json.loads((tmp_path / "report.json").read_text())["items"][0]["frames"]
    assert item.extra["video"]["rotation"] == rotation and item.extra["video"]["height"] == frames[0].shape[0]
    out = as_displayed(tmp_path / "out.mp4", tmp_path)
    assert len(out) == len(frames) and out[0].shape == frames[0].shape
    assert not any(green(f).mean() > 0.001 for f in frames)  # the source has no such green

    covered = total = 0
    above, below = [], []
    boxes_match = 0
    for i, (frame, ref) in enumerate(zip(out, refs)):
        mask = green(frame)
        reported = np.array([f["box"] for f in records[i]["faces"] if f["anonymized"]]).reshape(-1, 4)
        for x0, y0, x1, y1 in np.round(ref).astype(int):
            total += 1
            covered += mask[box_slices((x0, y0, x1, y1), mask.shape)].mean() > 0.9
            boxes_match += len(reported) > 0 and box_iou(np.array([[x0, y0, x1, y1]], float), reported).max() > 0.5
            h, cx, half = y1 - y0, (x0 + x1) // 2, max(2, (x1 - x0) // 6)
            if h >= 30 and y0 - 0.45 * h >= 0 and y1 + 0.45 * h < frame.shape[0]:
                band = lambda a, b: mask[int(a):int(b), cx - half:cx + half].mean()  # noqa: E731
                above.append(band(y0 - 0.42 * h, y0 - 0.32 * h))
                below.append(band(y1 + 0.32 * h, y1 + 0.42 * h))
    # every face veil finds on the upright clip is hidden in the phone clip as played
    assert covered == total, f"{total - covered} of {total} faces visible as played"
    # the report's boxes are in display orientation (the frame the viewer sees)
    assert boxes_match >= 0.9 * total
    # head growth (forehead, hair) goes up on screen, not sideways or down
    assert len(above) >= 10
    up, down = np.mean(above), np.mean(below)
    print(f"rotation {rotation}: {covered}/{total} covered, {boxes_match} boxes match, above {up:.2f} below {down:.2f}")
    assert up > 0.8 and up - down > 0.5, (up, down)


# ----------------------------------------------------------------------------- live sources


@pytest.mark.parametrize("kind", ["file", "pipe"])
def test_live_source_with_a_display_matrix_is_processed_upright(plain, tmp_path, kind):
    """``veil stream`` from a tagged file, or from a pipe carrying Matroska (which holds a
    display matrix): ``process`` sees, and the output shows, the frames as displayed."""
    import os
    import threading

    from veil.io.stream import StreamOptions, anonymize_stream

    src = tag(plain, tmp_path / "tagged.mkv", ["-display_rotation", "-90", "-display_hflip"])
    shown = as_displayed(src, tmp_path)
    assert shown[0].shape == (64, 48, 3)
    spec = src
    if kind == "pipe":
        spec = tmp_path / "in.fifo"
        os.mkfifo(spec)
        feeder = threading.Thread(target=lambda: spec.write_bytes(src.read_bytes()), daemon=True)
        feeder.start()
    seen = []
    dst = tmp_path / "out.mp4"
    stats = anonymize_stream(str(spec), dst, lambda frames: (seen.append(f.copy()) or f for f in frames),
                             VideoConfig(), StreamOptions(live=False, stall_timeout_s=5))
    assert stats.frames_out == 3 and stats.resized == 0 and (stats.width, stats.height) == (48, 64)
    for got, want in zip(seen, shown):
        assert got.shape == want.shape and np.abs(got.astype(int) - want).mean() < 4
    out = as_displayed(dst, tmp_path)
    assert out[0].shape == (64, 48, 3) and np.abs(out[0].astype(int) - shown[0]).mean() < 6


# ----------------------------------------------------------------------------- orientation changing mid-video


@pytest.fixture
def upright_then_turned(tmp_path):
    """MPEG-TS: 10 frames with no orientation, then 10 whose first carries an H.264
    display-orientation SEI (later frames carry none: the SEI holds until the next one)."""
    def make(rotate: int) -> Path:
        a, b, ab = tmp_path / "a.ts", tmp_path / f"b{rotate}.ts", tmp_path / f"ab{rotate}.ts"
        ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=15", "-frames:v", "10", "-c:v", "libx264",
               "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-f", "mpegts", a)
        ffmpeg("-i", a, "-c", "copy", "-bsf:v", f"h264_metadata=display_orientation=insert:rotate={rotate}",
               "-f", "mpegts", b)
        listing = tmp_path / "list.txt"
        listing.write_text(f"file '{a}'\nfile '{b}'\n")
        ffmpeg("-f", "concat", "-safe", "0", "-i", listing, "-c", "copy", "-f", "mpegts", ab)  # one continuous stream
        return ab
    return make


def test_a_turn_that_changes_the_shape_mid_file_fails_closed(upright_then_turned, tmp_path):
    from veil.errors import UnsupportedMediaError

    src = upright_then_turned(90)
    dst = tmp_path / "out.mp4"
    with pytest.raises(UnsupportedMediaError, match="orientation changes"):
        transcode_video(src, dst, lambda frames: frames, VideoConfig())
    assert not dst.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_turn_that_keeps_the_shape_applies_from_its_frame_on(upright_then_turned, tmp_path):
    src = upright_then_turned(180)
    stored = list(read_frames(tmp_path / "a.ts"))
    seen = []
    transcode_video(src, tmp_path / "out.mp4", lambda frames: (seen.append(f.copy()) or f for f in frames),
                    VideoConfig())
    assert len(seen) == 20
    for i, got in enumerate(seen):
        want = stored[i % 10] if i < 10 else stored[i % 10][::-1, ::-1]  # upright, then upside down
        assert np.abs(got.astype(int) - want).mean() < 4, i


def test_a_live_source_turning_mid_stream_is_letterboxed(upright_then_turned, tmp_path):
    from veil.io.stream import StreamOptions, anonymize_stream

    src = upright_then_turned(90)
    seen = []
    stats = anonymize_stream(str(src), tmp_path / "out.mp4", lambda frames: (seen.append(f.copy()) or f for f in frames),
                             VideoConfig(), StreamOptions(live=False, stall_timeout_s=5))
    assert stats.frames_out == 20 and stats.resized == 10
    assert {f.shape for f in seen} == {(48, 64, 3)}
    assert seen[-1][:, :10].max() < 30 and seen[-1][:, 28:36].mean() > 30  # a portrait frame between black bars
