"""One validated, immutable configuration object shared by the API and the CLI.

The CLI builds a :class:`Config` from a preset plus the flags the user gave; the Python API
takes one directly. Nothing else in veil reads settings from anywhere else, so a run is
fully described by its config (which is why the report embeds it).

Presets are named instances (see :data:`PRESETS`); the numbers behind each choice are in
``docs/benchmarks.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .colors import parse_color
from .errors import ConfigError
from .floors import MIN_STRENGTH

__all__ = ["DEVICES", "SHAPES", "MASK_SCALE", "Config", "DetectConfig", "TrackConfig", "RenderConfig", "VideoConfig", "ImageConfig", "DepthConfig", "IdentifyConfig", "PRESETS", "preset"]


#: execution providers (``--device``) and mask shapes (``--shape``): the CLI's choices are read from these
Device = Literal["auto", "cpu", "cuda", "tensorrt", "openvino"]
Shape = Literal["ellipse", "box"]
DEVICES: tuple[str, ...] = get_args(Device)
SHAPES: tuple[str, ...] = get_args(Shape)
#: mask size relative to the (head) box: the default of ``RenderConfig.mask_scale`` and of the renderers
MASK_SCALE = 1.5


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DetectConfig(_Frozen):
    """How faces are found."""

    detector: str = Field("centerface", description="detector name, see `veil.detect.DETECTOR_NAMES`: centerface, yunet, "
                          "or yunet+centerface (YuNet-n at max_side plus CenterFace at half of it, merged)")
    model_path: Optional[Path] = Field(None, description="user-supplied ONNX file for detectors that need one")
    device: Device = "auto"
    threshold: float = Field(0.2, ge=0.0, le=1.0, description="operating score threshold")
    max_side: int = Field(1280, ge=0, description="detection resolution: long side in pixels, 0 = native")
    tile: bool = Field(False, description="also detect on overlapping full-resolution tiles (small faces)")
    tile_size: int = Field(640, ge=128)
    nms_iou: float = Field(0.3, gt=0.0, le=1.0)
    threads: int = Field(0, ge=0, description="onnxruntime intra-op threads of each detector session; 0 = onnxruntime's "
                         "default (one per physical core). The Ray engine sets it to each worker's CPUs (veil.engine)")
    precision: Literal["fp32", "int8"] = Field(
        "fp32", description="int8: a quantized copy of the model (faster on CPUs with VNNI/AMX), "
        "made once and cached; see veil.detect.quantize")
    scales: tuple[float, ...] = Field((), description="extra passes at these factors of the native size (2.0 = upscaled), "
                                      "for small faces; see veil.detect.augment")
    flip: bool = Field(False, description="extra pass on the mirrored frame")
    rotations: tuple[int, ...] = Field((), description="extra passes on the frame turned clockwise by these angles "
                                       "(90, 180, 270), for faces lying on their side in the scene; see veil.detect.augment")
    low_light: bool = Field(True, description="extra pass on dark frames only, brightened and denoised (veil.detect.lowlight); "
                            "costs nothing on normal frames")
    low_light_level: float = Field(50.0, ge=0.0, le=255.0, description="mean luma (0-255) below which a frame counts as dark")
    low_light_bright_end: float = Field(256.0, ge=0.0, le=256.0, description="...and its 99th-percentile luma below this "
                                        "(256: any). 100 leaves night scenes with lights and lit stages alone: half the "
                                        "detection time there, fewer faces covered (docs/benchmarks.md 8.2)")

    @field_validator("rotations")
    @classmethod
    def _check_rotations(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(r not in (90, 180, 270) for r in v) or len(set(v)) != len(v):
            raise ValueError(f"rotations are distinct clockwise angles among 90, 180, 270, got {v}")
        return v

    @field_validator("scales")
    @classmethod
    def _check_scales(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0.1 <= s <= 4.0 for s in v):
            raise ValueError(f"scales must be between 0.1 and 4.0, got {v}")
        return v


class TrackConfig(_Frozen):
    """Temporal consistency for video (see veil.track)."""

    tracking: bool = Field(True, description="track faces across frames; off = independent frames")
    detect_every: int = Field(1, ge=1, le=30, description="run the detector on every k-th frame, track in between")
    roi_between: bool = Field(True, description="with detect_every > 1: on the frames in between, look for each tracked "
                              "face in a small window around its predicted position (cheap)")
    low_threshold: float = Field(0.1, ge=0.0, le=1.0, description="lowest score that may continue a track")
    coast_s: float = Field(0.5, ge=0.0, le=10.0, description="seconds a lost track keeps its mask")
    lookahead_s: float = Field(1.0, ge=0.0, le=10.0, description="frames held back for gap filling, in seconds")
    pre_s: float = Field(0.2, ge=0.0, le=2.0, description="extend new tracks this far back in time")
    max_buffer_mb: int = Field(512, ge=16, description="memory bound of the look-ahead buffer")
    scene_cut: float = Field(0.3, ge=0.0, le=1.0,
                             description="colour-histogram distance (mean over 2x2 cells) between consecutive frames "
                             "that ends all tracks; 0 = off")
    min_match: float = Field(-0.25, ge=-1.0, le=1.0, description="distance-IoU needed to continue a track")


class RenderConfig(_Frozen):
    """How faces are hidden."""

    filter: str = Field("blur", description="filter name, see `veil.render.FILTERS`")
    shape: Shape = "ellipse"
    mask_scale: float = Field(MASK_SCALE, ge=1.0, le=3.0, description="mask size relative to the (head) box")
    head: bool = Field(True, description="grow face boxes to head boxes: hair above, back of the head when turned")
    feather: float = Field(0.0, ge=0.0, le=0.5, description="soft edge width as a fraction of the mask size")
    strength: float = Field(1.0, gt=0.0, le=10.0, description="filter strength relative to the default (1.0); "
                            "below the filter's measured floor (veil.render: min_strength) only with allow_weak")
    allow_weak: bool = Field(False, description="accept a strength below the filter's floor, where faces may stay "
                             "recognisable (a warning is logged); see docs/benchmarks.md 3.1")
    color: str = Field("#000000", description="solid fill colour, '#rrggbb' or a CSS name")
    image: Optional[Path] = Field(None, description="replacement image (PNG with alpha) for the image filter")

    @field_validator("color")
    @classmethod
    def _check_color(cls, v: str) -> str:
        parse_color(v)
        return v

    @property
    def strength_floor(self) -> float:
        """The weakest strength that still hides faces for this filter (0: strength does not matter).

        Measured with ``veil eval privacy --strengths ...`` (docs/benchmarks.md 3.1), listed in
        :mod:`veil.floors` (each filter class carries its own as ``min_strength``).
        """
        return MIN_STRENGTH.get(self.filter, 0.0)

    @property
    def weak(self) -> bool:
        """True when ``strength`` is below the filter's floor (only valid with ``allow_weak``)."""
        return self.strength < self.strength_floor

    def weak_message(self) -> str:
        floor = self.strength_floor
        return (f"--strength {self.strength:g} is below the {self.filter} floor {floor:g}: faces may stay recognisable "
                f"or detectable (docs/benchmarks.md 3.1)")

    @model_validator(mode="after")
    def _check_strength_floor(self) -> "RenderConfig":
        if self.weak and not self.allow_weak:
            raise ConfigError(f"{self.weak_message()}; use --strength {self.strength_floor:g} or more, "
                              "or --allow-weak to accept weak anonymization")
        return self


class VideoConfig(_Frozen):
    codec: str = Field("libx264", description="output video codec (PyAV/FFmpeg name)")
    crf: int = Field(20, ge=0, le=51, description="constant rate factor (quality), lower is better")
    encoder_preset: str = Field("veryfast", description="encoder speed preset, where the codec has one")
    copy_audio: bool = True
    start: Optional[float] = Field(None, ge=0.0, description="seconds from the start")
    end: Optional[float] = Field(None, gt=0.0, description="seconds from the start")
    batch: int = Field(4, ge=1, le=64, description="frames per detector call")


class ImageConfig(_Frozen):
    keep_metadata: bool = Field(False, description="keep EXIF/XMP (GPS tags are removed regardless)")
    quality: int = Field(95, ge=1, le=100, description="JPEG/WebP quality")
    max_pixels: int = Field(200_000_000, ge=1, description="refuse larger images (decompression bombs)")
    max_memory_mb: int = Field(2048, ge=1, description="refuse images that need more memory to decode, anonymize and write (MB, estimated from the header)")


class DepthConfig(_Frozen):
    """Distance of each face to the camera, and rules that use it (see veil.depth)."""

    focal_px: Optional[float] = Field(None, gt=0, description="focal length in pixels (used when the image has no EXIF focal length)")
    hfov: Optional[float] = Field(None, gt=0, lt=180, description="horizontal field of view in degrees (when neither EXIF nor focal_px)")
    only_beyond: Optional[float] = Field(None, gt=0, description="anonymize only faces farther than this many metres")
    keep_nearest: Optional[int] = Field(None, ge=0, description="keep the N nearest faces visible, anonymize the others")
    background_beyond: Optional[float] = Field(None, gt=0, description="also blur everything farther than this many metres (needs dense depth)")
    depth_model: Optional[Path] = Field(None, description="ONNX monocular depth model (MiDaS v2.1 small, Depth Anything V2 small)")
    depth_model_kind: Literal["auto", "midas", "depth-anything"] = "auto"
    depth_frames: Optional[Path] = Field(None, description="folder of RGB-D depth frames (16-bit PNG, millimetres), one per frame")
    depth_match: Literal["index", "timestamp"] = Field("index", description="match depth frames by order, or by the number in their name (ms)")
    depth_fps: float = Field(30.0, gt=0, description="frame rate used to match depth frames by timestamp")
    depth_every: int = Field(5, ge=1, le=120, description="run the depth model on every k-th frame, reuse its map in between")
    depth_side: int = Field(256, ge=32, le=1024, description="long side of the depth model's input, pixels")
    hysteresis: float = Field(0.1, ge=0.0, lt=1.0, description="relative margin before a visible track is anonymized again, or a nearest face replaced")
    smooth_frames: int = Field(5, ge=1, le=60, description="per-track median window for distances (video)")
    estimate: bool = Field(False, description="estimate distances for the report even without a distance rule")

    @property
    def active(self) -> bool:
        return bool(self.estimate or self.only_beyond is not None or self.keep_nearest is not None
                    or self.background_beyond is not None or self.depth_model or self.depth_frames)


class IdentifyConfig(_Frozen):
    """Selective anonymization by identity (see veil.identify): spare or target enrolled people."""

    gallery: Optional[Path] = Field(None, description="gallery file (default: gallery.sqlite in the user's data directory)")
    key_file: Optional[Path] = Field(None, description="gallery key file, mode 0600 (default: next to the gallery; $VEIL_GALLERY_KEY wins)")
    spare: tuple[str, ...] = Field((), description="keep these enrolled people visible, anonymize everyone else")
    spare_enrolled: bool = Field(False, description="keep everyone enrolled (and not expired) visible")
    only: tuple[str, ...] = Field((), description="anonymize only these enrolled people (and every uncertain face)")
    embedder: str = Field("dlib", description="face embedder (dlib's 128-d ResNet descriptor)")
    match_threshold: Optional[float] = Field(None, gt=0, description="same-person distance (default: the embedder's, 0.6 for dlib)")
    uncertain_margin: float = Field(0.1, ge=0, description="distances this far above the threshold are 'uncertain' (anonymized)")
    reverify_frames: int = Field(60, ge=1, description="re-embed a track every N frames (sooner for a better view or an uncertain verdict)")
    min_gap: int = Field(20, ge=1, description="at most one embedding per this many face-frames of a track, after the first")
    id_min_face_px: float = Field(32.0, ge=8, description="smallest face (px) that is embedded; smaller faces stay 'pending' (anonymized)")
    name_hidden: bool = Field(False, description="name identified people in reports even when their faces are anonymized "
                                                 "(default: reports name only the people left visible)")

    @model_validator(mode="after")
    def _check_modes(self) -> "IdentifyConfig":
        if self.only and (self.spare or self.spare_enrolled):
            raise ValueError("--only cannot be combined with --spare / --spare-enrolled")
        return self

    @property
    def active(self) -> bool:
        return bool(self.spare or self.only or self.spare_enrolled)


class Config(_Frozen):
    detect: DetectConfig = DetectConfig()
    track: TrackConfig = TrackConfig()
    render: RenderConfig = RenderConfig()
    video: VideoConfig = VideoConfig()
    image: ImageConfig = ImageConfig()
    depth: DepthConfig = DepthConfig()
    identify: IdentifyConfig = IdentifyConfig()

    def updated(self, **sections: dict) -> "Config":
        """Return a new config with some fields of some sections changed, validated.

        ``cfg.updated(detect={"threshold": 0.3}, render={"filter": "pixelate"})``
        """
        data = self.model_dump()
        for section, changes in sections.items():
            if section not in data:
                raise ConfigError(f"unknown config section {section!r}")
            data[section].update({k: v for k, v in changes.items() if v is not None})
        return validated(data)


def validated(data: dict) -> Config:
    """Build a Config, turning pydantic's multi-line error into one clear line."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        own = err.get("ctx", {}).get("error")
        where = ".".join(str(p) for p in err["loc"])
        if isinstance(own, ConfigError):  # a validator's own message already names the flag
            own.setting, own.reason = where, str(own)
            raise own from None
        reason = err["msg"].removeprefix("Value error, ")
        error = ConfigError(f"invalid setting {where}: {reason}")
        error.setting, error.reason = where, reason  # the CLI names its flag instead (veil.cli.common)
        raise error from None


#: Named presets. ``balanced`` is the default. ``deface`` reproduces deface's defaults
#: (native resolution, threshold 0.2) for side-by-side comparisons.
PRESETS: dict[str, Config] = {
    # YuNet-n at 640 px + CenterFace at 320, detector every 3rd frame, CenterFace windows between:
    # vs CenterFace at 640, 0.65x its detection cost, recall at 0.2 hard 0.62 vs 0.49 and easy /
    # medium within 0.004, 0 OTB leaks on all four variants (docs/benchmarks.md §11.1)
    "fast": Config(detect=DetectConfig(detector="yunet+centerface", max_side=640), track=TrackConfig(detect_every=3)),
    "balanced": Config(),
    # native resolution plus passes at half and 1.5x size (small faces): WIDER AP hard 0.799 -> 0.861
    # for about 4x the detection time (docs/benchmarks.md §8)
    "thorough": Config(detect=DetectConfig(max_side=0, scales=(0.5, 1.5))),
    "deface": Config(detect=DetectConfig(max_side=0, threshold=0.2, low_light=False)),
}


def preset(name: str) -> Config:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


