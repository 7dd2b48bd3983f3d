"""``veil stream`` end to end with the real detector: a real clip piped in, and a real
local network stream served by ffmpeg on 127.0.0.1."""

import json
import subprocess

import av

from helpers import ffmpeg, free_port, veil_cmd, wait_listening


def count_frames(path):
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_stdin_pipe_to_file(hamilton, tmp_path):
    out, report = tmp_path / "live.mp4", tmp_path / "r.json"
    feed = subprocess.Popen([ffmpeg(), "-loglevel", "error", "-i", str(hamilton), "-t", "2", "-f", "mpegts", "-"],
                            stdout=subprocess.PIPE)
    res = subprocess.run(veil_cmd("stream", "-", "-o", out, "--no-live", "--report", report, "-q"),
                         stdin=feed.stdout, capture_output=True, text=True, timeout=120)
    feed.wait(timeout=30)
    assert res.returncode == 0, res.stderr
    item = json.loads(report.read_text())["items"][0]
    assert item["kind"] == "stream" and item["stream"]["dropped"] == 0
    assert count_frames(out) == item["counts"]["frames"] == item["stream"]["frames_out"] >= 30
    assert item["counts"]["anonymized"] > 0


def test_local_network_stream(hamilton, tmp_path):
    port = free_port()
    server = subprocess.Popen([ffmpeg(), "-loglevel", "error", "-re", "-i", str(hamilton), "-t", "2", "-c:v", "libx264",
                               "-preset", "ultrafast", "-f", "mpegts", f"tcp://127.0.0.1:{port}?listen=1"])
    try:
        wait_listening(port, server)
        out, report = tmp_path / "net.mkv", tmp_path / "r.json"
        res = subprocess.run(veil_cmd("stream", f"tcp://127.0.0.1:{port}", "-o", out, "--reconnect", "0",
                                      "--report", report, "-q"), capture_output=True, text=True, timeout=120)
        item = json.loads(report.read_text())["items"][0]
        # the server ends after 2 s: with reconnects off, a lost connection is an error, and the
        # frames anonymized before it are kept (live policy); late frames were dropped, not sent raw
        assert res.returncode == 3 and "connection lost" in res.stderr
        s = item["stream"]
        assert out.is_file() and count_frames(out) == item["counts"]["frames"] == s["frames_out"] >= 1
        assert s["frames_out"] + s["dropped"] <= s["frames_in"] + 1
        assert item["counts"]["anonymized"] > 0
    finally:
        server.kill()
        server.wait()


def test_unreachable_source_one_line_error(tmp_path):
    port = free_port()
    res = subprocess.run(veil_cmd("stream", f"tcp://127.0.0.1:{port}", "-o", tmp_path / "x.mp4", "--reconnect", "0"),
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 3
    assert len(res.stderr.strip().splitlines()) == 1 and "127.0.0.1" in res.stderr
    assert not (tmp_path / "x.mp4").exists()
