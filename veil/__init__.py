"""veil: privacy-by-design face anonymization for images, video and streams.

The public surface is listed in ``__all__``; everything else is internal.
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("veil")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

from .api import Anonymizer
from .config import PRESETS, Config, DetectConfig, ImageConfig, RenderConfig, VideoConfig, preset
from .errors import (
    ConfigError,
    CorruptMediaError,
    InputError,
    MediaNotFoundError,
    MediaTooLargeError,
    ModelError,
    OutputError,
    ProcessingError,
    UnsupportedMediaError,
    VeilError,
)
from .faces import ANONYMIZE, KEEP, Faces
from .pipeline import FrameResult, Pipeline

__all__ = [
    "ANONYMIZE",
    "Anonymizer",
    "Config",
    "ConfigError",
    "CorruptMediaError",
    "DetectConfig",
    "Faces",
    "FrameResult",
    "ImageConfig",
    "InputError",
    "KEEP",
    "MediaNotFoundError",
    "MediaTooLargeError",
    "ModelError",
    "OutputError",
    "PRESETS",
    "Pipeline",
    "ProcessingError",
    "RenderConfig",
    "UnsupportedMediaError",
    "VeilError",
    "VideoConfig",
    "__version__",
    "preset",
]
