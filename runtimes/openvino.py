"""OpenVINO export (an IR folder: model.xml, model.bin, metadata.json) and its CPU runner.

The IR is converted with ``openvino.convert_model`` from this package's parity-checked ONNX export,
so it carries the same uint8-in/uint8-out graph with the Lab kernel inside. ``fp16`` stores the
weights compressed to fp16 (the CPU decompresses them and computes in fp32); ``int8`` is NNCF
post-training quantization of the network's layers only, calibrated on the caller's images.

The CPU plugin's default inference precision is bf16 on processors that have it (AVX512-BF16, AMX):
the Lab math then drifts by 100+ uint8 levels, so the runner pins ``INFERENCE_PRECISION_HINT`` to f32.

The IR's input shape is dynamic, and with dynamic shapes the CPU plugin runs the Lab kernel's per-pixel
chain as a dozen separate passes over the frame; compiled for one static shape it fuses them into a
few kernels. The runner therefore compiles a model of its own for an input shape it meets a second time
(a video's frames, a benchmark's repeats), keeping the last few, and serves other shapes dynamically.
Each static model holds its own buffers (~90 MB for a 1080p frame, ~380 MB for a batch of 4), on top
of the dynamic model's.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter, OrderedDict
from pathlib import Path

import numpy as np

from edge_colorizer.colorizer import ColorizerModule
from edge_colorizer.io import one_line, shown
from runtimes.artifacts import ExportError, artifact_metadata, measure_parity, parity_gate, staged
from runtimes.formats import FORMATS
from runtimes.runners import INPUT_NAME, OUTPUT_NAME, BaseRunner, Exported, Parity, TensorMeta, as_batches

FORMAT = FORMATS["openvino"]
MODEL_FILE = "model.xml"
METADATA_FILE = "metadata.json"
# NNCF probes for optional compiled extensions at import, waiting up to a timeout; nothing here uses them
os.environ.setdefault("NNCF_EXTENSION_LOAD_TIMEOUT", "0")
# an input shape met this many times gets a model compiled for it (~0.3 s each); at most STATIC_MODELS kept
STATIC_AFTER = 2
STATIC_MODELS = 4


def _model_xml(path: str | Path) -> Path:
    path = Path(path)
    return path / MODEL_FILE if path.is_dir() else path


class OpenVINORunner(BaseRunner):
    """OpenVINO on the CPU, inference precision pinned to f32, ``threads`` streams' threads (0 = OpenVINO's
    default: one per physical core). An input shape met ``static_after`` times gets a static-shape model
    of its own (see the module's docstring; 0: never); its output may differ from the dynamic model's by
    one level where a fused multiply-add moves a rounding threshold."""

    runtime = "openvino"

    def __init__(
        self,
        path: str | Path,
        threads: int = 0,
        name: str = "openvino",
        device: str = "CPU",
        static_after: int = STATIC_AFTER,
    ):
        super().__init__(name)
        self.path = _model_xml(path)
        self.device = device
        self.requested_threads = threads
        self.static_after = static_after
        self.core = self.config = self.compiled = self.request = None
        self.dynamic = False  # the IR's input shape has a dynamic dimension (else nothing is recompiled)
        self.seen: Counter[tuple[int, ...]] = Counter()
        self.static_requests: OrderedDict[tuple[int, ...], object] = OrderedDict()

    def activate(self) -> None:
        import openvino as ov

        self.config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
        if self.requested_threads:
            self.config["INFERENCE_NUM_THREADS"] = self.requested_threads
        for part in (self.path, self.path.with_suffix(".bin")):  # OpenVINO's own words for these are C++ checks
            if not part.is_file():
                raise ExportError(f"{shown(part.parent)}: {part.name} is missing")
        self.core = ov.Core()
        self.compiled = self.core.compile_model(str(self.path), self.device, self.config)
        self.request = self.compiled.create_infer_request()
        self.dynamic = not self.compiled.inputs[0].get_partial_shape().is_static

    def deactivate(self) -> None:
        self.core = self.config = self.request = self.compiled = None
        self.seen.clear()
        self.static_requests.clear()

    def request_for(self, shape: tuple[int, ...]):
        """The infer request that runs an input of this shape: its static model's, or the dynamic one."""
        request = self.static_requests.get(shape)
        if request is not None:
            self.static_requests.move_to_end(shape)
            return request
        self.seen[shape] += 1
        if not self.dynamic or self.seen[shape] != self.static_after:
            return self.request
        try:
            model = self.core.read_model(str(self.path))
            model.reshape({INPUT_NAME: list(shape)})
            request = self.core.compile_model(model, self.device, self.config).create_infer_request()
        except RuntimeError:  # a shape the model cannot take statically, or no memory for it: stay dynamic
            return self.request
        self.static_requests[shape] = request
        if len(self.static_requests) > STATIC_MODELS:
            evicted, _ = self.static_requests.popitem(last=False)
            del self.seen[evicted]  # compiled again if it comes back twice
        return request

    @property
    def inference_precision(self) -> str:
        """The precision the compiled model really computes in (``f32`` unless the pin failed)."""
        return precision_name(self.compiled.get_property("INFERENCE_PRECISION_HINT")) if self.compiled else ""

    @property
    def threads(self) -> int | None:
        return int(self.compiled.get_property("INFERENCE_NUM_THREADS")) if self.compiled else self.requested_threads

    @property
    def inputs(self) -> list[TensorMeta]:
        if self.compiled is None:
            return super().inputs
        metas = []
        for port in self.compiled.inputs:
            shape = tuple(None if d.is_dynamic else d.get_length() for d in port.get_partial_shape())
            metas.append(TensorMeta(port.get_any_name(), port.get_element_type().to_dtype().name, shape))
        return metas

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        images = feeds[INPUT_NAME]
        request = self.request_for(tuple(images.shape))
        request.infer({INPUT_NAME: images})
        return {OUTPUT_NAME: request.get_tensor(OUTPUT_NAME).data.copy()}


Runner = OpenVINORunner


def precision_name(value) -> str:
    """An element type as OpenVINO spells it (``f32``, ``bf16``), from a property value."""
    return value.get_type_name() if hasattr(value, "get_type_name") else str(value)


def ignored_scope_names(ov_model) -> list[str]:
    """Every operation outside the network's own layers: the Lab kernel, resizes, uint8 conversions, the
    ab head and the ab decoding (exp, max, the bin-centre conv, the divide) stay fp32; names come from
    the ONNX export's module paths (``/net/<layer>/...``), kept by the converter."""
    from runtimes.onnx import quantizable

    names = []
    for op in ov_model.get_ops():
        name = op.get_friendly_name()
        scopes = [s for s in name.split("/")[1:-1] if s] if name.startswith("/") else []
        if op.get_type_name() not in ("Parameter", "Result", "Constant") and not quantizable(scopes):
            names.append(name)
    return names


def quantize(ov_model, batches: list[np.ndarray]):
    """NNCF post-training INT8 (min/max-style statistics over every calibration image) of the network."""
    import logging

    import nncf

    nncf.set_log_level(logging.ERROR)  # it lists every operation it leaves out: the ignored scope, by design
    ignored = ignored_scope_names(ov_model)
    dataset = nncf.Dataset(batches, lambda batch: {INPUT_NAME: batch})
    quantized = nncf.quantize(
        ov_model,
        dataset,
        subset_size=sum(len(b) for b in batches),
        ignored_scope=nncf.IgnoredScope(names=ignored, validate=False),
    )
    return quantized, len(ignored)


def export(
    colorizer: ColorizerModule,
    out: str | Path,
    precision: str = "fp32",
    calibration: list[np.ndarray] | None = None,
    model_name: str = "",
    checkpoint: str | Path | None = None,
    *,
    force: bool = False,
    exporter: str | None = None,
) -> Exported:
    """Write the IR folder ``out`` (model.xml, model.bin, metadata.json) at ``precision``; raises
    ExportError when it misses the table's parity tolerance (nothing is left behind then)."""
    import openvino as ov

    from runtimes import onnx as onnx_format

    out = Path(out)
    if precision not in FORMAT.precisions:
        raise ValueError(f"openvino: unknown precision {precision!r}; known: {', '.join(FORMAT.precisions)}")
    batches = as_batches(calibration or [])
    if precision == "int8" and not batches:
        raise ValueError("openvino int8 needs calibration images (uint8, like the real inputs): pass --calibration DIR")
    with staged(out, force=force, folder=True) as tmp, tempfile.TemporaryDirectory() as work:
        source = onnx_format.export(
            # ab enlarged by a row Resize and a row blend that the CPU plugin fuses into its element-wise
            # kernels (its 2-D Interpolate was a third of a 1080p frame)
            colorizer.with_forms(upsample="rows"),
            Path(work) / "model.onnx",
            "fp32",
            model_name=model_name,
            checkpoint=checkpoint,
            exporter=exporter,
            gather_elements=False,  # OpenVINO's CPU plugin runs the lookups faster as Gather
        )
        ov_model = ov.convert_model(str(source.path))
        notes: dict[str, str] = {}
        if precision == "int8":
            ov_model, n_ignored = quantize(ov_model, batches)
            notes = {
                "quantization": "NNCF post-training INT8 (default preset: symmetric activations), network layers only",
                "calibration_images": str(sum(len(b) for b in batches)),
                "ignored_operations": str(n_ignored),
            }
        meta = artifact_metadata(
            colorizer,
            "openvino",
            precision,
            model_name,
            checkpoint,
            source_onnx_exporter=source.metadata.get("exporter", ""),
            weights="fp16 (decompressed to f32 at load)" if precision == "fp16" else precision,
            inference_precision="f32 (INFERENCE_PRECISION_HINT pinned by the runner)",
            **notes,
        )
        for key, value in meta.items():
            ov_model.set_rt_info(value, ["edge_colorizer", key])
        ov.save_model(ov_model, str(tmp / MODEL_FILE), compress_to_fp16=precision == "fp16")
        # both models the runner may use: the dynamic one, and one compiled for each image's own shape
        dynamic, static = (measure_parity(colorizer, OpenVINORunner(tmp, static_after=n)) for n in (0, 1))
        parity = Parity(max(dynamic.max_abs, static.max_abs), max(dynamic.mean_abs, static.mean_abs))
        parity_gate(out, parity, FORMAT.tolerances[precision])
        meta.update(parity_max=str(parity.max_abs), parity_mean=f"{parity.mean_abs:.5f}")
        (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=1))
    return Exported(out, parity, meta)


def read_metadata(path: str | Path) -> dict[str, str]:
    """The artifact's metadata (metadata.json beside model.xml)."""
    meta = _model_xml(path).parent / METADATA_FILE
    if not meta.is_file():
        raise ExportError(f"{path}: no {METADATA_FILE}; not an edge-colorizer OpenVINO export")
    try:
        found = json.loads(meta.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ExportError(f"{shown(meta)}: not valid JSON ({one_line(exc, with_type=False)})") from None
    if not isinstance(found, dict) or not all(isinstance(v, str) for v in found.values()):
        raise ExportError(f"{shown(meta)}: not a JSON object of strings, as every artifact's metadata is")
    return found
