"""Run reports: what was found and done, per image or frame, plus a manifest of the run."""

from .manifest import ItemReport, RunReport

__all__ = ["ItemReport", "RunReport"]
