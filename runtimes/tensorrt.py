"""TensorRT engines built from this package's ONNX export, and a runner whose buffers are torch CUDA tensors.

The engine is built on the GPU that will run it (a Jetson builds its own): ``edge-colorizer export
--format tensorrt`` on the device. Precisions come from the ONNX graph, in a strongly typed network
(TensorRT 10's recommended mode, the only one in 11): fp32 from the fp32 export, fp16 from the fp16
export (network fp16, Lab kernel fp32), int8 from the QDQ export (explicit quantization, calibrated
on the caller's images). ``strongly_typed=False`` builds the weakly typed way instead (BuilderFlag.FP16
/ INT8 on the fp32 or QDQ graph, every layer outside the network pinned to fp32). One optimization
profile covers dynamic batch, height, width and channels; a timing cache file makes rebuilds fast;
``<engine>.json`` beside the engine holds the metadata.

Written against NVIDIA's TensorRT 10 Python API (strongly typed builds also suit TensorRT 11);
``tensorrt`` installs only where NVIDIA's wheels and a GPU exist, so nothing here has run on the
machines this package is developed on.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from edge_colorizer.colorizer import ColorizerModule
from runtimes.artifacts import ExportError, artifact_metadata, measure_parity, parity_gate, staged
from runtimes.formats import FORMATS
from runtimes.runners import INPUT_NAME, OUTPUT_NAME, BaseRunner, Exported, TensorMeta
from runtimes.tensorrt_onnx_support import tensorrt_problems

FORMAT = FORMATS["tensorrt"]
DEFAULT_TIMING_CACHE = Path.home() / ".cache" / "edge-colorizer" / "tensorrt.timing.cache"


@dataclass(frozen=True)
class ShapeProfile:
    """The input shapes one engine serves: (batch, height, width) minimum, optimum, maximum; channels 1..3.

    Activation memory is reserved for the maximum, so keep it to what the device will really see."""

    min_batch: int = 1
    opt_batch: int = 1
    max_batch: int = 4
    min_side: int = 16
    opt_height: int = 720
    opt_width: int = 1280
    max_side: int = 2048

    def __post_init__(self) -> None:
        low, opt, high = self.shapes()
        if not all(a <= b <= c for a, b, c in zip(low, opt, high, strict=True)) or low[0] < 1:
            raise ValueError(f"shape profile needs min <= opt <= max on every axis, got {low}, {opt}, {high}")

    def shapes(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        return (
            (self.min_batch, self.min_side, self.min_side, 1),
            (self.opt_batch, self.opt_height, self.opt_width, 3),
            (self.max_batch, self.max_side, self.max_side, 3),
        )


def sidecar(engine: str | Path) -> Path:
    engine = Path(engine)
    return engine.with_name(engine.name + FORMATS["tensorrt"].sidecar)


def _logger():
    import tensorrt as trt

    return trt.Logger(trt.Logger.WARNING)


def _pin_outside_network_to_fp32(network) -> int:
    """Weakly typed builds: every layer outside the network's own modules computes in fp32 (the Lab kernel,
    resizes, ab decoding), as the ONNX fp16 export does. Layer names are the ONNX node names."""
    import tensorrt as trt

    from runtimes.onnx import in_network

    pinned = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        scopes = [s for s in layer.name.split("/")[1:-1] if s] if layer.name.startswith("/") else []
        if in_network(scopes):
            continue
        if all(layer.get_output(j).dtype in (trt.float32, trt.float16) for j in range(layer.num_outputs)):
            layer.precision = trt.float32
            for j in range(layer.num_outputs):
                layer.set_output_type(j, trt.float32)
            pinned += 1
    return pinned


def build_engine(
    onnx_path: str | Path,
    engine_path: str | Path,
    precision: str,
    profile: ShapeProfile = ShapeProfile(),
    timing_cache: str | Path | None = DEFAULT_TIMING_CACHE,
    strongly_typed: bool = True,
    workspace_bytes: int = 1 << 30,
) -> dict[str, str]:
    """Build a serialized engine from ``onnx_path`` into ``engine_path``; returns build facts for the metadata.

    ``precision`` selects the builder flags in the weakly typed mode only; strongly typed engines take
    every type from the graph."""
    import tensorrt as trt

    if not strongly_typed and not hasattr(trt.BuilderFlag, "FP16"):
        raise ExportError(f"{engine_path}: TensorRT {trt.__version__} builds strongly typed networks only")
    logger = _logger()
    builder = trt.Builder(logger)
    # TensorRT 10 needs the flag; 11 is always strongly typed and keeps the flag as a no-op (or drops it)
    typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    network = builder.create_network(1 << int(typed) if strongly_typed and typed is not None else 0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"{engine_path}: TensorRT's ONNX parser refused the graph: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    pinned = 0
    if not strongly_typed:
        if precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)
        if precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)  # the Q/DQ nodes give the scales: no calibrator
        if precision != "fp32":
            config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
            pinned = _pin_outside_network_to_fp32(network)
    shape_profile = builder.create_optimization_profile()
    shape_profile.set_shape(INPUT_NAME, *profile.shapes())
    config.add_optimization_profile(shape_profile)
    cache_path = Path(timing_cache) if timing_cache else None
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path and cache_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"{engine_path}: TensorRT could not build the engine (see its log above)")
    Path(engine_path).write_bytes(bytes(serialized))
    if cache_path:
        with staged(cache_path, force=True) as tmp:
            tmp.write_bytes(bytes(config.get_timing_cache().serialize()))
    return {
        "tensorrt": trt.__version__,
        "typing": "strong" if strongly_typed else "weak (builder flags)",
        "layers_pinned_fp32": str(pinned),
        "profile": json.dumps(asdict(profile)),
        "device": torch.cuda.get_device_name(0),
        "timing_cache": str(cache_path or ""),
    }


class TensorRTRunner(BaseRunner):
    """A TensorRT engine on the current CUDA device; input and output live in torch CUDA tensors."""

    runtime = "tensorrt"

    def __init__(self, path: str | Path, threads: int = 0, name: str = "tensorrt"):
        super().__init__(name)
        self.path = Path(path)
        self.engine = self.context = None

    def activate(self) -> None:
        import tensorrt as trt

        if not torch.cuda.is_available():
            raise RuntimeError("TensorRT needs a CUDA device; torch sees none")
        self.trt_runtime = trt.Runtime(_logger())
        self.engine = self.trt_runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise RuntimeError(f"{self.path}: not a TensorRT engine for this TensorRT version and GPU")
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream()

    def deactivate(self) -> None:
        self.context = self.engine = None

    def synchronize(self) -> None:
        torch.cuda.synchronize()

    @property
    def inputs(self) -> list[TensorMeta]:
        if self.engine is None:
            return super().inputs
        shape = tuple(d if d >= 0 else None for d in self.engine.get_tensor_shape(INPUT_NAME))
        return [TensorMeta(INPUT_NAME, "uint8", shape)]

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        images = torch.from_numpy(np.ascontiguousarray(feeds[INPUT_NAME])).cuda()
        if not self.context.set_input_shape(INPUT_NAME, tuple(images.shape)):
            raise RuntimeError(f"{self.path}: input shape {tuple(images.shape)} is outside the engine's profile")
        out = torch.empty(tuple(self.context.get_tensor_shape(OUTPUT_NAME)), dtype=torch.uint8, device="cuda")
        self.context.set_tensor_address(INPUT_NAME, images.data_ptr())
        self.context.set_tensor_address(OUTPUT_NAME, out.data_ptr())
        with torch.cuda.stream(self.stream):
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError(f"{self.path}: inference failed")
        self.stream.synchronize()
        return {OUTPUT_NAME: out.cpu().numpy()}


Runner = TensorRTRunner


def export(
    colorizer: ColorizerModule,
    out: str | Path,
    precision: str = "fp16",
    calibration: list[np.ndarray] | None = None,
    model_name: str = "",
    checkpoint: str | Path | None = None,
    *,
    force: bool = False,
    profile: ShapeProfile = ShapeProfile(),
    timing_cache: str | Path | None = DEFAULT_TIMING_CACHE,
    strongly_typed: bool = True,
) -> Exported:
    """Build the engine ``out`` (and ``<out>.json``) from this package's ONNX export at ``precision``."""
    import onnx

    from runtimes import onnx as onnx_format

    out = Path(out)
    if precision not in FORMAT.precisions:
        raise ValueError(f"tensorrt: unknown precision {precision!r}; known: {', '.join(FORMAT.precisions)}")
    # weakly typed fp16 starts from the fp32 graph and lets the builder choose; otherwise the graph's types rule
    source_precision = "fp32" if (precision == "fp16" and not strongly_typed) else precision
    with tempfile.TemporaryDirectory() as work, staged(out, force=force) as tmp:
        source = onnx_format.export(
            colorizer, Path(work) / "model.onnx", source_precision, calibration, model_name, checkpoint
        )
        problems = tensorrt_problems(onnx.load(str(source.path)))
        if problems:
            raise ExportError(f"{out}: the ONNX graph is not parsable by TensorRT: {'; '.join(problems[:5])}")
        facts = build_engine(source.path, tmp, precision, profile, timing_cache, strongly_typed)
        parity = measure_parity(colorizer, TensorRTRunner(tmp))
        parity_gate(out, parity, FORMAT.tolerances[precision])
        meta = artifact_metadata(
            colorizer,
            "tensorrt",
            precision,
            model_name,
            checkpoint,
            source_onnx_precision=source_precision,
            parity_max=str(parity.max_abs),
            parity_mean=f"{parity.mean_abs:.5f}",
            **facts,
        )
    with staged(sidecar(out), force=True) as tmp:
        tmp.write_text(json.dumps(meta, indent=1))
    return Exported(out, parity, meta)


def read_metadata(path: str | Path) -> dict[str, str]:
    meta = sidecar(path)
    if not meta.is_file():
        raise ExportError(f"{path}: no {meta.name} beside it; not an edge-colorizer TensorRT export")
    return json.loads(meta.read_text())
