"""Image-quality metrics for colorization (pure numpy/torch)."""

from edge_colorizer.metrics.basic import colorfulness, psnr

__all__ = ["colorfulness", "psnr"]
