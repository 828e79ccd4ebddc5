"""edge-colorizer: automatic grayscale -> colour in CIELab, for the edge."""

__version__ = "0.1.0"

__all__ = ["ColorizerModule", "create_model", "list_models", "__version__"]


def __getattr__(name: str):
    """The public names, imported when first used: ``import edge_colorizer`` alone does not load torch
    (the command line answers a Ctrl-C during its start-up in one line; see ``edge_colorizer.cli``)."""
    if name == "ColorizerModule":
        from edge_colorizer.colorizer import ColorizerModule

        return ColorizerModule
    if name in ("create_model", "list_models"):
        from edge_colorizer import models

        return getattr(models, name)
    raise AttributeError(f"module 'edge_colorizer' has no attribute {name!r}")
