"""ONNX export of the colorizer module (uint8 NHWC in, uint8 RGB out, Lab kernel inside the graph) and
its ONNX Runtime runner.

The graph has dynamic batch, height, width and channel count (1 = gray, 3 = RGB). fp32 is exported
with the ``torch.export``-based exporter, falling back to the TorchScript one where it fails or
breaks parity, and simplified with onnxsim where that keeps parity (choices recorded in the
metadata). fp16 runs the network in half precision and keeps the Lab math in fp32; int8 is ONNX
Runtime's static QDQ quantization of the network only, calibrated on the caller's images. Every
export ends with a parity check against torch that fails the export beyond the table's tolerance.
"""

from __future__ import annotations

import ast
import copy
import logging
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from edge_colorizer.colorizer import ColorizerModule
from edge_colorizer.io import one_line
from edge_colorizer.stopping import check_stop
from runtimes.artifacts import ExportError, artifact_metadata, measure_parity, parity_gate, staged
from runtimes.formats import FORMATS
from runtimes.runners import (
    INPUT_NAME,
    OUTPUT_NAME,
    BaseRunner,
    Exported,
    Parity,
    TensorMeta,
    as_batches,
    export_ready,
    parity_images,
)

__all__ = ["OPSET", "OrtRunner", "Runner", "export", "export_onnx", "network_nodes", "parity_images", "read_metadata"]

OPSET = 18
EXPORTERS = ("dynamo", "torchscript")
# "auto": torch.export (dynamo) first, the TorchScript exporter where that fails or breaks parity
DEFAULT_EXPORTER = "auto"
FORMAT = FORMATS["onnx"]
# the fp32 tolerance, kept as names for callers of the first version of this module
MAX_ABS_DIFF, MEAN_ABS_DIFF = FORMAT.tolerances["fp32"]


class OrtRunner(BaseRunner):
    """ONNX Runtime; CUDA execution provider first when present, else CPU."""

    runtime = "onnxruntime"

    def __init__(self, path: str | Path, threads: int = 0, name: str = "ort", providers: list[str] | None = None):
        super().__init__(name)
        self.path = Path(path)
        self.providers = providers
        self.intra_threads = threads
        self.session = None

    def activate(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if self.intra_threads:
            options.intra_op_num_threads = self.intra_threads
        # its worker threads otherwise spin after each run: on 2 cores whatever runs next (the video
        # pipeline's decoder and encoder, the next case of a benchmark) took twice as long (4.0 -> 8.0
        # ms measured), and ONNX Runtime itself was no faster for it (student 256x256 33.3 vs 31.5 ms)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        available = ort.get_available_providers()
        providers = self.providers or [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        self.session = ort.InferenceSession(str(self.path), options, providers=providers)

    def deactivate(self) -> None:
        self.session = None

    @property
    def threads(self) -> int | None:
        return self.intra_threads or torch.get_num_threads()

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0] if self.session else ""

    @property
    def inputs(self) -> list[TensorMeta]:
        if self.session is None:
            return super().inputs
        return [
            TensorMeta(i.name, i.type.removeprefix("tensor(").removesuffix(")"), _shape(i.shape))
            for i in self.session.get_inputs()
        ]

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self.session.run([OUTPUT_NAME], feeds)
        return {OUTPUT_NAME: outputs[0]}


Runner = OrtRunner


def _shape(dims) -> tuple[int | None, ...]:
    return tuple(d if isinstance(d, int) else None for d in dims)


class HalfNetwork(torch.nn.Module):
    """Runs ``net`` in fp16 between casts, so only the network is half precision: the Lab kernel, the
    resizes and the uint8 conversions around it stay fp32."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net.half()

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        return self.net(l_norm.half()).float()


def _simplified(model):
    """The onnxsim-simplified graph, or None where onnxsim is absent or gives up."""
    try:
        from onnxsim import simplify
    except ImportError:
        return None
    try:
        simplified, ok = simplify(model)
    except Exception:  # onnxsim raises assorted errors on graphs it cannot handle
        check_stop()  # a stop that a library swallowed is no failure to go on past
        return None
    return simplified if ok else None


def _to_onnx(colorizer: ColorizerModule, exporter: str):
    """The ModelProto of ``colorizer`` from one exporter, with dynamic batch, height, width and channels."""
    import onnx

    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        # input checks and the fixed network size are constants of the trace, by design
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        if exporter == "dynamo":
            return _dynamo_export(colorizer)
        path = Path(tmp) / "model.onnx"
        torch.onnx.export(
            colorizer,
            (torch.zeros(1, 64, 64, 3, dtype=torch.uint8),),
            str(path),
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={
                INPUT_NAME: {0: "batch", 1: "height", 2: "width", 3: "channels"},
                OUTPUT_NAME: {0: "batch", 1: "height", 2: "width"},
            },
            dynamo=False,
        )
        return onnx.load(str(path))


def _dynamo_export(colorizer: ColorizerModule):
    """The torch.export-based exporter; batch 2 in the example because torch.export specialises size-1
    dimensions, and ``Dim.AUTO`` lets the channel count stay 1 or 3."""
    auto = torch.export.Dim.AUTO
    quiet = logging.getLogger("torch.onnx")  # its "torchvision is not installed" notes concern nothing here
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        program = torch.onnx.export(
            colorizer,
            (torch.zeros(2, 64, 80, 3, dtype=torch.uint8),),
            dynamo=True,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: auto, 1: auto, 2: auto, 3: auto},),
            verbose=False,
        )
    finally:
        quiet.setLevel(level)
    model = program.model_proto
    _name_dynamic_axes(model)
    _name_nodes_by_scope(model)
    return model


def _name_dynamic_axes(model) -> None:
    """Give the dynamo exporter's symbolic axes (s0, s1, ...) the names the TorchScript export uses."""
    names = dict(zip((d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim), _AXES, strict=False))
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in names:
                dim.dim_param = names[dim.dim_param]


_AXES = ("batch", "height", "width", "channels")


def _name_nodes_by_scope(model) -> None:
    """Prefix the dynamo exporter's node names with their module path (``/net/head/node_conv2d``), as the
    TorchScript exporter names them: the names survive onnxsim and OpenVINO's converter, the node
    metadata that holds the path does not."""
    for node in model.graph.node:
        scopes = node_scopes(node)
        if node.name and not node.name.startswith("/"):
            node.name = "/" + "/".join([*scopes, node.name])


# operators that only move or describe elements: the same result whatever the element type
_LAYOUT_OPS = {"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Expand", "Shape", "Slice", "Flatten"}


def uint8_at_the_edges(model) -> int:
    """Make uint8 exist only on the graph's input and output (TensorRT's parser takes UINT8 there only):
    layout operators (Transpose, Shape, ...) that read the uint8 input are fed a float copy of it (Shapes
    beside Casts only: a Cast's output), and a layout operator applied after the final cast to uint8 is
    moved before it. Returns how many nodes moved or were rewired.

    The exporters write ``permute`` on the uint8 tensors, as the colorizer does; the values are equal."""
    from onnx import TensorProto, helper

    graph, moved = model.graph, 0
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    producer = {out: node for node in graph.node for out in node.output}
    retyped: set[str] = set()
    for value in graph.input:
        if value.type.tensor_type.elem_type != TensorProto.UINT8:
            continue
        # the uint8 tensors reached through layout operators; only Casts may read them, or nothing changes
        reached, layout, frontier, safe = {value.name}, [], [value.name], True
        while frontier and safe:
            for node in consumers.get(frontier.pop(), []):
                if node.op_type in _LAYOUT_OPS and node.op_type != "Shape":
                    layout.append(node)
                    frontier.extend(o for o in node.output if o not in reached)
                    reached.update(node.output)
                elif node.op_type not in ("Cast", "Shape"):
                    safe = False
        readers = consumers.get(value.name, [])
        if not safe or all(n.op_type == "Cast" for n in readers):
            continue
        casts = [n for n in readers if n.op_type == "Cast"]
        if casts and not layout:
            # only Casts and Shapes read it: the Shapes read a Cast's output (the same shape) rather than a
            # float copy of the frame, a pass over it that cost ONNX Runtime 3.4 ms at 1080p
            graph.node.remove(casts[0])
            graph.node.insert(0, casts[0])  # it reads the graph's input only: first keeps the order topological
            for node in readers:
                if node.op_type == "Shape":
                    node.input[0] = casts[0].output[0]
                    moved += 1
            continue
        as_float = f"{value.name}_as_float"
        graph.node.insert(0, helper.make_node("Cast", [value.name], [as_float], to=TensorProto.FLOAT))
        for node in consumers[value.name]:
            node.input[list(node.input).index(value.name)] = as_float
        retyped.update(reached - {value.name})
        moved += len(layout)
    for value in graph.output:
        node = producer.get(value.name)
        cast = producer.get(node.input[0]) if node is not None and node.op_type in _LAYOUT_OPS else None
        if cast is None or cast.op_type != "Cast" or len(consumers.get(cast.output[0], [])) != 1:
            continue
        if helper.get_attribute_value(next(a for a in cast.attribute if a.name == "to")) != TensorProto.UINT8:
            continue
        # Cast(to uint8) -> layout -> output  becomes  layout -> Cast(to uint8) -> output
        between = f"{value.name}_before_cast"
        retyped.add(cast.output[0])
        node.input[0], node.output[0] = cast.input[0], between
        cast.input[0], cast.output[0] = between, value.name
        graph.node.remove(cast)
        graph.node.insert(list(graph.node).index(node) + 1, cast)
        moved += 1
    # shapes and types of the moved tensors are inferred again
    kept = [v for v in graph.value_info if v.name not in retyped]
    del graph.value_info[:]
    graph.value_info.extend(kept)
    return moved


def _cast_to(node) -> int:
    from onnx import helper

    return helper.get_attribute_value(next(a for a in node.attribute if a.name == "to"))


def _read_in_subgraphs(graph) -> set[str]:
    """Names read by the nodes of ``graph``'s subgraphs (If branches, Loop and Scan bodies), at any depth."""
    from onnx import AttributeProto

    names: set[str] = set()
    for node in graph.node:
        for attr in node.attribute:
            subs = [attr.g] if attr.type == AttributeProto.GRAPH else list(attr.graphs)
            for sub in subs:
                names |= {name for n in sub.node for name in n.input} | _read_in_subgraphs(sub)
    return names


def cheap_lookups(model) -> int:
    """Make the Lab path's table lookups cheap in ONNX Runtime; the same values in any runtime.

    - ``Gather`` of a 1-D table (a constant) by 1-D indices becomes ``GatherElements``: for rank-1
      operands the two are the same operation, and ONNX Runtime's CPU Gather is ~6x slower per index
      (6.2 M lookups in a table of 2**15, one thread: 58 vs 10 ms measured).
    - The exporters' ``Cast(int32 -> int64)`` in front of a lookup's indices is dropped (both operators
      take int32 indices; the tables are far smaller than 2**31): a pass over 6 M elements at 1080p.

    Returns how many nodes changed."""
    import onnx
    from onnx import TensorProto

    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 11:  # GatherElements first appears in opset 11
        return 0
    typed = onnx.shape_inference.infer_shapes(model).graph
    infos = {v.name: v.type.tensor_type for v in [*typed.input, *typed.value_info, *typed.output]}
    # the tables: initializers, or Constant nodes (the TorchScript exporter writes buffers as those)
    tables = {t.name: list(t.dims) for t in graph.initializer}
    for node in graph.node:
        value = next((a.t for a in node.attribute if a.name == "value"), None) if node.op_type == "Constant" else None
        if value is not None:
            tables[node.output[0]] = list(value.dims)

    def rank(name: str) -> int | None:
        if name in tables:
            return len(tables[name])
        info = infos.get(name)
        return len(info.shape.dim) if info is not None and info.HasField("shape") else None

    changed = 0
    for node in graph.node:
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        if node.op_type == "Gather" and node.input[0] in tables and axis in (0, -1):
            if rank(node.input[0]) == 1 and rank(node.input[1]) == 1:
                node.op_type = "GatherElements"
                changed += 1
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    # a Cast stays where its output is a graph output or is read inside a subgraph (If, Loop, Scan)
    needed = {v.name for v in graph.output} | _read_in_subgraphs(graph)
    removed = []
    for node in graph.node:
        if node.op_type != "Cast" or _cast_to(node) != TensorProto.INT64 or node.output[0] in needed:
            continue
        source = infos.get(node.input[0])
        users = consumers.get(node.output[0], [])
        if source is None or source.elem_type != TensorProto.INT32 or not users:
            continue
        if all(u.op_type in ("Gather", "GatherElements") and list(u.input).index(node.output[0]) == 1 for u in users):
            for u in users:
                u.input[1] = node.input[0]
            removed.append(node)
    for node in removed:
        graph.node.remove(node)
    gone = {n.output[0] for n in removed}
    kept = [v for v in graph.value_info if v.name not in gone]
    del graph.value_info[:]
    graph.value_info.extend(kept)
    return changed + len(removed)


def node_scopes(node) -> list[str]:
    """The module path of an ONNX node (e.g. ``["net", "head"]``): from the TorchScript exporter's node
    names (``/net/head/Conv``) or the dynamo exporter's ``pkg.torch.onnx.name_scopes`` metadata."""
    if node.name.startswith("/"):
        return [s for s in node.name.split("/")[1:-1] if s]
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            return [s for s in ast.literal_eval(prop.value)[:-1] if s]
    return []


def in_network(scopes: list[str]) -> bool:
    """Whether a node of this module path is one of the network's own layers (inside a submodule of ``net``)."""
    return len(scopes) >= 2 and scopes[0] == "net"


def quantizable(scopes: list[str]) -> bool:
    """Whether int8 may touch this node: a network layer, but not the ab head, whose logits go through
    exp(logits / T) with T = 0.38: one int8 step there moves colours by tens of uint8 levels."""
    return in_network(scopes) and scopes[1].removeprefix("net.") != "head"


def network_nodes(model) -> list[str]:
    """Names of the nodes that int8 quantizes: the network's layers (inside a submodule of ``net``) but its head.

    Everything else (the Lab kernel, the resizes, the uint8 conversions, the ab head, and the ab decoding
    — the annealed mean's exp, max, centre conv and divide, which sit in ``net`` itself) stays float."""
    return [n.name for n in model.graph.node if n.name and quantizable(node_scopes(n))]


class _CalibrationReader:
    """ONNX Runtime's CalibrationDataReader protocol over the caller's uint8 batches."""

    def __init__(self, batches: list[np.ndarray]):
        self.batches: Iterator[np.ndarray] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self.batches, None)
        return None if batch is None else {INPUT_NAME: batch}


def quantize_network(model, calibration: list[np.ndarray], nodes: list[str]):
    """Static QDQ int8 of ``nodes`` (the network's: see ``network_nodes``) with per-channel symmetric
    weights and symmetric activations (as TensorRT's explicit quantization wants), calibrated (min/max)
    on the ``calibration`` batches."""
    import logging

    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    present = {n.name for n in model.graph.node}
    nodes = [n for n in nodes if n in present]
    if not nodes:
        raise ExportError("int8: no node of the graph is inside the network's modules; nothing to quantize")
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, str(src))
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # its advice to run its pre-processing: onnxsim has done that work
        try:
            quantize_static(
                str(src),
                str(dst),
                _CalibrationReader(calibration),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                nodes_to_quantize=nodes,
                calibrate_method=CalibrationMethod.MinMax,
                # zero points 0 and float biases: what TensorRT's explicit quantization accepts
                extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False},
            )
        finally:
            root.setLevel(level)
        return onnx.load(str(dst)), len(nodes)


def _int8(fp32, ready: ColorizerModule, batches: list[np.ndarray], tmp: Path, tolerance: tuple[int, float], out: Path):
    """The QDQ graph, its parity and its metadata: every network layer but the head first; where that
    misses the tolerance and the network has a pretrained ``encoder`` (the teacher's EfficientNet, whose
    activations min/max calibration handles badly), the layers after it only. The choice is recorded."""
    layers = network_nodes(fp32)
    scopes = [("network layers but the head", layers)]
    decoder = [n for n in layers if not n.startswith(("/net/encoder/", "/net/net.encoder/"))]
    if 0 < len(decoder) < len(layers):
        scopes.append(("network layers after the encoder, but the head", decoder))
    missed = []
    for label, nodes in scopes:
        model, n_quantized = quantize_network(fp32, batches, nodes)
        parity = _check_and_measure(model, ready, tmp)
        if parity.within(*tolerance):
            break
        missed.append(f"{label}: max |diff| {parity.max_abs}, mean {parity.mean_abs:.4f}")
    else:
        raise ExportError(
            f"{out}: int8 parity check failed ({'; '.join(missed)}; limits: max {tolerance[0]}, mean {tolerance[1]} "
            "uint8 levels)"
        )
    notes = {
        "quantization": "onnxruntime static QDQ, per-channel symmetric int8 weights, symmetric int8 activations "
        "(TensorRT's explicit quantization takes them as they are), min/max calibration",
        "quantized_scope": label,
        "quantized_scope_missed": "; ".join(missed),
        "calibration_images": str(sum(len(b) for b in batches)),
        "quantized_nodes": str(n_quantized),
    }
    return model, parity, notes


def _set_metadata(model, meta: dict[str, str]) -> None:
    del model.metadata_props[:]
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)


def _check_and_measure(model, colorizer: ColorizerModule, where: Path) -> Parity:
    import onnx

    onnx.checker.check_model(model)
    onnx.save(model, str(where))
    return measure_parity(colorizer, OrtRunner(where, providers=["CPUExecutionProvider"]))


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
    simplify: bool = True,
    gather_elements: bool = True,
) -> Exported:
    """Export ``colorizer`` to ``out`` at ``precision``; raises ExportError if no candidate graph passes the
    parity check (nothing is left behind then). ``exporter``: ``auto`` (dynamo, then TorchScript),
    ``dynamo`` or ``torchscript``; default ``DEFAULT_EXPORTER``. int8 needs ``calibration``: uint8 images
    like the real inputs (never a default set: the ranges it sets are what int8 quality depends on).
    ``gather_elements``: the Lab path's lookups as GatherElements (:func:`cheap_lookups`; ONNX Runtime's
    fast form), else as the exporters write them (Gather: OpenVINO's faster form there, ~1.1x at 1080p).
    """
    out = Path(out)
    exporter = exporter or DEFAULT_EXPORTER
    if precision not in FORMAT.precisions:
        raise ValueError(f"onnx: unknown precision {precision!r}; known: {', '.join(FORMAT.precisions)}")
    if exporter not in ("auto", *EXPORTERS):
        raise ValueError(f"onnx: unknown exporter {exporter!r}; known: auto, {', '.join(EXPORTERS)}")
    batches = as_batches(calibration or [])
    if precision == "int8" and not batches:
        raise ValueError("onnx int8 needs calibration images (uint8, like the real inputs): pass --calibration DIR")
    tolerance = FORMAT.tolerances[precision]
    ready = export_ready(colorizer)
    exporters = EXPORTERS if exporter == "auto" else (exporter,)
    with staged(out, force=force) as tmp:
        failures: list[str] = []
        for name in exporters:
            try:
                raw = _to_onnx(ready, name)
            except Exception as exc:  # an exporter that cannot handle the module: the next one is tried
                check_stop()  # a stop that a library swallowed is no failure to go on past
                failures.append(f"{name}: {one_line(exc)}")
                continue
            uint8_at_the_edges(raw)
            if gather_elements:
                cheap_lookups(raw)
            candidates = [("onnxsim", _simplified(raw) if simplify else None), ("none", raw)]
            for simplifier, fp32 in candidates:
                if fp32 is None:
                    continue
                try:
                    parity = _check_and_measure(fp32, ready, tmp)
                except Exception as exc:  # a graph the checker or ONNX Runtime refuses: the next candidate
                    check_stop()  # a stop that a library swallowed is no failure to go on past
                    failures.append(f"{name}+{simplifier}: {one_line(exc)}")
                    continue
                if parity.within(*FORMAT.tolerances["fp32"]):
                    break
                # onnxsim has been seen to break a graph: the unsimplified one is tried next
                failures.append(f"{name}+{simplifier}: max |diff| {parity.max_abs}, mean {parity.mean_abs:.4f}")
            else:
                continue
            break
        else:
            raise ExportError(
                f"{out}: ONNX parity check failed ({'; '.join(failures)}; fp32 limits: max "
                f"{FORMAT.tolerances['fp32'][0]}, mean {FORMAT.tolerances['fp32'][1]} uint8 levels)"
            )
        model, notes = fp32, {}
        if precision == "fp16":
            half = copy.deepcopy(ready)
            half.net = HalfNetwork(half.net)
            half_raw = _to_onnx(half, name)
            uint8_at_the_edges(half_raw)
            if gather_elements:
                cheap_lookups(half_raw)
            model = (_simplified(half_raw) if simplifier == "onnxsim" else None) or half_raw
        elif precision == "int8":
            model, parity, notes = _int8(fp32, ready, batches, tmp, tolerance, out)
        if precision == "fp16":
            parity = _check_and_measure(model, ready, tmp)
        if precision != "fp32":
            parity_gate(out, parity, tolerance)
        meta = artifact_metadata(
            colorizer,
            "onnx",
            precision,
            model_name,
            checkpoint,
            exporter=name,
            simplifier=simplifier,
            opset=str(OPSET),
            exporter_fallback="; ".join(failures),
            parity_max=str(parity.max_abs),
            parity_mean=f"{parity.mean_abs:.5f}",
            **notes,
        )
        _set_metadata(model, meta)
        import onnx

        onnx.save(model, str(tmp))
    return Exported(out, parity, meta)


def export_onnx(colorizer: ColorizerModule, path: str | Path, **kwargs) -> tuple[Path, Parity]:
    """fp32 export, the first version's call; kept for callers: ``export(...)`` is the interface."""
    exported = export(colorizer, path, **kwargs)
    return exported.path, exported.parity


def read_metadata(path: str | Path) -> dict[str, str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}
