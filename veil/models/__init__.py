"""Model registry: where each model file comes from and the sha256 it must have."""

from .registry import MODELS, ModelSpec, resolve_model, sha256_file

__all__ = ["MODELS", "ModelSpec", "resolve_model", "sha256_file"]
