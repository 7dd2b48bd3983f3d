"""Shared fixtures: real photos and the evaluation data in ``$VEIL_DATA``."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def veil_home(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own veil data directory (audit log, signing key, registry state),
    outside its tmp_path: no test writes to the real user's data directory."""
    home = tmp_path_factory.mktemp("veil_home")
    monkeypatch.setenv("VEIL_HOME", str(home))
    monkeypatch.delenv("VEIL_ACTOR", raising=False)
    return home


def data_root() -> Path:
    return Path(os.environ.get("VEIL_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``$VEIL_DATA`` (default ``../shared/data``). Skips when absent, except in CI."""
    root = data_root()
    if not root.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"evaluation data not found at {root} (set VEIL_DATA)")
        pytest.skip(f"evaluation data not found at {root}")
    return root


@pytest.fixture
def procs():
    """Child processes started by a test; killed (by their pid) on teardown whatever happened."""
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=10)


@pytest.fixture
def default_signals():
    """SIGINT raising KeyboardInterrupt, SIGTERM and SIGHUP at their default action, in this
    process for the test's duration, whatever was inherited: a script's background jobs start
    with SIGINT ignored, ``nohup`` ignores SIGHUP, and an ignored signal stays ignored across
    fork and exec. Children started meanwhile therefore begin with them at their default
    action too (exec resets handled signals to the default), so a test of signal handling does
    not depend on how it was run."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    yield
    for s, handler in saved.items():
        signal.signal(s, handler if handler is not None else signal.SIG_DFL)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut (Eileen Collins), RGB uint8, one clear face."""
    import skimage.data

    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def grace_hopper() -> np.ndarray:
    """matplotlib's sample photo of Grace Hopper, RGB uint8, one face."""
    import matplotlib.cbook
    from PIL import Image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
        return np.asarray(Image.open(fh).convert("RGB"))


def require(path: Path, what: str) -> Path:
    """``path`` if it exists; otherwise skip (fail in CI) naming ``what``."""
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{what} not found at {path}")
        pytest.skip(f"{what} not found at {path}")
    return path


@pytest.fixture(scope="session")
def hamilton(data_dir) -> Path:
    """The short hamilton clip: 640x360, 29.97 fps, H.264 with AAC audio, a stage with
    several performers, an edit at frame 20."""
    return require(data_dir / "video" / "hamilton" / "short_hamilton_clip.mp4", "video/hamilton clip")


@pytest.fixture(scope="session")
def wider_dev(data_dir) -> Path:
    """The WIDER FACE dev split folder (gt, difficulty, demographics, images)."""
    root = data_dir / "widerface-dev"
    require(root / "wider_dev_bbx_gt.txt", "WIDER FACE dev split")
    return root


@pytest.fixture(scope="session")
def fairface_dev(data_dir) -> Path:
    """The FairFace dev crops folder (labels.csv, val/)."""
    root = data_dir / "fairface-dev"
    require(root / "labels.csv", "FairFace dev split")
    return root
