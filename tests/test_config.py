import pytest
from pydantic import ValidationError

import veil
from veil.api import _config_from
from veil.config import PRESETS, Config, preset
from veil.errors import ConfigError


def test_presets_are_valid_configs():
    assert set(PRESETS) >= {"fast", "balanced", "thorough", "deface"}
    assert preset("balanced") == Config()
    assert preset("deface").detect.max_side == 0 and preset("deface").detect.threshold == 0.2


def test_config_is_frozen():
    with pytest.raises(ValidationError):
        Config().detect.threshold = 0.9  # type: ignore[misc]


@pytest.mark.parametrize(
    "overrides, error",
    [
        (dict(threshold=1.5), "threshold"),
        (dict(mask_scale=0.5), "mask_scale"),
        (dict(color="#zzzzzz"), "colour"),
        (dict(shape="star"), "shape"),
        (dict(nonsense=1), "unknown setting"),
        (dict(crf=99), "crf"),
    ],
)
def test_invalid_settings_give_one_line(overrides, error):
    with pytest.raises(ConfigError, match=error) as exc:
        _config_from(None, "balanced", overrides)
    assert "\n" not in str(exc.value)


def test_flat_overrides_go_to_their_section():
    cfg = _config_from(None, "fast", dict(filter="pixelate", threshold=0.4, crf=25, keep_metadata=True))
    assert cfg.render.filter == "pixelate" and cfg.detect.threshold == 0.4
    assert cfg.video.crf == 25 and cfg.image.keep_metadata
    assert cfg.detect.max_side == PRESETS["fast"].detect.max_side


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("turbo")


def test_public_surface_is_sorted_and_importable():
    assert veil.__all__ == sorted(veil.__all__)
    for name in veil.__all__:
        assert hasattr(veil, name), name
