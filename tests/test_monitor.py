"""Monitoring on real footage: a darkened, blurred version of a clip alerts; the same clip
re-encoded does not. Plus the drift measures and window selection."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from helpers import ffmpeg, run
from veil.audit import AuditLog
from veil.errors import ConfigError
from veil.monitor import JobStats, MonitorStore, compare
from veil.monitor.drift import ks_binned, psi
from veil.monitor.store import parse_window


@pytest.fixture(scope="module")
def clips(hamilton, tmp_path_factory):
    """The first 3 s of the hamilton clip; the same re-encoded (other CRF and preset); and a
    darker, blurred version (a failing camera, a lens out of focus)."""
    src = hamilton
    d = tmp_path_factory.mktemp("clips")
    ff = ffmpeg()
    steps = {"ref": ["-i", src, "-t", "3", "-an", "-c:v", "libx264", "-crf", "18"],
             "reencoded": ["-i", d / "ref.mp4", "-c:v", "libx264", "-crf", "26", "-preset", "medium"],
             "degraded": ["-i", d / "ref.mp4", "-vf", "eq=brightness=-0.25:gamma=0.6,gblur=sigma=3", "-c:v", "libx264", "-crf", "18"]}
    for name, args in steps.items():
        subprocess.run([ff, "-v", "error", "-y", *map(str, args), str(d / f"{name}.mp4")], check=True, timeout=300)
    return d


def test_degraded_clip_alerts_and_reencoded_clip_does_not(clips, tmp_path):
    runs = {}
    for name in ("ref", "reencoded", "degraded"):
        res = run("anonymize", clips / f"{name}.mp4", "-o", tmp_path / f"{name}_anon.mp4", "-q")
        assert res.exit_code == 0, res.output
        runs[name] = AuditLog().events(kinds=["run.end"])[-1].body["run_id"]
    same = run("monitor", "--reference", f"runs:{runs['ref']}", "--current", f"runs:{runs['reencoded']}",
               "--out", tmp_path / "same")
    assert same.exit_code == 0, same.output
    assert AuditLog().events(kinds=["monitor."]) == []
    drift = run("monitor", "--reference", f"runs:{runs['ref']}", "--current", f"runs:{runs['degraded']}",
                "--out", tmp_path / "drift")
    assert drift.exit_code == 1 and "ALERT" in drift.output
    (alert,) = AuditLog().events(kinds=["monitor.alert"])
    assert {"brightness", "blur"} <= set(alert.body["alerts"])
    rep = json.loads((tmp_path / "drift" / "drift.json").read_text())["data"]
    assert rep["statistics"]["brightness"]["psi"] >= 0.25 and rep["statistics"]["brightness"]["n_current"] > 20
    assert rep["statistics"]["face_size"]["n_reference"] > 100  # face statistics added up during the run
    assert (tmp_path / "drift" / "drift.html").is_file() and (tmp_path / "drift" / "figures" / "brightness.png").is_file()
    assert AuditLog().verify().ok


def test_psi_and_ks_on_histograms():
    a = np.array([10, 20, 30, 40])
    assert psi(a, a * 3) == pytest.approx(0.0, abs=1e-9)
    assert ks_binned(a, a * 3) == (0.0, 1.0)
    d, p = ks_binned(np.array([100, 0, 0, 0]), np.array([0, 0, 0, 100]))
    assert d == 1.0 and p < 1e-6
    assert psi(np.array([50, 50]), np.array([90, 10])) > 0.25


def test_few_values_never_alert():
    ref, cur = JobStats(), JobStats()
    ref.add("brightness", [10.0] * 5)
    cur.add("brightness", [200.0] * 5)
    rep = compare(ref, cur, 1, 1)
    assert rep.alerts == [] and rep.statistics["brightness"]["note"] == "too few values to compare"
    ref.add("brightness", [10.0] * 30)
    cur.add("brightness", [200.0] * 30)
    assert compare(ref, cur, 1, 1).alerts == ["brightness"]


@pytest.mark.parametrize("text, expected", [
    ("runs:ab,cd", {"runs": ["ab", "cd"]}),
    ("2026-01-01..2026-02-01", {"since": "2026-01-01", "until": "2026-02-01"}),
    ("..2026-02-01", {"since": None, "until": "2026-02-01"}),
    ("last week", ConfigError), ("runs:", ConfigError), ("2026-13-01..", ConfigError),
])
def test_windows(text, expected):
    if isinstance(expected, type):
        with pytest.raises(expected):
            parse_window(text)
    else:
        assert parse_window(text) == expected


def test_window_selects_jobs_by_time_and_run():
    store = MonitorStore()
    s = JobStats()
    s.add("brightness", [100.0])
    store.add(s, "r1", None, "image")
    store.add(s, "r2", None, "image")
    assert store.window("runs:r2")[1] == 1
    assert store.window("2000-01-01..")[1] == 2 and store.window("..2000-01-01")[1] == 0
    total, n = store.window("runs:r1,r2")
    assert n == 2 and sum(total.counts["brightness"]) == 2


def test_monitor_with_an_empty_window_is_an_input_error():
    res = run("monitor", "--reference", "runs:nope", "--current", "runs:nope2")
    assert res.exit_code == 3 and "no monitored jobs" in res.output


def test_frame_statistics_come_from_the_run_s_own_decode(clips, tmp_path, monkeypatch):
    """The input is decoded once (issue #13): the monitor's frame statistics are taken as the
    run reads the frames, and they equal those of reading the input again."""
    import av

    from veil.api import Anonymizer
    from veil.audit.outputs import watch
    from veil.monitor import collect_item

    src = clips / "ref.mp4"
    anon = Anonymizer(preset="fast")
    watcher = watch(anon)
    opens, real_open = [], av.open

    def counting_open(target, *args, **kwargs):
        if str(target) == str(src):
            opens.append(target)
        return real_open(target, *args, **kwargs)

    monkeypatch.setattr(av, "open", counting_open)
    item = anon.video(src, tmp_path / "out.mp4")
    sample = watcher.frames(item)
    assert sample.values(item.counts["frames"]) is not None
    from_run = collect_item(item, anon.config, watcher.stats(item), sample)
    assert len(opens) == 1
    read_again = collect_item(item, anon.config, watcher.stats(item))
    assert len(opens) == 2
    assert from_run.counts == read_again.counts and sum(from_run.counts["brightness"]) == item.counts["frames"]
