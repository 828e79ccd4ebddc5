"""Export formats, declared once as data: the CLI choices, the exporter and the benchmark read this table.

Each format names the module that implements it (after ultralytics' ``export_formats()`` and
Polygraphy's one backend per module). That module, and only it, imports the runtime's SDK, and
provides::

    export(colorizer, out, precision="fp32", calibration=None, model_name="", checkpoint=None, *, force=False)
        -> Exported                    # staged and renamed into place (runtimes.artifacts.staged)
    Runner(path, threads=0, name="")   # a runtimes.runners.BaseRunner
    read_metadata(path) -> dict        # optional: what the artifact says about itself

``Exported`` (runtimes.runners) is the artifact's path, its parity against torch and its metadata.
``runtimes.export.export_artifact`` is the one entry point: it checks the precision and calibration
against this table, loads the module (a missing SDK names the extra to install) and calls it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType


@dataclass(frozen=True)
class Format:
    name: str  # CLI name (export --format)
    suffix: str  # artifact file (or folder) suffix
    precisions: tuple[str, ...]  # what export(precision=...) accepts; the first is the default
    module: str  # implements export() and Runner
    runtime: str  # the benchmark runtime that runs the artifact (bench --runtimes)
    extra: str  # the pip extra that installs its SDK: pip install 'edge-colorizer[<extra>]'
    sdk: str  # the module whose absence means the extra is missing
    needs_gpu: bool = False  # builds/runs only with a CUDA device
    runs_on_linux: bool = True  # Core ML converts here but predicts only on macOS
    fixed_shape: bool = False  # the artifact has one input shape (chosen at export)
    folder: bool = False  # the artifact is a folder (named <name><suffix>), not a file
    sidecar: str = ""  # suffix of a file written beside the artifact (<artifact name><sidecar>), if any
    calibrated: tuple[str, ...] = ()  # precisions whose export needs calibration images from the caller
    # uint8 parity against torch, per precision: (max |diff|, mean |diff|) in uint8 levels
    tolerances: dict[str, tuple[int, float]] = field(default_factory=dict)


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "onnx",
            ".onnx",
            ("fp32", "fp16", "int8"),
            "runtimes.onnx",
            "onnxruntime",
            "onnx",
            "onnxruntime",
            calibrated=("int8",),
            # measured (student / teacher, parity_images): fp32 1 / 0.00; fp16 1 / 0.02 and 7 / 0.07;
            # int8 27 / 1.06 and, teacher after the encoder only, 12 / 0.34. int8's max is loose: one
            # pixel's colour may flip between two modes of the annealed mean; the mean catches a bad export
            tolerances={"fp32": (2, 0.05), "fp16": (8, 0.25), "int8": (96, 2.5)},
        ),
        Format(
            "openvino",
            "_openvino",
            ("fp32", "fp16", "int8"),
            "runtimes.openvino",
            "openvino",
            "openvino",
            "openvino",
            folder=True,
            calibrated=("int8",),
            # measured: fp32 1 / 0.00; fp16 (compressed weights) 1 / 0.05 and 2 / 0.06; int8 19 / 0.61, 77 / 1.84
            tolerances={"fp32": (2, 0.05), "fp16": (8, 0.25), "int8": (96, 2.5)},
        ),
        Format(
            "tflite",
            ".tflite",
            ("fp32", "fp16", "int8-dynamic", "int8"),
            "runtimes.litert",
            "litert",
            "litert",
            "ai_edge_litert",
            fixed_shape=True,
            calibrated=("int8",),
            tolerances={"fp32": (2, 0.05), "fp16": (8, 0.5), "int8-dynamic": (40, 3.0), "int8": (40, 3.0)},
        ),
        Format(
            "coreml",
            ".mlpackage",
            ("fp16", "fp32", "int8-weights", "palettized"),
            "runtimes.coreml",
            "coreml",
            "coreml",
            "coremltools",
            folder=True,
            runs_on_linux=False,
            # emulated (Core ML predicts only on macOS), student / teacher: fp32 1 / 0.01 both; fp16 3 / 0.18 and
            # 9 / 0.23 (the Lab kernel runs in fp16 too: up to 3 levels alone, so max 12, not 8); int8-weights
            # 5 / 0.24 (teacher); palettized 6-bit 49 / 1.38 (teacher): its max is one pixel flipping between
            # two modes of the annealed mean, as ONNX int8's, so 96 / 2.5 like it
            tolerances={"fp16": (12, 0.5), "fp32": (2, 0.05), "int8-weights": (40, 3.0), "palettized": (96, 2.5)},
        ),
        Format(
            "tensorrt",
            ".engine",
            ("fp16", "fp32", "int8"),
            "runtimes.tensorrt",
            "tensorrt",
            "tensorrt",
            "tensorrt",
            needs_gpu=True,
            sidecar=".json",
            calibrated=("int8",),
            # not measured (no GPU here): the ONNX graphs' numbers, fp16 left wider for GPU kernels
            tolerances={"fp16": (8, 0.5), "fp32": (2, 0.05), "int8": (96, 2.5)},
        ),
    )
}

# the benchmark's runtimes: torch eager plus one per format
RUNTIMES: dict[str, Format | None] = {"torch": None, **{f.runtime: f for f in FORMATS.values()}}


def get_format(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise KeyError(f"unknown export format {name!r}; known: {', '.join(FORMATS)}") from None


def format_for_runtime(runtime: str) -> Format | None:
    """The format a benchmark runtime runs (None for torch); unknown names raise KeyError."""
    try:
        return RUNTIMES[runtime]
    except KeyError:
        raise KeyError(f"unknown runtime {runtime!r}; known: {', '.join(RUNTIMES)}") from None


def load_format_module(fmt: Format) -> ModuleType:
    """The module implementing ``fmt``; a missing SDK is an ImportError naming the extra to install."""
    try:
        importlib.import_module(fmt.sdk)
    except ImportError:
        raise ImportError(
            f"the {fmt.name} format needs the {fmt.sdk!r} package: pip install 'edge-colorizer[{fmt.extra}]'"
        ) from None
    return importlib.import_module(fmt.module)
