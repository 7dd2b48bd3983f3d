"""veil's version, from the installed package's metadata.

A leaf module: the report, the audit trail and plans stamp outputs with it without importing
the package's public face (``veil/__init__.py`` imports the API, which imports them)."""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("veil")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
