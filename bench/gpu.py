"""End-to-end video speed on a GPU (``--device cuda`` / ``tensorrt``) against the decode+encode floor.

One prepared, unattended run for a machine with an NVIDIA GPU: it times the plain FFmpeg
decode + encode of a 1080p clip (the floor: libx264 at the same ``--x264-preset`` and CRF
veil uses) and then ``Anonymizer.video`` on the same clip for each device x preset x batch
(frames per detector call), and prints one JSON summary on stdout (progress goes to stderr).

What it needs (it checks, says what is missing, and skips that device instead of failing):

- ``cuda``: ``onnxruntime-gpu`` in place of ``onnxruntime`` with CUDA 12 and cuDNN 9 libraries::

      pip uninstall -y onnxruntime && pip install "onnxruntime-gpu[cuda,cudnn]"

  (the extras pull the NVIDIA libraries from PyPI; a system CUDA 12 / cuDNN 9 works too).
- ``tensorrt``: the same, plus TensorRT 10 (``pip install tensorrt-cu12``); engines are built on
  the first frames of each input shape and cached in a temporary folder (the warm-up run).
- the clip: ``$VEIL_DATA/video/pedestrians_1080p.mp4`` (or ``--clip``); without evaluation data
  ``--synthetic`` renders a 1080p clip of real photos (scikit-image's astronaut, matplotlib's
  Grace Hopper) panned and scaled, so faces of several sizes move through the frame.

Each veil run is timed in-process with the model already loaded and warmed up on the first
second of the clip (CUDA kernels chosen, TensorRT engines built), so that the numbers are the
steady state a long video sees; ``startup_s`` (session creation + warm-up) is reported beside
it, and ``faces_hidden`` (face-frames masked) to compare the devices' detections. The
detector's ONNX provider is read back from the session: a run whose session silently fell
back to the CPU is reported as such (``"fell_back_to_cpu": true``), not as a GPU number.

    python bench/gpu.py                                 # cuda and tensorrt, balanced and fast, batch 4 and 16
    python bench/gpu.py --devices cuda --presets balanced --batches 1,4,16,32 --repeat 3
    python bench/gpu.py --devices cpu --frames 8 --presets balanced --batches 2   # dry run on a CPU

Nothing is written inside the repository (outputs go to a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: device -> (the ONNX Runtime provider it needs, what to install when it is missing)
NEEDS = {
    "cpu": ("CPUExecutionProvider", "pip install onnxruntime"),
    "cuda": ("CUDAExecutionProvider", 'pip uninstall -y onnxruntime && pip install "onnxruntime-gpu[cuda,cudnn]"'),
    "tensorrt": ("TensorrtExecutionProvider", 'pip uninstall -y onnxruntime && pip install "onnxruntime-gpu[cuda,cudnn]" tensorrt-cu12'),
}
DEFAULT_CLIP = "video/pedestrians_1080p.mp4"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ffmpeg_exe() -> str:
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg
    except ImportError:
        raise SystemExit("bench/gpu.py needs ffmpeg on PATH or the imageio-ffmpeg package (pip install imageio-ffmpeg)") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def preload_gpu_libraries() -> None:
    """onnxruntime-gpu >= 1.21 can load the CUDA / cuDNN libraries installed from PyPI
    (the ``[cuda,cudnn]`` extras) itself; older versions find them only on the library path."""
    import onnxruntime as ort

    if hasattr(ort, "preload_dlls") and "CUDAExecutionProvider" in ort.get_available_providers():
        try:
            ort.preload_dlls()
        except Exception as exc:  # noqa: BLE001 - a system CUDA may still work; the provider check tells
            log(f"onnxruntime.preload_dlls() failed ({exc}); relying on the system's CUDA libraries")


def requirements(devices: list[str]) -> dict[str, dict]:
    """For each device: is its provider in this onnxruntime, and if not, what to install."""
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    out = {}
    for d in devices:
        provider, install = NEEDS[d]
        ok = provider in available
        out[d] = {"provider": provider, "available": ok, **({} if ok else {"install": install})}
    return out


def probe(path: Path) -> dict:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = sum(1 for p in c.demux(s) if p.size)
        return {"width": s.codec_context.width, "height": s.codec_context.height, "frames": frames,
                "fps": float(s.average_rate) if s.average_rate else None}


def cut(src: Path, dst: Path, frames: int, height: int = 0) -> Path:
    """The first ``frames`` frames of ``src`` (all: 0), scaled to ``height`` lines (0: as they
    are), re-encoded with little loss (CRF 12) to keep faces."""
    cmd = [ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(src), *(["-frames:v", str(frames)] if frames else []),
           *(["-vf", f"scale=-2:{height}"] if height else []), "-c:v", "libx264",
           "-preset", "veryfast", "-crf", "12", "-pix_fmt", "yuv420p", "-an", str(dst)]
    subprocess.run(cmd, check=True)
    return dst


def synthetic(dst: Path, frames: int, fps: int = 25) -> Path:
    """A 1920x1080 clip of real photos moving over a grey background, faces of several sizes."""
    import av
    import cv2
    import numpy as np

    photos = []
    try:
        import skimage.data

        photos.append(skimage.data.astronaut())
    except ImportError:
        pass
    try:
        import matplotlib.cbook

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
            photos.append(cv2.cvtColor(cv2.imdecode(np.frombuffer(fh.read(), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    except Exception:  # noqa: BLE001 - matplotlib missing or without sample data
        pass
    if not photos:
        raise SystemExit("--synthetic needs scikit-image or matplotlib for its photos (or pass --clip)")
    h, w = 1080, 1920
    sizes = [520, 260, 130, 70]  # photo heights: faces from ~200 px down to ~25 px
    with av.open(str(dst), "w") as out:
        st = out.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.options = {"crf": "12", "preset": "veryfast"}
        for i in range(frames):
            canvas = np.full((h, w, 3), 96, np.uint8)
            for k, size in enumerate(sizes):
                p = photos[k % len(photos)]
                ph, pw = size, round(p.shape[1] * size / p.shape[0])
                img = cv2.resize(p, (pw, ph), interpolation=cv2.INTER_AREA)
                x = int((k * 430 + i * (6 + 3 * k)) % (w - pw))
                y = int((k * 250 + 40 * np.sin(i / 9 + k)) % (h - ph))
                canvas[y:y + ph, x:x + pw] = img
            for pkt in st.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
    return dst


def floor(src: Path, tmp: Path, x264_preset: str, crf: int, repeat: int) -> dict:
    """Plain FFmpeg decode + libx264 encode of the clip: the time no anonymizer can beat."""
    times = []
    for r in range(repeat):
        t = time.perf_counter()
        subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(src), "-c:v", "libx264", "-preset", x264_preset,
                        "-crf", str(crf), "-an", str(tmp / f"floor{r}.mp4")], check=True)
        times.append(time.perf_counter() - t)
    return {"seconds": times, "best_s": min(times)}


def parse_variant(text: str) -> tuple[str, str, dict]:
    """``NAME=PRESET:key=value,key=value`` (e.g. ``fast-yn=fast:detector=yunet+centerface,max_side=640``)
    -> (name, preset, overrides); a bare preset name is itself."""
    name, _, rest = text.partition("=") if "=" in text.split(":")[0] else (text, "", text)
    preset, _, sets = rest.partition(":")
    overrides = {}
    for kv in filter(None, sets.split(",")):
        k, _, v = kv.partition("=")
        overrides[k] = int(v) if v.lstrip("-").isdigit() else float(v) if v.replace(".", "", 1).isdigit() else v
    return name, preset, overrides


def veil_run(src: Path, tmp: Path, device: str, preset: str, batch: int, x264_preset: str, crf: int,
             repeat: int, frames: int, warmup_s: float) -> dict:
    import veil

    t0 = time.perf_counter()
    name, preset, overrides = parse_variant(preset)
    settings = dict(preset=preset, device=device, batch=batch, encoder_preset=x264_preset, crf=crf, copy_audio=False, **overrides)
    warm = veil.Anonymizer(**settings, end=warmup_s)  # same detector settings, first second only
    warm.video(src, tmp / "warm.mp4", overwrite=True)
    anon = veil.Anonymizer(**settings)
    if device == "tensorrt":  # an engine per input shape: let every shape of the clip (window batches too) be built once
        anon.video(src, tmp / "warm_full.mp4", overwrite=True)
    startup = time.perf_counter() - t0
    provider = anon.model_info["provider"]
    times, hidden = [], []
    for r in range(repeat):
        t = time.perf_counter()
        item = anon.video(src, tmp / f"{device}_{preset}_{batch}_{r}.mp4", overwrite=True)
        times.append(time.perf_counter() - t)
        n = item.extra["video"]["frames"]
        if n != frames:
            raise SystemExit(f"veil wrote {n} frames of {frames} ({device}, {preset}, batch {batch})")
        hidden.append(item.n_anonymized)
    det_ms = detector_ms(anon, src, batch)
    return {"device": device, "preset": name, "overrides": overrides, "batch": batch, "provider": provider,
            "fell_back_to_cpu": device != "cpu" and provider == "CPUExecutionProvider",
            "seconds": times, "median_s": statistics.median(times), "fps": frames / statistics.median(times),
            "startup_s": startup, "detector_ms_per_frame": det_ms,
            # face-frames hidden in the last run: a GPU run should hide what the CPU run hides
            # (floating-point differences may move a borderline score across the threshold)
            "faces_hidden": hidden[-1]}


def detector_ms(anon, src: Path, batch: int, n: int = 32) -> float:
    """Median ms per frame of the whole-frame detector alone (batches of ``batch`` frames, the
    first ``n`` frames of the clip): how much of a frame's time the network takes."""
    import av

    frames = []
    with av.open(str(src)) as c:
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="rgb24"))
            if len(frames) >= n:
                break
    det = anon.pipeline.detector
    det.detect(frames[:batch], anon.config.detect.threshold)  # warm
    per = []
    for i in range(0, len(frames) - batch + 1, batch):
        t = time.perf_counter()
        det.detect(frames[i:i + batch], anon.config.detect.threshold)
        per.append((time.perf_counter() - t) * 1000 / batch)
    return statistics.median(per) if per else float("nan")


def gpu_name() -> str | None:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=None, help=f"video to anonymize (default: $VEIL_DATA/{DEFAULT_CLIP})")
    ap.add_argument("--synthetic", action="store_true", help="render a 1080p clip of sample photos instead (no data needed)")
    ap.add_argument("--frames", type=int, default=0, help="use only the first N frames (0: all; synthetic: 100)")
    ap.add_argument("--devices", default="cuda,tensorrt", help="comma-separated: cpu, cuda, tensorrt")
    ap.add_argument("--presets", default="balanced,fast", help="semicolon- or comma-separated veil presets; a variant is "
                    "NAME=PRESET:key=value,key=value (then separate with ';')")
    ap.add_argument("--height", type=int, default=0, help="scale the clip to this many lines first (720: a 720p run)")
    ap.add_argument("--batches", default="4,16", help="comma-separated frames per detector call")
    ap.add_argument("--x264-preset", default="veryfast", help="libx264 preset of the floor and of veil (veil's default)")
    ap.add_argument("--crf", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=2, help="timed runs per setting; the median is reported")
    ap.add_argument("--warmup-s", type=float, default=1.0, help="seconds of the clip run once before timing")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a requested device is missing or fell back to the CPU")
    ap.add_argument("--json", type=Path, default=None, help="also write the summary here")
    args = ap.parse_args(argv)

    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    unknown = [d for d in devices if d not in NEEDS]
    if unknown:
        ap.error(f"unknown device(s) {', '.join(unknown)}; choose among {', '.join(NEEDS)}")
    presets = [p.strip() for p in args.presets.split(";" if ";" in args.presets or ":" in args.presets else ",") if p.strip()]
    batches = [int(b) for b in args.batches.split(",")]
    preload_gpu_libraries()
    need = requirements(devices)
    for d, r in need.items():
        if not r["available"]:
            log(f"device {d}: onnxruntime lacks {r['provider']}; skipped. Install with: {r['install']}")

    summary: dict = {"machine": {"python": platform.python_version(), "cpu": f"{platform.machine()}, {os.cpu_count()} cores",
                                 "gpu": gpu_name()},
                     "requirements": need, "settings": {"x264_preset": args.x264_preset, "crf": args.crf, "repeat": args.repeat},
                     "runs": []}
    import onnxruntime as ort

    summary["machine"]["onnxruntime"] = ort.__version__
    with tempfile.TemporaryDirectory(prefix="veil-gpu-bench-") as tmpdir:
        tmp = Path(tmpdir)
        os.environ.setdefault("ORT_TENSORRT_ENGINE_CACHE_ENABLE", "1")  # the TensorRT EP reads these
        os.environ.setdefault("ORT_TENSORRT_CACHE_PATH", str(tmp / "trt"))
        if args.synthetic:
            src = synthetic(tmp / "synthetic_1080p.mp4", args.frames or 100)
            if args.height:
                src = cut(src, tmp / "cut.mp4", 0, args.height)
        else:
            src = args.clip or Path(os.environ.get("VEIL_DATA", ROOT.parent / "shared" / "data")) / DEFAULT_CLIP
            if not src.is_file():
                ap.error(f"clip not found: {src} (pass --clip, set VEIL_DATA, or use --synthetic)")
            if args.frames or args.height:
                src = cut(src, tmp / "cut.mp4", args.frames, args.height)
        info = probe(src)
        summary["clip"] = {"path": str(args.clip or ("synthetic" if args.synthetic else DEFAULT_CLIP)), **info}
        log(f"clip {info['width']}x{info['height']}, {info['frames']} frames")
        fl = floor(src, tmp, args.x264_preset, args.crf, args.repeat)
        fl["fps"] = info["frames"] / fl["best_s"]
        summary["floor"] = fl
        log(f"floor (ffmpeg decode + libx264 {args.x264_preset}): {fl['best_s']:.2f} s, {fl['fps']:.1f} fps")
        for d in devices:
            if not need[d]["available"]:
                continue
            for p in presets:
                for b in batches:
                    r = veil_run(src, tmp, d, p, b, args.x264_preset, args.crf, args.repeat, info["frames"], args.warmup_s)
                    r["x_floor"] = r["median_s"] / fl["best_s"]
                    summary["runs"].append(r)
                    log(f"{d:8s} {p:9s} batch {b:2d}: {r['median_s']:.2f} s, {r['fps']:.1f} fps, {r['x_floor']:.2f}x floor, "
                        f"detector {r['detector_ms_per_frame']:.1f} ms/frame on {r['provider']}")
    text = json.dumps(summary, indent=1)
    if args.json:
        args.json.write_text(text)
    print(text)
    missing = [d for d, r in need.items() if not r["available"]] + [r["device"] for r in summary["runs"] if r["fell_back_to_cpu"]]
    return 1 if args.strict and missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
