"""LiteRT (TFLite) export with litert-torch, run by ai-edge-litert's interpreter (XNNPACK on the CPU).

litert-torch converts the colorizer at one fixed input shape (it fails on dynamic H and W), so an
export takes the shape (default 1x256x256x3; a 1080p file is a separate export) and the runner
accepts that shape only. The graph is ``ColorizerModule`` itself (uint8 NHWC in, uint8 RGB out, its
Lab fast path inside); should litert-torch fail on it, :class:`runtimes.portable.Uint8Colorizer`
(the float Lab kernel) is converted instead and the failure recorded in the metadata.
Precisions: fp32; fp16 (network weights stored as fp16); int8-dynamic (int8 network weights,
activations quantized on the fly); int8 (full-integer network, calibrated on the caller's images).
The quantizer (ai-edge-quantizer) touches only ops inside the network's layers: the Lab math, the
resizes and the ab decoding stay fp32. Metadata is a JSON entry ``edge_colorizer`` in the
flatbuffer's metadata table. Parity against torch gates the export.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from edge_colorizer.colorizer import ColorizerModule
from edge_colorizer.io import one_line, shown
from edge_colorizer.stopping import check_stop
from runtimes.artifacts import ExportError, artifact_metadata, measure_parity, parity_gate, staged
from runtimes.formats import FORMATS
from runtimes.portable import FloatColorizer, Uint8Colorizer
from runtimes.runners import (
    INPUT_NAME,
    OUTPUT_NAME,
    BaseRunner,
    Exported,
    TensorMeta,
    as_batches,
    conform,
    export_ready,
)

FORMAT = FORMATS["tflite"]
DEFAULT_SHAPE = (1, 256, 256, 3)
METADATA_NAME = "edge_colorizer"
# Ops inside a layer of the network: their output tensors are named by module path, and the network's
# own layers sit one level below ``net`` (``.../<Net>_net/<layer>/...``). The ab decoding (exp, max,
# the bin-centre conv, divide) is named ``.../<Net>_net;N``, directly in ``net``: it stays float.
NETWORK_SCOPE = r"_net/[^;]"
_WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "CONV_2D_TRANSPOSE")
QUANTIZATION = {
    "fp32": "none",
    "fp16": "ai-edge-quantizer float_casting: fp16 weights of the network's conv/FC layers, fp32 compute",
    "int8-dynamic": "ai-edge-quantizer dynamic range: int8 per-channel weights of the network's layers, "
    "activations quantized at run time",
    "int8": "ai-edge-quantizer static: int8 per-channel weights and int8 activations of the network's layers, "
    "min/max calibration; Lab math, resizes and ab decoding fp32",
}


def check_shape(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """``shape`` as the fixed input of an export: batch 1 (the parity check and the benchmark feed one image
    at a time to a fixed-shape runner), H and W of at least 16, 1 (gray) or 3 (RGB) channels."""
    shape = tuple(int(d) for d in shape)
    if len(shape) != 4 or shape[0] != 1 or shape[3] not in (1, 3) or min(shape[1:3]) < 16:
        raise ValueError(f"tflite: shape must be (1, H, W, 1|3) with H, W >= 16, got {shape}")
    return shape  # type: ignore[return-value]


class LiteRTRunner(BaseRunner):
    """ai-edge-litert's Interpreter with its default XNNPACK CPU delegate, at a stated thread count."""

    runtime = "litert"
    delegate = "XNNPACK"

    def __init__(self, path: str | Path, threads: int = 0, name: str = "litert"):
        super().__init__(name)
        self.path = Path(path)
        # 0 means torch's thread count, passed explicitly so that the stated number is the one used
        self.num_threads = threads or torch.get_num_threads()
        self.interpreter = None

    def activate(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        try:
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=self.num_threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise RuntimeError(f"{self.path}: LiteRT cannot load it ({' '.join(str(exc).split())[:200]})") from None
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]

    def deactivate(self) -> None:
        self.interpreter = None

    @property
    def threads(self) -> int:
        return self.num_threads

    @property
    def inputs(self) -> list[TensorMeta]:
        if self.interpreter is None:
            shape = json.loads(read_metadata(self.path).get("shape", "null") or "null")
            return [TensorMeta(INPUT_NAME, "uint8", tuple(shape))] if shape else super().inputs
        return [
            TensorMeta(INPUT_NAME, np.dtype(self._input["dtype"]).name, tuple(int(d) for d in self._input["shape"]))
        ]

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = feeds[INPUT_NAME]
        expected = tuple(int(d) for d in self._input["shape"])
        if x.shape != expected or x.dtype != np.uint8:
            raise ValueError(
                f"{self.path}: this LiteRT model was exported for uint8 {expected} only, got {x.dtype} "
                f"{tuple(x.shape)}; resize the image (runtimes.runners.conform) or export that shape"
            )
        self.interpreter.set_tensor(self._input["index"], np.ascontiguousarray(x))
        self.interpreter.invoke()
        return {OUTPUT_NAME: self.interpreter.get_tensor(self._output["index"])}


Runner = LiteRTRunner


def _graphs(colorizer: ColorizerModule) -> list[tuple[str, torch.nn.Module]]:
    """The modules to convert, in order of preference: the colorizer itself, then its portable form."""
    ready = export_ready(colorizer)
    return [
        ("ColorizerModule", ready),
        ("runtimes.portable.Uint8Colorizer", Uint8Colorizer(FloatColorizer.from_colorizer(ready)).eval()),
    ]


def _convert(module: torch.nn.Module, shape: tuple[int, int, int, int]) -> bytes:
    import litert_torch

    edge_model = litert_torch.convert(module, (torch.zeros(shape, dtype=torch.uint8),))
    return bytes(edge_model.model_content())


def _signature_inputs(model: bytes) -> tuple[str, str]:
    from ai_edge_litert.interpreter import Interpreter

    signatures = Interpreter(model_content=model).get_signature_list()
    key = next(iter(signatures))
    return key, signatures[key]["inputs"][0]


def quantize(model: bytes, precision: str, calibration: list[np.ndarray] | None = None) -> bytes:
    """``model`` (fp32 flatbuffer) quantized to ``precision``, network layers only (see NETWORK_SCOPE)."""
    from ai_edge_quantizer import qtyping, quantizer

    if precision == "fp32":
        return model
    ops = qtyping.TFLOperationName
    q = quantizer.Quantizer(model)
    if precision == "fp16":
        for op in _WEIGHT_OPS:
            q.add_weight_only_config(NETWORK_SCOPE, ops[op], 16, algorithm_key="float_casting")
    elif precision == "int8-dynamic":
        q.add_dynamic_config(NETWORK_SCOPE, ops.ALL_SUPPORTED, 8)
    elif precision == "int8":
        q.add_static_config(NETWORK_SCOPE, ops.ALL_SUPPORTED, 8, 8)
    else:
        raise ValueError(f"tflite: unknown precision {precision!r}; known: {', '.join(FORMAT.precisions)}")
    if not q.need_calibration:
        return bytes(q.quantize().quantized_model)
    key, name = _signature_inputs(model)
    qsvs = q.calibrate({key: [{name: x} for x in calibration or []]}, num_threads=torch.get_num_threads())
    return bytes(q.quantize(qsvs).quantized_model)


def with_metadata(model: bytes, metadata: dict[str, str]) -> bytes:
    """``model`` with ``metadata`` (JSON) in its metadata table under ``edge_colorizer`` (replacing one there)."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    obj = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    obj.metadata = [m for m in obj.metadata or [] if m.name != METADATA_NAME]
    obj.buffers.append(schema.BufferT(data=np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)))
    obj.metadata.append(schema.MetadataT(name=METADATA_NAME, buffer=len(obj.buffers) - 1))
    return bytes(flatbuffer_utils.convert_object_to_bytearray(obj))


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``edge_colorizer`` metadata of a .tflite file ({} when it has none)."""
    from ai_edge_litert import schema_py_generated as schema

    data = Path(path).read_bytes()
    try:  # the flatbuffer reader's own errors on a damaged file are struct and index errors
        model = schema.Model.GetRootAs(data, 0)
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if entry.Name() and entry.Name().decode() == METADATA_NAME:
                return json.loads(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    except Exception as exc:
        check_stop()
        raise ExportError(
            f"{shown(path)}: truncated, damaged or not a TFLite file ({one_line(exc, limit=120)})"
        ) from None
    return {}


def export(
    colorizer: ColorizerModule,
    out: str | Path,
    precision: str = "fp32",
    calibration: list[np.ndarray] | None = None,
    model_name: str = "",
    checkpoint: str | Path | None = None,
    *,
    shape: tuple[int, int, int, int] = DEFAULT_SHAPE,
    force: bool = False,
) -> Exported:
    """Convert ``colorizer`` at the fixed uint8 NHWC ``shape`` and write ``out`` (.tflite) at ``precision``.

    int8 needs ``calibration``: uint8 images like the real inputs, resized to ``shape`` here. Raises
    ExportError when parity against torch is beyond the table's tolerance (nothing is left behind).
    """
    out = Path(out)
    if precision not in FORMAT.precisions:
        raise ValueError(f"tflite: unknown precision {precision!r}; known: {', '.join(FORMAT.precisions)}")
    shape = check_shape(shape)
    meta = TensorMeta(INPUT_NAME, "uint8", shape)
    batches = [x for batch in as_batches(calibration or []) for x in conform(batch, meta)]
    if precision == "int8" and not batches:
        raise ValueError("tflite int8 needs calibration images (uint8, like the real inputs): pass --calibration DIR")
    tolerance = FORMAT.tolerances[precision]
    started = time.perf_counter()
    with staged(out, force=force) as tmp:
        failures: list[str] = []
        for graph, module in _graphs(colorizer):
            try:
                model = _convert(module, shape)
                break
            except Exception as exc:  # litert-torch raises many types: the next graph is tried
                check_stop()  # a stop that a library swallowed is no failure to go on past
                failures.append(f"{graph}: {exc.__class__.__name__}: {' '.join(str(exc).split())[:200]}")
        else:
            raise ExportError(f"{out}: LiteRT conversion failed ({'; '.join(failures)})")
        try:
            model = quantize(model, precision, batches)
        except Exception as exc:  # one line naming the file
            check_stop()  # a stop that a library swallowed is no failure to go on past
            raise ExportError(
                f"{out}: LiteRT quantization failed ({exc.__class__.__name__}: {str(exc)[:300]})"
            ) from exc
        tmp.write_bytes(model)
        parity = measure_parity(colorizer, LiteRTRunner(tmp))
        parity_gate(out, parity, tolerance)
        metadata = artifact_metadata(
            colorizer,
            "tflite",
            precision,
            model_name,
            checkpoint,
            input=json.dumps({"name": INPUT_NAME, "dtype": "uint8", "layout": "NHWC", "shape": list(shape)}),
            shape=json.dumps(list(shape)),
            graph=graph,
            graph_fallback="; ".join(failures),
            converter=f"litert-torch {_version('litert-torch')}",
            runtime=f"ai-edge-litert {_version('ai-edge-litert')} Interpreter, XNNPACK delegate",
            quantization=QUANTIZATION[precision],
            calibration_images=str(len(batches)) if precision == "int8" else "0",
            parity_max=str(parity.max_abs),
            parity_mean=f"{parity.mean_abs:.5f}",
            parity_tolerance=json.dumps(list(tolerance)),
            export_seconds=f"{time.perf_counter() - started:.1f}",
        )
        tmp.write_bytes(with_metadata(model, metadata))
    return Exported(out, parity, metadata)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"
