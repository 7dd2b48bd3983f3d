"""The Ray engine on a real two-node Ray cluster on this machine (127.0.0.1 only, 1 CPU and
a small object store per node): folders and videos through ``--engine ray`` give what
``--engine local`` gives, a worker killed mid-job is retried, an item that dies twice or
raises fails cleanly. One cluster per module; it is shut down at the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ray = pytest.importorskip("ray")

from veil import Anonymizer  # noqa: E402
from veil.errors import ConfigError, CorruptMediaError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: Ray would otherwise turn 127.0.0.1 into this machine's outward address: keep the test
#: cluster, its workers and the CLI driver on the loopback address; no usage statistics
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", "RAY_DATA_USAGE_DISABLED": "1"}
NODE = {"num_cpus": 1, "object_store_memory": 100 * 2**20, "node_ip_address": "127.0.0.1"}


@pytest.fixture(scope="module")
def cluster():
    """Two Ray nodes on 127.0.0.1, this process connected as the driver."""
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    saved_env = {k: os.environ.get(k) for k in LOOPBACK_ENV}
    os.environ.update(LOOPBACK_ENV)
    saved_flag, ray_constants.ENABLE_RAY_CLUSTER = ray_constants.ENABLE_RAY_CLUSTER, False
    c = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    try:
        c.add_node(**NODE)
        ray.init(address=c.address, log_to_driver=False)
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import tests/
        yield c
    finally:
        ray.shutdown()
        c.shutdown()
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        for k, v in saved_env.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, astronaut, grace_hopper) -> Path:
    """Twelve photos with faces (two real photos, cropped, mirrored, scaled), one sub-folder,
    one damaged file."""
    root = tmp_path_factory.mktemp("photos")
    (root / "sub").mkdir()
    k = 0
    for name, rgb in (("astronaut", astronaut), ("hopper", grace_hopper)):
        h, w = rgb.shape[:2]
        for variant in (rgb, rgb[:, ::-1], rgb[: h * 3 // 4, w // 8:], rgb[::2, ::2], rgb[h // 8:, : w * 7 // 8], rgb[::-1, ::-1][::-1]):
            where = root / "sub" if k % 3 == 0 else root
            Image.fromarray(np.ascontiguousarray(variant)).save(where / f"{name}_{k}.{'png' if k % 4 == 0 else 'jpg'}", quality=92)
            k += 1
    (root / "damaged.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


@pytest.fixture(scope="module")
def local_out(folder, tmp_path_factory) -> tuple[Path, list]:
    out = tmp_path_factory.mktemp("local") / "out"
    items = Anonymizer().tree(folder, out)
    return out, items


def _media(folder: Path) -> list[Path]:
    """The files below ``folder`` but the signed provenance sidecars (``.veil.json``)."""
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".veil.json"))


def _same_outputs(a: Path, b: Path) -> None:
    files_a, files_b = _media(a), _media(b)
    assert files_a == files_b  # mirrored alike, no .part files left
    for rel in files_a:
        x = np.asarray(Image.open(a / rel).convert("RGB"), np.int16)
        y = np.asarray(Image.open(b / rel).convert("RGB"), np.int16)
        assert x.shape == y.shape, rel
        # one onnxruntime thread per Ray worker vs the default may move a box by a pixel
        assert np.mean(np.abs(x - y) > 2) < 0.002, rel


def test_folder_on_ray_matches_local(cluster, folder, local_out, tmp_path):
    out = tmp_path / "out"
    with Anonymizer(engine="ray") as anon:
        items = anon.tree(folder, out)
    assert ray.is_initialized()  # the cluster it found connected stays connected
    local_dir, local_items = local_out
    _same_outputs(local_dir, out)
    assert [(i.input, i.status, i.counts) for i in items] == [(i.input, i.status, i.counts) for i in local_items]
    assert [i.input for i in anon.report.items] == [i.input for i in items]  # one report, folder order
    bad = [i for i in items if i.status == "error"]
    assert len(bad) == 1 and "damaged.jpg" in bad[0].input
    assert sum(i.counts["anonymized"] for i in items) >= 12
    pids = {i.extra["worker"]["pid"] for i in items if i.status == "ok"}
    assert pids and os.getpid() not in pids  # the work ran in Ray workers


def test_worker_killed_mid_folder_is_retried(cluster, folder, local_out, tmp_path):
    """The worker that finished the first file is killed (SIGKILL, by its pid) while the job
    goes on; Ray restarts it and reruns its file; the outputs are complete and correct."""
    out, killed = tmp_path / "out", []

    def on_item(path, item):
        if not killed and item.status == "ok":
            killed.append(item.extra["worker"]["pid"])
            os.kill(killed[0], signal.SIGKILL)

    with Anonymizer(engine="ray") as anon:
        items = anon.tree(folder, out, on_item=on_item)
    assert killed
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)  # it really died
    _same_outputs(local_out[0], out)
    assert [i.status for i in items] == [i.status for i in local_out[1]]


# -- the executor that segmented videos use --------------------------------------------------

def _square(x: int) -> int:
    return x * x


def _fails_on_three(x: int) -> int:
    if x == 3:
        raise CorruptMediaError("item three is damaged")
    return x


def _count_and_fail(path: str) -> None:
    with open(path, "a") as fh:
        fh.write("attempt\n")
    raise CorruptMediaError("damaged")


def _wait_to_be_killed(args: tuple[str, int]) -> str:
    """Record this worker's pid (one file per attempt) and wait; from attempt ``survive_from``
    on, return at once."""
    folder, survive_from = args
    attempts = sorted(Path(folder).glob("attempt-*"))
    if len(attempts) + 1 >= survive_from:
        return "done"
    (Path(folder) / f"attempt-{len(attempts)}-{os.getpid()}").write_text("")
    time.sleep(120)  # killed long before
    return "not killed"


def _kill_attempts(folder: Path, n: int) -> list[int]:
    """Kill the workers of the first ``n`` attempts as each appears (by the pid it wrote)."""
    pids: list[int] = []
    deadline = time.monotonic() + 120
    while len(pids) < n and time.monotonic() < deadline:
        for f in sorted(folder.glob("attempt-*")):
            pid = int(f.name.split("-")[2])
            if pid not in pids:
                pids.append(pid)
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    return pids


def test_executor_results_in_order_and_errors_unwrapped(cluster, tmp_path):
    from veil.engine.ray_executor import RayExecutor

    seen = []
    ex = RayExecutor(on_done=lambda done, total: seen.append((done, total)))
    assert ex.map(_square, range(5)) == [0, 1, 4, 9, 16]
    assert seen[-1] == (5, 5)
    with pytest.raises(CorruptMediaError, match="item three is damaged"):
        ex.map(_fails_on_three, range(5))
    log = tmp_path / "attempts.txt"
    with pytest.raises(CorruptMediaError):
        ex.map(_count_and_fail, [str(log)])
    assert log.read_text().count("attempt") == 1  # veil's own errors are not retried


@pytest.mark.parametrize("kills, fails", [(1, False), (2, True)])
def test_executor_retries_a_killed_worker_once(cluster, tmp_path, kills, fails):
    from veil.engine.ray_executor import RayExecutor, WorkerLostError

    result: dict = {}

    def run():
        try:
            result["value"] = RayExecutor().map(_wait_to_be_killed, [(str(tmp_path), kills + 1)])
        except BaseException as exc:  # noqa: BLE001 -- checked below
            result["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    pids = _kill_attempts(tmp_path, kills)
    t.join(timeout=180)
    assert not t.is_alive() and len(pids) == kills
    if fails:
        assert isinstance(result.get("error"), WorkerLostError), result
        assert "died 2 times" in str(result["error"])
    else:
        assert result == {"value": ["done"]}


# -- videos and the command line --------------------------------------------------------------

def test_video_on_ray_matches_local(cluster, data_dir, tmp_path):
    """anonymize and analyze of a video in segments on Ray: the local file's frames and the
    local plan."""
    from clips import decode, ffmpeg
    from conftest import require

    src = require(data_dir / "video" / "hamilton" / "short_hamilton_clip.mp4", "hamilton clip")
    clip = tmp_path / "clip.mp4"  # 48 frames, a keyframe every 12: four segments
    subprocess.run([ffmpeg(), "-loglevel", "error", "-y", "-ss", "2", "-i", str(src), "-frames:v", "48", "-c:v", "libx264",
                    "-preset", "veryfast", "-crf", "18", "-g", "12", "-keyint_min", "12", "-sc_threshold", "0",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip)], check=True)
    local = Anonymizer().video(clip, tmp_path / "local.mp4")
    local_plan = Anonymizer().analyze(clip)
    with Anonymizer(engine="ray") as anon:
        anon.engine.segment_s = 0.5
        item = anon.video(clip, tmp_path / "ray.mp4")
        plan = anon.analyze(clip)
    strip = {"created"}
    assert plan.model_dump(exclude=strip) == local_plan.model_dump(exclude=strip)
    assert plan.tracks
    assert item.counts["frames"] == local.counts["frames"] == 48
    assert item.extra["video"]["audio_copied"] and item.extra["engine"]["segments"] >= 2
    a, b = decode(tmp_path / "local.mp4"), decode(tmp_path / "ray.mp4")
    assert len(a) == len(b)
    assert max(float(np.abs(x.astype(int) - y.astype(int)).mean()) for x, y in zip(a, b)) < 2.0


def _pid_then(job: tuple) -> object:
    """The first task of a job records its worker's pid and waits to be killed; the others,
    and its rerun, just run ``fn``."""
    fn, folder, item = job
    try:  # one task only, however many start at once
        os.close(os.open(Path(folder) / "claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return fn(item)
    (Path(folder) / f"attempt-0-{os.getpid()}").write_text("")
    time.sleep(120)
    return fn(item)


def test_worker_killed_mid_video_is_retried(cluster, data_dir, tmp_path, monkeypatch):
    """A segmented video on Ray whose first segment task's worker is killed (by its pid):
    the task runs again, the file is complete and matches the local one."""
    from clips import decode, ffmpeg
    from conftest import require
    from veil.engine.ray_executor import RayExecutor

    src = require(data_dir / "video" / "hamilton" / "short_hamilton_clip.mp4", "hamilton clip")
    clip = tmp_path / "clip.mp4"
    subprocess.run([ffmpeg(), "-loglevel", "error", "-y", "-ss", "2", "-i", str(src), "-frames:v", "36", "-c:v", "libx264",
                    "-preset", "veryfast", "-crf", "18", "-g", "12", "-keyint_min", "12", "-sc_threshold", "0",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip)], check=True)
    marks = tmp_path / "marks"
    marks.mkdir()

    class PidExecutor(RayExecutor):
        def map(self, fn, items):
            return super().map(_pid_then, [(fn, str(marks), it) for it in items])

    local = Anonymizer().video(clip, tmp_path / "local.mp4")
    result: dict = {}
    with Anonymizer(engine="ray") as anon:
        anon.engine.segment_s = 0.3
        monkeypatch.setattr(anon.engine, "executor", lambda on_done=None: (anon.engine.cluster(), PidExecutor())[1])
        t = threading.Thread(target=lambda: result.update(item=anon.video(clip, tmp_path / "ray.mp4")))
        t.start()
        pids = _kill_attempts(marks, 1)
        t.join(timeout=300)
    assert pids and not t.is_alive() and "item" in result
    assert result["item"].counts["frames"] == local.counts["frames"] == 36
    a, b = decode(tmp_path / "local.mp4"), decode(tmp_path / "ray.mp4")
    assert len(a) == len(b) == 36
    assert max(float(np.abs(x.astype(int) - y.astype(int)).mean()) for x, y in zip(a, b)) < 2.0


def test_cli_folder_engine_ray(cluster, folder, local_out, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, **LOOPBACK_ENV}
    r = subprocess.run([sys.executable, "-m", "veil", "anonymize", str(folder), "-o", str(out), "-q",
                        "--engine", "ray", "--address", cluster.address], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 3, r.stderr  # the damaged file, as with --engine local
    assert "damaged.jpg" in r.stderr
    _same_outputs(local_out[0], out)
    for rel in _media(out):  # the driver signs every output the workers wrote
        assert (out / rel).with_name(rel.name + ".veil.json").is_file(), rel


def test_cli_sigterm_on_ray_leaves_nothing_half_written(cluster, folder, tmp_path, procs):
    """SIGTERM (handled like Ctrl-C) once the first file is written: the job is cancelled,
    exit 143, every file in the output folder is complete, no temporary file is left."""
    out = tmp_path / "out"
    run = subprocess.Popen([sys.executable, "-m", "veil", "anonymize", str(folder), "-o", str(out), "-q",
                            "--engine", "ray", "--address", cluster.address], cwd=ROOT, env={**os.environ, **LOOPBACK_ENV},
                           stderr=subprocess.PIPE, text=True)
    procs.append(run)
    deadline = time.monotonic() + 240
    while not (out.is_dir() and _media(out)):
        assert run.poll() is None and time.monotonic() < deadline, "no output before the run ended"
        time.sleep(0.05)
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=120) == 143
    assert "interrupted (SIGTERM)" in run.stderr.read()
    assert not [p for p in out.rglob(".*") if ".part" in p.name]
    for rel in _media(out):
        Image.open(out / rel).load()  # complete, decodable


def test_address_needs_engine_ray():
    with pytest.raises(ConfigError, match="--address needs --engine ray"):
        Anonymizer(address="auto")
    with pytest.raises(ConfigError, match="unknown engine"):
        Anonymizer(engine="spark")


# -- live streams as actors -------------------------------------------------------------------

def test_streams_as_actors_one_killed_and_restarted(cluster, data_dir, tmp_path):
    """Two recorded sources as two stream actors (one per node); the first one's worker is
    killed once it has written frames: Ray restarts it, the stream runs again, and both
    outputs hold every frame, anonymized (a fresh recording, not the interrupted one)."""
    from clips import cut, decode
    from conftest import require
    from veil.io.stream import StreamOptions

    src = require(data_dir / "video" / "hamilton" / "short_hamilton_clip.mp4", "hamilton clip")
    clips = [cut(src, tmp_path / f"cam{k}.mp4", start=1.0 + 3 * k, frames=90) for k in range(2)]
    outs = [tmp_path / f"cam{k}_anon.mp4" for k in range(2)]
    killed: list[int] = []

    def on_update(up):
        if not killed and up[0].get("frames", 0) > 0:
            killed.append(up[0]["pid"])
            os.kill(killed[0], signal.SIGKILL)

    with Anonymizer(engine="ray") as anon:
        items = anon.streams(list(zip(clips, outs)), StreamOptions(live=False), on_update=on_update)
    assert killed, "the first stream ended before it could be killed"
    assert [i.status for i in items] == ["ok", "ok"], [i.error for i in items]
    assert killed[0] not in items[0].extra["workers"]  # the attempt that finished ran in a new process
    for clip, out, item in zip(clips, outs, items):
        assert len(decode(out)) == len(decode(clip)) == item.counts["frames"] == 90
        assert item.counts["anonymized"] > 0
    assert not list(tmp_path.glob(".*.part*"))


def test_streams_need_engine_ray(tmp_path):
    with pytest.raises(ConfigError, match="need --engine ray"):
        Anonymizer().streams([("a.mp4", "b.mp4")])


def test_cli_several_streams_need_engine_ray_and_one_output_each(tmp_path):
    def veil_stream(*args):
        return subprocess.run([sys.executable, "-m", "veil", "stream", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)

    r = veil_stream("a.mp4", "b.mp4", "-o", str(tmp_path / "a"), "-o", str(tmp_path / "b"))
    assert r.returncode == 2 and "several streams at once need --engine ray" in r.stderr
    r = veil_stream("a.mp4", "b.mp4", "-o", str(tmp_path / "a"), "--engine", "ray")
    assert r.returncode == 2 and "give one -o per source" in r.stderr
    assert not list(tmp_path.iterdir())


def test_streams_refuse_an_existing_recording_before_any_actor_starts(tmp_path):
    """Without overwrite, an output file that exists is refused before Ray is even reached
    (engine None here); the actors themselves then write with overwrite, so that one
    restarted after its stream ended replaces its own recording instead of failing on it."""
    from veil.engine.ray_streams import _outputs_checked, run_streams
    from veil.errors import OutputError
    from veil.io.stream import StreamOptions

    taken = tmp_path / "cam1.mp4"
    taken.write_bytes(b"an earlier recording")
    pairs = [("rtsp://127.0.0.1:1/a", str(tmp_path / "cam0.mp4")), ("rtsp://127.0.0.1:1/b", str(taken))]
    with pytest.raises(OutputError, match="cam1.mp4: output exists"):
        run_streams(Anonymizer, None, pairs, StreamOptions(), engine=None)
    assert taken.read_bytes() == b"an earlier recording"
    assert _outputs_checked(pairs, StreamOptions(overwrite=True)).overwrite
    assert _outputs_checked(pairs[:1], StreamOptions()).overwrite
