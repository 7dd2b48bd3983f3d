"""bench/gpu.py, the prepared GPU speed run, as a dry run on the CPU: it must run unattended
and print its JSON summary, say what a missing device needs, and never count a CPU run as a
GPU one. (Its timings are not checked: they depend on the machine.)"""

import json
import subprocess
import sys
from pathlib import Path

import onnxruntime as ort
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu.py"


def test_help_says_what_it_needs():
    out = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True).stdout
    assert "onnxruntime-gpu" in out and "--devices" in out and "--synthetic" in out


def test_unknown_device_is_refused():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--devices", "tpu", "--synthetic"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown device" in proc.stderr


def test_dry_run_on_cpu(tmp_path):
    pytest.importorskip("skimage")
    summary_file = tmp_path / "gpu.json"
    cmd = [sys.executable, str(SCRIPT), "--synthetic", "--frames", "4", "--devices", "cpu,cuda", "--presets", "balanced",
           "--batches", "2", "--repeat", "1", "--warmup-s", "0.05", "--json", str(summary_file)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary == json.loads(summary_file.read_text())
    assert summary["clip"]["width"] == 1920 and summary["clip"]["height"] == 1080 and summary["clip"]["frames"] == 4
    assert summary["floor"]["best_s"] > 0
    cpu_runs = [r for r in summary["runs"] if r["device"] == "cpu"]
    assert len(cpu_runs) == 1
    run = cpu_runs[0]
    assert run["provider"] == "CPUExecutionProvider" and not run["fell_back_to_cpu"]
    assert run["preset"] == "balanced" and run["batch"] == 2
    assert run["fps"] > 0 and run["x_floor"] > 0 and run["detector_ms_per_frame"] > 0
    assert run["faces_hidden"] >= 4  # the synthetic clip's large face, at least, in every frame
    cuda = summary["requirements"]["cuda"]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert cuda["available"]
    else:  # skipped, with the install line, not failed and not run on the CPU under its name
        assert not cuda["available"] and "onnxruntime-gpu" in cuda["install"]
        assert not [r for r in summary["runs"] if r["device"] == "cuda"]
        assert "onnxruntime-gpu" in proc.stderr
    assert not list(tmp_path.glob("*.mp4"))  # outputs stay in the script's own temporary folder
