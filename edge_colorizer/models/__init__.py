"""The model zoo: import this package to register every architecture."""

from edge_colorizer.models import generator, patchgan, unet, zhang  # noqa: F401  (registration side effects)
from edge_colorizer.models.registry import create_model, describe_model, list_models, register_model

__all__ = ["create_model", "describe_model", "list_models", "register_model"]
