"""veil.io.video: probing, transcoding through ``process``, and failing closed.

Synthetic clips are made with PyAV in ``tmp_path``; frame ``i`` shows ``i`` in binary as
eight black/white vertical bars, so that frame order survives lossy encoding and can be read
back. Real clips come from ``data_dir / "video"``.
"""

from __future__ import annotations

import subprocess
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from clips import fail_encoder_at
from helpers import ffmpeg
from veil.config import VideoConfig
from veil.errors import (
    ConfigError,
    CorruptMediaError,
    MediaNotFoundError,
    MediaTooLargeError,
    OutputError,
    ProcessingError,
    UnsupportedMediaError,
)
from veil.io.atomic import atomic_output
from veil.io.video import VideoInfo, VideoStats, probe_video, transcode_video



def pattern(i: int, w: int, h: int) -> np.ndarray:
    """Frame ``i``: bit b of i is bar b (8 px wide, full height), white if set."""
    img = np.zeros((h, w, 3), np.uint8)
    for b in range(8):
        if i >> b & 1:
            img[:, 8 * b : 8 * b + 8] = 255
    return img


def frame_index(rgb: np.ndarray) -> int:
    """Read back the number ``pattern`` drew (bar centres, robust to compression)."""
    return sum(1 << b for b in range(8) if rgb[:, 8 * b + 2 : 8 * b + 6].mean() > 128)


# ----------------------------------------------------------------------------- helpers


def make_clip(
    path: Path,
    size=(64, 48),
    n: int = 20,
    rate: Fraction = Fraction(25),
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    audio: bool = True,
    gop: int = 10,
    codec: str = "libx264",
) -> Path:
    """Frame i shows ``pattern(i)``; optional 1 kHz sine AAC track (48 kHz, mono)."""
    w, h = size
    pix = "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=rate, options={"preset": "ultrafast", "g": str(gop), "bf": "0"})
        vs.width, vs.height, vs.pix_fmt = w, h, pix
        tb = time_base or 1 / rate
        vs.codec_context.time_base = tb
        vs.time_base = tb
        stamps = pts if pts is not None else list(range(n))
        if audio:
            aus = out.add_stream("aac", rate=48000)
            aus.codec_context.layout = "mono"
        for i, p in enumerate(stamps):
            frame = av.VideoFrame.from_ndarray(pattern(i, w, h), format="rgb24")
            frame = frame.reformat(format=pix)
            frame.pts, frame.time_base = p, tb
            out.mux(vs.encode(frame))
        out.mux(vs.encode())
        if audio:
            end_s = float((stamps[-1] + 1) * tb)
            total = int(end_s * 48000)
            for start in range(0, total, 1024):
                k = np.arange(start, min(start + 1024, total))
                samples = (0.3 * np.sin(2 * np.pi * 1000 * k / 48000)).astype(np.float32)[None, :]
                af = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
                af.sample_rate, af.pts, af.time_base = 48000, start, Fraction(1, 48000)
                out.mux(aus.encode(af))
            out.mux(aus.encode())
    return path


def read_video(path: Path) -> dict:
    """Decode everything: frame times (exact Fractions), sizes, frame numbers, rotation, audio."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        times, index, levels, sizes, rotation = [], [], [], set(), None
        for f in c.decode(v):
            times.append(f.pts * f.time_base)
            sizes.add((f.width, f.height))
            rgb = f.to_ndarray(format="rgb24")
            index.append(frame_index(rgb))
            levels.append(float(rgb.mean()))
            rotation = f.rotation if rotation is None else rotation
        res = {
            "times": times,
            "index": index,
            "levels": levels,
            "sizes": sizes,
            "rotation": rotation,
            "pix_fmt": v.codec_context.pix_fmt,
            "codec": v.codec_context.name,
            "fps": v.average_rate,
            "audio": None,
        }
    with av.open(str(path)) as c:
        if c.streams.audio:
            a = c.streams.audio[0]
            packets = [bytes(p) for p in c.demux(a) if p.size]
            res["audio"] = {"codec": a.codec_context.name, "packets": packets}
    with av.open(str(path)) as c:
        if c.streams.audio:
            a = c.streams.audio[0]
            frames = list(c.decode(a))
            res["audio"]["start"] = float(frames[0].pts * frames[0].time_base)
            last = frames[-1]
            res["audio"]["end"] = float(last.pts * last.time_base) + last.samples / last.sample_rate
    return res


def identity(frames):
    for f in frames:
        yield f


def dir_listing(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


@pytest.fixture
def clip(tmp_path) -> Path:
    return make_clip(tmp_path / "in.mp4")


# ----------------------------------------------------------------------------- probing


def test_probe_synthetic(clip):
    info = probe_video(clip)
    assert isinstance(info, VideoInfo)
    assert (info.width, info.height) == (64, 48)
    assert info.fps == Fraction(25) and isinstance(info.fps, Fraction)
    assert info.frames == 20
    assert info.duration_s == pytest.approx(0.8, abs=0.01)
    assert info.rotation == 0 and info.codec == "h264" and info.has_audio


def test_probe_frames_estimate_after_trimming(clip):
    assert probe_video(clip, start=0.2, end=0.6).frames == 10


def test_probe_hamilton(hamilton):
    info = probe_video(hamilton)
    assert (info.width, info.height) == (640, 360)
    # This file's frames are exactly 400 ticks of 1/11988 s apart: 29.97 fps exactly
    # (2997/100), not NTSC's 30000/1001. Either way fps must be an exact Fraction.
    assert isinstance(info.fps, Fraction) and info.fps == Fraction(2997, 100)
    assert info.time_base == Fraction(1, 11988)
    assert info.frames == 275
    assert info.has_audio and info.rotation == 0


# ----------------------------------------------------------------------------- round trips


def test_identity_round_trip_keeps_size_fps_count_and_pts(clip, tmp_path):
    calls = []
    dst = tmp_path / "out.mp4"
    stats = transcode_video(clip, dst, identity, VideoConfig(), on_frame=calls.append)
    src, out = read_video(clip), read_video(dst)
    assert isinstance(stats, VideoStats)
    assert (stats.frames_in, stats.frames_out) == (20, 20)
    assert out["sizes"] == {(64, 48)} and out["pix_fmt"] == "yuv420p" and out["codec"] == "h264"
    assert out["fps"] == src["fps"] == Fraction(25)
    assert out["times"] == src["times"]
    assert out["index"] == list(range(20))
    assert calls == list(range(1, 21))
    assert stats.duration_s == pytest.approx(0.8)
    assert dir_listing(tmp_path) == ["in.mp4", "out.mp4"]


@pytest.mark.parametrize(
    "codec,suffix,pix_fmt",
    [
        ("libx264", ".mp4", "yuv444p"),
        ("libx265", ".mkv", "yuv444p"),
        ("libvpx-vp9", ".webm", "yuv444p"),
        ("mpeg4", ".avi", "yuv420p"),  # MPEG-4 part 2 codes odd 4:2:0 sizes as they are
    ],
)
def test_odd_size_is_kept_exactly(tmp_path, codec, suffix, pix_fmt):
    src = make_clip(tmp_path / "odd.mp4", size=(65, 49), n=6, audio=False)
    dst = tmp_path / f"out{suffix}"
    transcode_video(src, dst, identity, VideoConfig(codec=codec))
    out = read_video(dst)
    assert out["sizes"] == {(65, 49)}
    assert out["pix_fmt"] == pix_fmt
    assert len(out["times"]) == 6
    assert out["index"] == list(range(6))


def test_even_size_uses_yuv420p_for_every_codec(tmp_path):
    src = make_clip(tmp_path / "in.mp4", n=4, audio=False)
    for codec, suffix in [("libx265", ".mp4"), ("libvpx-vp9", ".webm")]:
        dst = tmp_path / f"out_{codec}{suffix}"
        transcode_video(src, dst, identity, VideoConfig(codec=codec))
        assert read_video(dst)["pix_fmt"] == "yuv420p"


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv"])
def test_variable_frame_rate_pts_preserved(tmp_path, suffix):
    stamps = [0, 40, 70, 150, 160, 300, 310, 320, 500, 540]  # milliseconds, irregular
    src = make_clip(tmp_path / "vfr.mkv", n=len(stamps), pts=stamps, time_base=Fraction(1, 1000), audio=False)
    dst = tmp_path / f"out{suffix}"
    transcode_video(src, dst, identity, VideoConfig())
    out = read_video(dst)
    assert out["times"] == [Fraction(p, 1000) for p in stamps]
    assert out["index"] == list(range(len(stamps)))


def test_buffering_process_gets_pts_in_order(clip, tmp_path):
    """A process that reads 3 frames ahead still gets each frame's own timestamp."""

    def lookahead(frames):
        buf = []
        for f in frames:
            buf.append(f)
            if len(buf) == 4:
                yield buf.pop(0)
        yield from buf

    dst = tmp_path / "out.mp4"
    transcode_video(clip, dst, lookahead, VideoConfig())
    src, out = read_video(clip), read_video(dst)
    assert out["times"] == src["times"]
    assert out["index"] == list(range(20))


def test_frames_reach_process_as_contiguous_rgb(tmp_path):
    src = make_clip(tmp_path / "odd.mp4", size=(65, 49), n=3, audio=False)
    seen = []

    def check(frames):
        for f in frames:
            seen.append((f.shape, f.dtype, f.flags["C_CONTIGUOUS"]))
            yield f

    transcode_video(src, tmp_path / "out.mp4", check, VideoConfig())
    assert seen == [((49, 65, 3), np.uint8, True)] * 3


def test_process_output_is_what_gets_written(clip, tmp_path):
    """The written frames are process's output, not the decoded input."""
    dst = tmp_path / "out.mp4"
    transcode_video(clip, dst, lambda frames: (np.zeros_like(f) for f in frames), VideoConfig())
    assert max(read_video(dst)["levels"]) < 2


def test_avi_with_b_frames_reads_back_in_order(clip, tmp_path):
    """AVI has no pts (B-frames make them decode-order numbers): best-effort timestamps."""
    avi = tmp_path / "mid.avi"
    transcode_video(clip, avi, identity, VideoConfig())  # libx264 veryfast uses B-frames
    dst = tmp_path / "out.mp4"
    stats = transcode_video(avi, dst, identity, VideoConfig())
    out = read_video(dst)
    assert stats.frames_out == 20 and out["index"] == list(range(20))
    steps = {b - a for a, b in zip(out["times"], out["times"][1:])}
    assert steps == {Fraction(1, 25)}


# ----------------------------------------------------------------------------- audio


def test_audio_is_stream_copied_bit_exact(clip, tmp_path):
    dst = tmp_path / "out.mp4"
    stats = transcode_video(clip, dst, identity, VideoConfig())
    src, out = read_video(clip), read_video(dst)
    assert stats.audio_copied and not stats.audio_reencoded
    assert out["audio"]["codec"] == "aac"
    assert out["audio"]["packets"] == src["audio"]["packets"]


def test_audio_dropped_when_copy_audio_false(clip, tmp_path):
    dst = tmp_path / "out.mp4"
    stats = transcode_video(clip, dst, identity, VideoConfig(copy_audio=False))
    assert read_video(dst)["audio"] is None
    assert not stats.audio_copied


def test_audio_reencoded_when_container_cannot_hold_it(clip, tmp_path):
    dst = tmp_path / "out.webm"  # WebM cannot hold AAC: Opus instead
    stats = transcode_video(clip, dst, identity, VideoConfig(codec="libvpx-vp9"))
    out = read_video(dst)
    assert stats.audio_copied and stats.audio_reencoded
    assert out["audio"]["codec"] == "opus"
    assert out["audio"]["end"] == pytest.approx(0.8, abs=0.05)


def test_hamilton_round_trip_with_audio(hamilton, tmp_path):
    dst = tmp_path / "out.mp4"
    cfg = VideoConfig(start=1.0, end=3.0)
    stats = transcode_video(hamilton, dst, identity, cfg)
    # expected frames: those in [1, 3) s from the container start, counted independently
    with av.open(str(hamilton)) as c:
        t0 = Fraction(c.start_time, 1_000_000)
        want = [f.pts * f.time_base for f in c.decode(video=0) if t0 + 1 <= f.pts * f.time_base < t0 + 3]
    out = read_video(dst)
    assert stats.frames_out == len(out["times"]) == len(want) == 60
    assert out["sizes"] == {(640, 360)}
    assert out["fps"] == Fraction(2997, 100) and stats.fps == Fraction(2997, 100)
    assert out["times"] == [t - want[0] for t in want]  # rebased to 0, spacing exact
    assert out["audio"] is not None and out["audio"]["codec"] == "aac"
    assert stats.audio_copied
    assert out["audio"]["start"] == pytest.approx(0.0, abs=0.001)
    assert out["audio"]["end"] == pytest.approx(float(t0 + 3 - want[0]), abs=0.03)


def test_hamilton_full_round_trip_is_faithful(hamilton, tmp_path):
    """Whole clip: every frame, the exact timestamps (it starts at 0.85 s) and the audio bits."""
    dst = tmp_path / "out.mkv"
    stats = transcode_video(hamilton, dst, identity, VideoConfig(crf=30))
    with av.open(str(hamilton)) as c:
        want = [f.pts * f.time_base for f in c.decode(video=0)]
    with av.open(str(hamilton)) as c:
        want_audio = [bytes(p) for p in c.demux(audio=0) if p.size]
    out = read_video(dst)
    assert stats.frames_out == len(out["times"]) == len(want) == 275
    assert out["times"] == [Fraction(round(t * 1000), 1000) for t in want]  # Matroska keeps ms
    assert out["audio"]["packets"] == want_audio
    assert stats.audio_copied and not stats.audio_reencoded


# ----------------------------------------------------------------------------- trimming


def test_start_end_trim_exact_frames_and_rebased(tmp_path):
    src = make_clip(tmp_path / "in.mp4", n=50, gop=10)  # 2 s at 25 fps, keyframe every 0.4 s
    dst = tmp_path / "out.mp4"
    stats = transcode_video(src, dst, identity, VideoConfig(start=0.5, end=1.5))
    out = read_video(dst)
    # first frame at or after 0.5 s is frame 13 (0.52 s); last before 1.5 s is frame 37 (1.48 s)
    assert out["index"] == list(range(13, 38))
    assert out["times"] == [Fraction(i, 25) for i in range(25)]
    assert stats.frames_in == stats.frames_out == 25
    assert out["audio"]["start"] == pytest.approx(0.0, abs=0.001)
    assert out["audio"]["end"] == pytest.approx(1.5 - 0.52, abs=0.03)
    assert stats.audio_reencoded


def test_start_on_a_frame_boundary_keeps_that_frame(tmp_path):
    src = make_clip(tmp_path / "in.mp4", n=30, audio=False)
    dst = tmp_path / "out.mp4"
    transcode_video(src, dst, identity, VideoConfig(start=0.4))  # exactly frame 10
    assert read_video(dst)["index"] == list(range(10, 30))


def test_end_only_keeps_timestamps(tmp_path):
    src = make_clip(tmp_path / "in.mp4", n=30)
    dst = tmp_path / "out.mkv"
    transcode_video(src, dst, identity, VideoConfig(end=0.5))
    out = read_video(dst)
    assert out["times"] == [Fraction(i, 25) for i in range(13)]
    assert out["audio"]["end"] == pytest.approx(0.5, abs=0.03)


def test_start_after_the_end_is_an_error(clip, tmp_path):
    with pytest.raises(ConfigError):
        transcode_video(clip, tmp_path / "out.mp4", identity, VideoConfig(start=5.0))
    assert dir_listing(tmp_path) == ["in.mp4"]


def test_end_before_start_is_a_config_error(clip, tmp_path):
    with pytest.raises(ConfigError, match="end"):
        transcode_video(clip, tmp_path / "out.mp4", identity, VideoConfig(start=0.5, end=0.2))


# ----------------------------------------------------------------------------- rotation


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv", ".avi"])
def test_rotated_input_is_processed_and_written_upright(tmp_path, suffix):
    """Frames reach ``process`` as displayed; the output is upright with no display matrix."""
    plain = make_clip(tmp_path / "plain.mp4", n=5, audio=False)
    rotated = tmp_path / "rotated.mp4"
    subprocess.run(
        [ffmpeg(), "-v", "error", "-y", "-display_rotation", "90", "-i", str(plain), "-c", "copy", str(rotated)],
        check=True,
    )
    info = probe_video(rotated)
    assert info.rotation == 270 and not info.mirrored  # 90 deg counter-clockwise = 270 clockwise
    assert (info.width, info.height) == (48, 64)  # as displayed
    seen = []
    dst = tmp_path / f"out{suffix}"
    stats = transcode_video(rotated, dst, lambda fr: (seen.append(f.copy()) or f for f in fr), VideoConfig())
    assert [f.shape for f in seen] == [(64, 48, 3)] * 5  # frames are processed as displayed
    # turned 90 deg counter-clockwise: the stored bars (columns, frame number's bits) are rows now
    assert [frame_index(np.rot90(f, -1)) for f in seen] == list(range(5))
    assert (stats.width, stats.height) == (48, 64)
    out = read_video(dst)
    assert out["rotation"] == 0 and out["sizes"] == {(48, 64)}
    assert probe_video(dst).rotation == 0


# ----------------------------------------------------------------------------- failures leave nothing


class Boom(RuntimeError):
    pass


def failing_after(n: int, exc: BaseException):
    def process(frames):
        for i, f in enumerate(frames):
            if i == n:
                raise exc
            yield f

    return process


@pytest.mark.parametrize("exc", [Boom("detector crashed"), KeyboardInterrupt()])
def test_exception_in_process_leaves_no_output(clip, tmp_path, exc):
    dst = tmp_path / "out.mp4"
    with pytest.raises(type(exc)):
        transcode_video(clip, dst, failing_after(7, exc), VideoConfig())
    assert dir_listing(tmp_path) == ["in.mp4"]


def test_failure_keeps_existing_destination_untouched(clip, tmp_path):
    dst = tmp_path / "out.mp4"
    dst.write_bytes(b"previous result")
    with pytest.raises(Boom):
        transcode_video(clip, dst, failing_after(3, Boom()), VideoConfig())
    assert dst.read_bytes() == b"previous result"
    assert dir_listing(tmp_path) == ["in.mp4", "out.mp4"]


def test_exception_in_on_frame_leaves_no_output(clip, tmp_path):
    def on_frame(n):
        if n == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        transcode_video(clip, tmp_path / "out.mp4", identity, VideoConfig(), on_frame=on_frame)
    assert dir_listing(tmp_path) == ["in.mp4"]


def test_process_yielding_fewer_frames_is_an_error(clip, tmp_path):
    def drop_last(frames):
        frames = list(frames)
        yield from frames[:-1]

    with pytest.raises(ProcessingError, match="19 frames for 20"):
        transcode_video(clip, tmp_path / "out.mp4", drop_last, VideoConfig())
    assert dir_listing(tmp_path) == ["in.mp4"]


def test_process_yielding_more_frames_is_an_error(clip, tmp_path):
    def doubled(frames):
        for f in frames:
            yield f
            yield f

    with pytest.raises(ProcessingError, match="more frames"):
        transcode_video(clip, tmp_path / "out.mp4", doubled, VideoConfig())
    assert dir_listing(tmp_path) == ["in.mp4"]


def test_process_stopping_early_is_an_error(clip, tmp_path):
    def first_five(frames):
        for _, f in zip(range(5), frames):
            yield f

    with pytest.raises(ProcessingError, match="stopped"):
        transcode_video(clip, tmp_path / "out.mp4", first_five, VideoConfig())
    assert dir_listing(tmp_path) == ["in.mp4"]


@pytest.mark.parametrize(
    "bad",
    [np.zeros((48, 64, 3), np.float32), np.zeros((48, 64), np.uint8), np.zeros((49, 64, 3), np.uint8), "frame"],
)
def test_process_yielding_a_wrong_frame_is_an_error(clip, tmp_path, bad):
    with pytest.raises(ProcessingError, match="expected uint8"):
        transcode_video(clip, tmp_path / "out.mp4", lambda frames: (bad for _ in frames), VideoConfig())
    assert dir_listing(tmp_path) == ["in.mp4"]


# ----------------------------------------------------------------------------- bad input


def test_truncated_real_file_is_rejected(hamilton, tmp_path):
    data = hamilton.read_bytes()
    src = tmp_path / "half.mp4"
    src.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: cannot open
    with pytest.raises((CorruptMediaError, UnsupportedMediaError)):
        transcode_video(src, tmp_path / "out.mp4", identity, VideoConfig())
    with pytest.raises(CorruptMediaError, match="half.mp4"):
        probe_video(src)
    assert dir_listing(tmp_path) == ["half.mp4"]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_file_truncated_mid_stream_fails_closed(tmp_path, suffix):
    """Index at the front, data cut: opens fine, breaks mid-way -> CorruptMediaError, no output."""
    whole = make_clip(tmp_path / f"whole{suffix}", size=(128, 96), n=50)
    if suffix == ".mp4":
        fast = tmp_path / "fast.mp4"
        cmd = [ffmpeg(), "-v", "error", "-i", str(whole), "-c", "copy", "-movflags", "+faststart", str(fast)]
        subprocess.run(cmd, check=True)
        whole = fast
    data = whole.read_bytes()
    src = tmp_path / f"cut{suffix}"
    src.write_bytes(data[: int(len(data) * 0.8)])
    probe_video(src)  # the head is fine
    seen = []
    with pytest.raises(CorruptMediaError, match=f"cut{suffix}"):
        transcode_video(src, tmp_path / "out.mp4", lambda fr: (seen.append(1) or f for f in fr), VideoConfig())
    assert 0 < len(seen) < 50
    assert "out.mp4" not in dir_listing(tmp_path)
    assert not [n for n in dir_listing(tmp_path) if n.startswith(".")]


def test_empty_file(tmp_path):
    src = tmp_path / "empty.mp4"
    src.touch()
    with pytest.raises(CorruptMediaError, match="empty.mp4"):
        transcode_video(src, tmp_path / "out.mp4", identity, VideoConfig())
    assert dir_listing(tmp_path) == ["empty.mp4"]


@pytest.mark.parametrize("content", [b"this is not a video\n" * 50, bytes(range(256)) * 40])
def test_not_a_video(tmp_path, content):
    src = tmp_path / "notes.mp4"
    src.write_bytes(content)
    with pytest.raises(UnsupportedMediaError, match="notes.mp4"):
        transcode_video(src, tmp_path / "out.mp4", identity, VideoConfig())
    assert dir_listing(tmp_path) == ["notes.mp4"]


def test_audio_only_file_has_no_video_stream(tmp_path):
    src = tmp_path / "sound.mp4"
    subprocess.run([ffmpeg(), "-v", "error", "-f", "lavfi", "-i", "sine=d=0.3", "-c:a", "aac", str(src)], check=True)
    with pytest.raises(UnsupportedMediaError, match="no video stream"):
        probe_video(src)


def test_missing_input(tmp_path):
    with pytest.raises(MediaNotFoundError, match="nope.mp4"):
        transcode_video(tmp_path / "nope.mp4", tmp_path / "out.mp4", identity, VideoConfig())
    with pytest.raises(MediaNotFoundError):
        probe_video(tmp_path / "nope.mp4")
    assert dir_listing(tmp_path) == []


def test_huge_dimensions_are_refused(tmp_path):
    src = tmp_path / "wide.mkv"
    lavfi = ["-f", "lavfi", "-i", "color=s=16400x16:d=0.04", "-frames:v", "1"]
    subprocess.run([ffmpeg(), "-v", "error", *lavfi, "-c:v", "ffv1", str(src)], check=True)
    with pytest.raises(MediaTooLargeError, match="16400x16"):
        probe_video(src)
    with pytest.raises(MediaTooLargeError):
        transcode_video(src, tmp_path / "out.mp4", identity, VideoConfig())
    assert dir_listing(tmp_path) == ["wide.mkv"]


# ----------------------------------------------------------------------------- bad output / settings


def test_output_dir_missing(clip, tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        transcode_video(clip, tmp_path / "no" / "such" / "out.mp4", identity, VideoConfig())
    assert dir_listing(tmp_path) == ["in.mp4"]


def test_output_under_a_file_is_unwritable(clip, tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(OutputError, match="not a directory") as err:
        transcode_video(clip, tmp_path / "file.txt" / "out.mp4", identity, VideoConfig())
    assert "\n" not in str(err.value)
    assert dir_listing(tmp_path) == ["file.txt", "in.mp4"]


def test_unknown_codec_is_a_config_error(clip, tmp_path):
    with pytest.raises(ConfigError, match="unknown video codec 'divx'") as err:
        transcode_video(clip, tmp_path / "out.mp4", identity, VideoConfig(codec="divx"))
    assert "\n" not in str(err.value)


def test_unknown_output_suffix_is_a_config_error(clip, tmp_path):
    with pytest.raises(ConfigError, match=".gif"):
        transcode_video(clip, tmp_path / "out.gif", identity, VideoConfig())


def test_mpeg4_fallback_codec_in_mp4(clip, tmp_path):
    dst = tmp_path / "out.mp4"
    transcode_video(clip, dst, identity, VideoConfig(codec="mpeg4"))
    out = read_video(dst)
    assert out["codec"] == "mpeg4" and len(out["times"]) == 20
    assert out["times"] == read_video(clip)["times"]


# ----------------------------------------------------------------------------- atomic_output


def test_atomic_output_renames_on_success_and_cleans_up_on_interrupt(tmp_path):
    dst = tmp_path / "a.bin"
    with atomic_output(dst, ".bin") as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".bin" and tmp.exists()
        tmp.write_bytes(b"done")
    assert dst.read_bytes() == b"done" and dir_listing(tmp_path) == ["a.bin"]
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(dst, ".bin") as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert dst.read_bytes() == b"done" and dir_listing(tmp_path) == ["a.bin"]


def test_process_may_reuse_its_output_buffer(clip, tmp_path):
    """Frames are copied for the encoder thread before ``process`` runs on: a process that
    writes every result into one buffer still gets each frame written as it was."""

    def one_buffer(frames):
        buf = None
        for i, f in enumerate(frames):
            buf = np.empty_like(f) if buf is None else buf
            buf[:] = pattern(i, f.shape[1], f.shape[0])
            yield buf

    dst = tmp_path / "out.mp4"
    transcode_video(clip, dst, one_buffer, VideoConfig())
    index = read_video(dst)["index"]
    assert index == list(range(len(index))) and len(index) == 20


def test_an_encoder_failure_mid_run_leaves_no_output(clip, tmp_path, monkeypatch):
    """The encoder thread's error stops the run (one line, OutputError) and nothing is written."""
    fail_encoder_at(monkeypatch, 6, OutputError("cannot write the output of in.mp4 (No space left on device); nothing written"))
    with pytest.raises(OutputError, match="No space left"):
        transcode_video(clip, tmp_path / "out.mp4", identity, VideoConfig())
    assert dir_listing(tmp_path) == ["in.mp4"]
    assert not [t for t in threading.enumerate() if t.name == "veil-encoder"]


def test_the_input_is_opened_once_and_its_info_comes_before_the_frames(clip, tmp_path, monkeypatch):
    """Issue #13: one open per run (frame 0 decoded once); ``on_info`` gets the VideoInfo
    before ``process`` sees a frame, and it is the description probe_video gives."""
    opens, events = [], []
    real_open = av.open

    def counting_open(target, *args, **kwargs):
        if str(target) == str(clip):
            opens.append(target)
        return real_open(target, *args, **kwargs)

    def process(frames):
        for f in frames:
            events.append("frame")
            yield f

    expected = probe_video(clip)
    monkeypatch.setattr(av, "open", counting_open)
    stats = transcode_video(clip, tmp_path / "out.mp4", process, VideoConfig(), on_info=lambda i: events.append(i))
    assert len(opens) == 1
    assert events[0] == expected and events[1:] == ["frame"] * 20 and stats.frames_out == 20
    assert read_video(tmp_path / "out.mp4")["index"] == list(range(20))


def test_decoding_runs_ahead_on_its_own_thread_and_stops_with_the_run(clip, tmp_path):
    """Decode + RGB conversion overlap ``process`` (issue #14): a reader thread is alive while
    frames are processed, and neither it nor the encoder thread outlives the run, even when
    ``process`` fails."""
    seen = []

    def watching(frames):
        for i, f in enumerate(frames):
            seen.append({t.name for t in threading.enumerate()} >= {"veil-reader", "veil-encoder"})
            if i == 10:
                raise RuntimeError("detector exploded")
            yield f

    with pytest.raises(RuntimeError, match="exploded"):
        transcode_video(clip, tmp_path / "out.mp4", watching, VideoConfig())
    assert seen and all(seen)
    assert not [t for t in threading.enumerate() if t.name in ("veil-reader", "veil-encoder")]
    assert dir_listing(tmp_path) == ["in.mp4"]


@pytest.mark.parametrize("frames", [1, 2, 4])
def test_a_clip_of_a_few_frames_is_read_to_its_end(tmp_path, frames):
    """A clip so short that probing frame 0 reads it to its end (and drains the decoder):
    every frame comes out, none is reported as damaged (the reader used to fail on the
    decoder's second flush with "cannot decode video (End of file)")."""
    from veil.io.video import decode_video

    src = tmp_path / "short.mp4"
    with av.open(str(src), "w") as out:
        st = out.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt = 320, 240, "yuv420p"
        for i in range(frames):
            img = np.full((240, 320, 3), 40 * i, np.uint8)
            out.mux(st.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(st.encode())
    got = list(decode_video(src, VideoConfig()))
    assert len(got) == frames
    assert [round(float(arr.mean()) / 40) for arr, _ in got] == list(range(frames))  # in order, none repeated
