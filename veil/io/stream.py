"""Live streams: kept as an import path; the code is in :mod:`veil.io.live`."""

from .live import StreamOptions, StreamStats, anonymize_stream, is_stream, redact_url

__all__ = ["StreamOptions", "StreamStats", "anonymize_stream", "is_stream", "redact_url"]
