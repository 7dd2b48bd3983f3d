"""The CLI's surface for newcomers: --version, several inputs, flags named in errors, CSS
colours, --audio keep|drop, and progress without a terminal (real photos and clips)."""

from __future__ import annotations

import json
import logging

import av
import numpy as np
import pytest
from PIL import Image

import veil
from helpers import run
from veil.cli import progress as progress_mod


@pytest.fixture
def photos(tmp_path, astronaut, grace_hopper):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(astronaut).save(src / "astronaut.png")
    Image.fromarray(grace_hopper).save(src / "hopper.jpg", quality=95)
    return src


def test_version():
    res = run("--version")
    assert res.exit_code == 0 and res.output.strip() == f"veil {veil.__version__}"


def test_several_inputs_into_one_folder(photos, tmp_path, astronaut):
    out, report = tmp_path / "out", tmp_path / "r.json"
    res = run("anonymize", photos / "astronaut.png", photos / "hopper.jpg", "-o", out, "--report", report, "-q")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.png", "astronaut.png.veil.json", "hopper.jpg",
                                                     "hopper.jpg.veil.json"]  # each with its signed provenance
    after = np.asarray(Image.open(out / "astronaut.png").convert("RGB"))
    assert after.shape == astronaut.shape and (after != astronaut).any()
    assert [i["status"] for i in json.loads(report.read_text())["items"]] == ["ok", "ok"]


def test_several_inputs_default_names_and_a_bad_one(photos, tmp_path):
    res = run("anonymize", photos / "astronaut.png", tmp_path / "missing.jpg", photos / "hopper.jpg", "-q")
    assert res.exit_code == 3  # like a folder run: the others are done, the failure is reported
    assert (photos / "astronaut_anonymized.png").is_file() and (photos / "hopper_anonymized.jpg").is_file()
    assert "missing.jpg" in res.output


def test_several_inputs_refused_before_any_work(photos, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "astronaut.png").write_bytes((photos / "astronaut.png").read_bytes())
    out = tmp_path / "out"
    res = run("anonymize", photos / "astronaut.png", other / "astronaut.png", "-o", out)
    assert res.exit_code == 2 and "both be written" in res.output and not out.exists()
    afile = tmp_path / "a.png"
    afile.write_bytes(b"x")
    res = run("anonymize", photos / "astronaut.png", photos / "hopper.jpg", "-o", afile)
    assert res.exit_code == 4 and "must be a folder" in res.output


@pytest.mark.parametrize("args, flag, internal", [
    (["--filter", "solid", "--color", "nope"], "--color", "render.color"),
    (["--strength", "99"], "--strength", "render.strength"),
    (["--crf", "80"], "--crf", "video.crf"),
    (["--mask-scale", "0.2"], "--mask-scale", "render.mask_scale"),
    (["--only", "a", "--spare", "b"], "--only", "identify"),  # a rule across fields of one section
])
def test_errors_name_the_flag(photos, tmp_path, args, flag, internal):
    res = run("anonymize", photos / "astronaut.png", "-o", tmp_path / "x.png", *args)
    assert res.exit_code == 2 and flag in res.output and internal not in res.output, res.output
    assert not (tmp_path / "x.png").exists()


def test_any_css_colour_name(photos, tmp_path):
    out = tmp_path / "x.png"
    res = run("anonymize", photos / "astronaut.png", "-o", out, "--filter", "solid", "--color", "RebeccaPurple",
              "--shape", "box", "--report", tmp_path / "r.json", "-q")
    assert res.exit_code == 0, res.output
    box = json.loads((tmp_path / "r.json").read_text())["items"][0]["frames"][0]["faces"][0]["box"]
    cx, cy = int((box[0] + box[2]) / 2), int((box[1] + box[3]) / 2)
    assert tuple(np.asarray(Image.open(out).convert("RGB"))[cy, cx]) == (102, 51, 153)


@pytest.fixture(scope="module")
def short_clip(hamilton, tmp_path_factory):
    """The first second of the hamilton clip (video and audio), cut without re-encoding."""
    src = hamilton
    dst = tmp_path_factory.mktemp("clip") / "hamilton_1s.mp4"
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in (inp.streams.video[0], inp.streams.audio[0])}
        for packet in inp.demux(*(inp.streams.video[0], inp.streams.audio[0])):
            if packet.dts is None or packet.pts is None:
                continue
            if float(packet.pts * packet.time_base) > 1.0:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    return dst


@pytest.mark.parametrize("choice, kept", [("keep", True), ("drop", False)])
def test_audio_keep_or_drop(short_clip, tmp_path, choice, kept):
    out = tmp_path / f"{choice}.mp4"
    res = run("anonymize", short_clip, "-o", out, "--audio", choice, "--report", tmp_path / "r.json", "-q")
    assert res.exit_code == 0, res.output
    with av.open(str(out)) as c:
        assert bool(c.streams.audio) is kept and len(c.streams.video) == 1
    assert json.loads((tmp_path / "r.json").read_text())["manifest"]["settings"]["video"]["copy_audio"] is kept


def test_audio_choice_is_checked(photos):
    res = run("anonymize", photos / "astronaut.png", "--audio", "mute")
    assert res.exit_code == 2 and "--audio" in res.output


def test_folder_progress_goes_to_the_log_without_a_terminal(photos, short_clip, tmp_path, caplog, monkeypatch):
    """CliRunner's stderr is no terminal: each file, its frames and fps are logged."""
    (photos / "clip.mp4").write_bytes(short_clip.read_bytes())
    monkeypatch.setattr(progress_mod, "LOG_EVERY_S", 0.0)  # a line per frame: no dependence on speed
    caplog.set_level(logging.INFO, logger="veil.progress")
    res = run("anonymize", photos, "-o", tmp_path / "out")
    assert res.exit_code == 0, res.output
    lines = [r.getMessage() for r in caplog.records if r.name == "veil.progress"]
    assert any(m.startswith("[1/3] astronaut.png: done") for m in lines), lines
    assert any(m.startswith("[2/3] clip.mp4: started (") for m in lines), lines
    frames = [m for m in lines if m.startswith("[2/3] clip.mp4: ") and " frames, " in m and m.endswith(" fps")]
    done = next(m for m in lines if m.startswith("[2/3] clip.mp4: done, "))
    n = int(done.split("done, ")[1].split(" ")[0])
    assert n >= 3 and len(frames) == n, lines  # one line per frame written
    assert any(m.startswith("[3/3] hopper.jpg: done") for m in lines), lines


def test_quiet_logs_nothing(photos, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="veil.progress")
    res = run("anonymize", photos, "-o", tmp_path / "out", "-q")
    assert res.exit_code == 0 and not [r for r in caplog.records if r.name == "veil.progress"]


def test_terminal_progress_shows_files_current_file_and_frames(short_clip, tmp_path, monkeypatch):
    """On a terminal: a files bar labelled with the current file, and the video's frames bar."""
    import io

    from rich.console import Console

    from veil.io.video import probe_video
    from veil.report import ItemReport

    monkeypatch.setattr(progress_mod, "console", Console(file=io.StringIO(), force_terminal=True))
    photo = tmp_path / "a.png"
    with progress_mod.RunProgress(files=2, terminal=True) as prog:
        prog.start(photo)
        bar = prog.bar
        assert [t.description for t in bar.tasks] == ["file 1/2: a.png"]  # an image: no frames bar
        prog.done(photo, ItemReport(input=str(photo), kind="image"))
        prog.start(short_clip)
        prog.info(probe_video(short_clip))  # the run's own open of the file gives the frame count
        files, frames = bar.tasks
        assert files.description == f"file 2/2: {short_clip.name}" and files.completed == 1
        assert frames.description == short_clip.name and frames.total and frames.total > 3
        for n in range(1, 4):
            prog.frame(n)
        assert bar.tasks[1].completed == 3
        prog.done(short_clip, ItemReport(input=str(short_clip), kind="video"))
        assert bar.tasks[0].completed == 2
