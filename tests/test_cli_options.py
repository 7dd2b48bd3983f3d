"""The options several commands share are defined once (veil.cli.options): same flag, same
help, same choices everywhere; ``veil stream`` takes the filter, device and identity options
the other commands take; defaults and choices come from veil.config; errors name the flag."""

from __future__ import annotations

import inspect
import json
from typing import get_args

import numpy as np
import pytest
from PIL import Image
from typer.main import get_command

from helpers import run
from veil.cli.common import DeviceName, ShapeName
from veil.cli.main import app
from veil.config import Config, DetectConfig, RenderConfig
from veil.render.base import MaskedFilter
from veil.render.mask import face_regions, mask_regions

SHARING = ("anonymize", "stream", "analyze", "render", "detect")


def _params(name: str) -> dict:
    return {p.name: p for p in get_command(app).commands[name].params}


def test_stream_takes_the_filter_device_and_identity_options_of_anonymize():
    stream, anonymize = _params("stream"), _params("anonymize")
    for name in ("filter", "color", "image", "shape", "mask_scale", "head", "feather", "strength", "allow_weak",
                 "device", "detector", "name_hidden", "spare", "only", "gallery", "key_file"):
        assert name in stream, name
        assert stream[name].opts == anonymize[name].opts, name


def test_a_shared_option_has_one_flag_help_and_type_in_every_command():
    seen: dict[str, tuple] = {}
    for command in SHARING:
        for name, p in _params(command).items():
            if name not in Config.model_fields["render"].annotation.model_fields \
                    and name not in ("threshold", "max_side", "device", "detector", "tile", "preset", "quiet"):
                continue
            shape = (p.opts, p.secondary_opts, p.help, str(getattr(p, "type", None) or getattr(p, "bare_type", None)))
            assert seen.setdefault(name, shape) == shape, f"{command} --{name} differs from another command's"
    assert {"filter", "mask_scale", "device", "threshold"} <= set(seen)


def test_stream_passes_image_device_strength_and_name_hidden_to_the_run(tmp_path):
    png = tmp_path / "mask.png"
    Image.fromarray(np.full((32, 32, 4), 200, np.uint8)).save(png)
    report = tmp_path / "report.json"
    # the source does not exist: the stream fails after the settings are built; the report keeps them
    res = run("stream", tmp_path / "missing.mp4", "-o", tmp_path / "out.mp4", "--filter", "image", "--image", png,
              "--device", "cpu", "--strength", "0.1", "--allow-weak", "--name-hidden", "--mask-scale", "2",
              "--report", report, "-q")
    assert "No such option" not in res.output, res.output
    settings = json.loads(report.read_text())["manifest"]["settings"]
    assert settings["render"]["filter"] == "image" and settings["render"]["image"] == str(png)
    assert settings["render"]["strength"] == 0.1 and settings["render"]["allow_weak"] is True
    assert settings["render"]["mask_scale"] == 2.0
    assert settings["detect"]["device"] == "cpu"
    assert settings["identify"]["name_hidden"] is True


def test_the_mask_scale_default_is_the_configs_everywhere():
    default = RenderConfig().mask_scale
    assert inspect.signature(face_regions).parameters["scale"].default == default
    assert inspect.signature(mask_regions).parameters["scale"].default == default
    assert inspect.signature(MaskedFilter).parameters["mask_scale"].default == default
    for command in ("anonymize", "stream", "render"):
        assert f"(default {default:g})" in _params(command)["mask_scale"].help, command


def test_device_and_shape_choices_are_the_configs():
    assert [d.value for d in DeviceName] == list(get_args(DetectConfig.model_fields["device"].annotation))
    assert [s.value for s in ShapeName] == list(get_args(RenderConfig.model_fields["shape"].annotation))


def test_an_invalid_value_names_the_flag_not_the_setting(tmp_path):
    res = run("anonymize", tmp_path / "in.png", "--max-image-mb", "0")
    assert res.exit_code == 2
    assert "--max-image-mb" in res.output and "max-memory" not in res.output and "max_memory" not in res.output


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    """A plan for a small faceless image (the real detector finds nothing on it)."""
    from veil.api import Anonymizer
    from veil.plan import save_plan

    d = tmp_path_factory.mktemp("plan")
    img = d / "grey.png"
    Image.fromarray(np.full((48, 64, 3), 128, np.uint8)).save(img)
    save_plan(Anonymizer().analyze(img), d / "plan.json")
    return img, d / "plan.json"


def test_render_names_the_flag_of_an_invalid_override(plan, tmp_path):
    img, plan_path = plan
    res = run("render", img, "--plan", plan_path, "-o", tmp_path / "out.png", "--mask-scale", "5")
    assert res.exit_code == 2
    assert "--mask-scale" in res.output and "render.mask_scale" not in res.output
    assert not (tmp_path / "out.png").exists()


def test_render_accepts_allow_weak_for_a_strength_below_the_floor(plan, tmp_path):
    img, plan_path = plan
    weak = run("render", img, "--plan", plan_path, "-o", tmp_path / "weak.png", "--strength", "0.1", "-q")
    assert weak.exit_code == 2 and "--allow-weak" in weak.output
    allowed = run("render", img, "--plan", plan_path, "-o", tmp_path / "weak.png", "--strength", "0.1",
                  "--allow-weak", "--audio", "drop", "-q")
    assert allowed.exit_code == 0, allowed.output
    assert (tmp_path / "weak.png").exists()
