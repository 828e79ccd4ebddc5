"""edge-colorizer: automatic grayscale -> colour in CIELab, for the edge."""

__version__ = "0.1.0"

from edge_colorizer.colorizer import ColorizerModule  # noqa: E402
from edge_colorizer.models import create_model, list_models  # noqa: E402

__all__ = ["ColorizerModule", "create_model", "list_models", "__version__"]
