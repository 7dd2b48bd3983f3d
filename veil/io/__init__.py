"""Reading and writing media: images, video files and live streams."""

from .paths import IMAGE_SUFFIXES, VIDEO_SUFFIXES, default_output, media_kind, walk_media

__all__ = ["IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "default_output", "media_kind", "walk_media"]
