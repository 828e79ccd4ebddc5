"""Export formats, declared once: the CLI choices, the exporter and the benchmark read this table."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExportFormat:
    name: str  # CLI name
    suffix: str  # artifact file suffix
    precisions: tuple[str, ...]
    needs_gpu: bool
    module: str  # the module that implements export() for it
    runtime: str  # the benchmark runtime that runs the artifact


FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (ExportFormat("onnx", ".onnx", ("fp32",), needs_gpu=False, module="runtimes.onnx", runtime="onnxruntime"),)
}


def get_format(name: str) -> ExportFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise KeyError(f"unknown export format {name!r}; known: {', '.join(FORMATS)}") from None
