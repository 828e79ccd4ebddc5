"""Image-quality metrics for colorization; LPIPS lives in :mod:`edge_colorizer.metrics.lpips`."""

from edge_colorizer.metrics.basic import ae, ciede2000, colorfulness, delta_e2000, mse, psnr, ssim

__all__ = ["ae", "ciede2000", "colorfulness", "delta_e2000", "mse", "psnr", "ssim"]
