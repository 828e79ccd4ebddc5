"""Exporters from the RGB-in/RGB-out colorizer module to deployment runtimes (one module per runtime)."""
