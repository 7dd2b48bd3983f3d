"""veil: privacy-by-design face anonymization for images, video and streams.

The public surface is listed in ``__all__``; everything else is internal.
"""

from ._version import __version__
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
