"""ONNX export of the colorizer module (uint8 NHWC in, uint8 RGB out, Lab kernel inside the graph).

The graph has dynamic batch, height, width and channel count (1 = gray, 3 = RGB); it is simplified
with onnxsim when available, carries its provenance in ``metadata_props``, and every export ends
with a parity check against torch that fails the export beyond a stated tolerance.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from edge_colorizer import __version__
from edge_colorizer.colorizer import ColorizerModule
from edge_colorizer.lab import AB_NORM, L_CENT, L_NORM, WHITE_D65
from runtimes.runners import INPUT_NAME, OUTPUT_NAME, BaseRunner, Parity, TorchRunner, compare

OPSET = 17
# Parity tolerance in uint8 levels: fp32 ORT vs torch differ by float rounding only.
MAX_ABS_DIFF = 2
MEAN_ABS_DIFF = 0.05


def _sha256(path: Path | None) -> str:
    if path is None or not Path(path).exists():
        return ""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def parity_images(seed: int = 0) -> list[np.ndarray]:
    """A fixed set of test inputs: RGB and gray, odd sizes, a smooth ramp and noise."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, 97 * 131).reshape(97, 131)
    return [
        rng.integers(0, 256, (1, 64, 80, 3), dtype=np.uint8),
        np.repeat(ramp[None, ..., None], 3, axis=3).astype(np.uint8),
        rng.integers(0, 256, (2, 120, 90, 1), dtype=np.uint8),
    ]


class OrtRunner(BaseRunner):
    """ONNX Runtime; CUDA execution provider first when present, else CPU."""

    runtime = "onnxruntime"

    def __init__(self, path: str | Path, providers: list[str] | None = None, threads: int = 0, name: str = "ort"):
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

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self.session.run([OUTPUT_NAME], feeds)
        return {OUTPUT_NAME: outputs[0]}


def _simplified(model):
    """The onnxsim-simplified graph, or None where onnxsim is absent or gives up."""
    try:
        from onnxsim import simplify
    except ImportError:
        return None
    try:
        simplified, ok = simplify(model)
    except Exception:  # onnxsim raises assorted errors on graphs it cannot handle
        return None
    return simplified if ok else None


def _trace_to_onnx(colorizer: ColorizerModule, example: torch.Tensor, path: Path) -> None:
    """TorchScript-trace export: dynamic batch, height, width and channels (1 or 3)."""
    torch.onnx.export(
        colorizer,
        (example,),
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


def export_onnx(
    colorizer: ColorizerModule,
    path: str | Path,
    model_name: str = "",
    checkpoint: str | Path | None = None,
    simplify: bool = True,
) -> tuple[Path, Parity]:
    """Export ``colorizer`` to ``path``; raises if the parity check fails (nothing is left behind then)."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    colorizer = colorizer.eval().cpu()
    example = torch.zeros(1, 64, 64, 3, dtype=torch.uint8)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".onnx", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        with warnings.catch_warnings():
            # input checks and the fixed network size are constants of the trace, by design
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            _trace_to_onnx(colorizer, example, tmp)
        raw = onnx.load(str(tmp))
        candidates = [("onnxsim", _simplified(raw))] if simplify else []
        candidates.append(("none", raw))
        meta = {
            "producer": f"edge-colorizer {__version__}",
            "model": model_name,
            "precision": "fp32",
            "network_size": str(colorizer.size),
            "input": json.dumps({"name": INPUT_NAME, "dtype": "uint8", "layout": "NHWC", "channels": [1, 3]}),
            "output": json.dumps({"name": OUTPUT_NAME, "dtype": "uint8", "layout": "NHWC", "channels": 3}),
            "lab": json.dumps({"white": WHITE_D65, "l_cent": L_CENT, "l_norm": L_NORM, "ab_norm": AB_NORM}),
            "checkpoint_sha256": _sha256(Path(checkpoint) if checkpoint else None),
        }
        failures = []
        for simplifier, model in candidates:
            if model is None:
                continue
            del model.metadata_props[:]
            for key, value in {**meta, "simplifier": simplifier}.items():
                entry = model.metadata_props.add()
                entry.key, entry.value = key, value
            onnx.checker.check_model(model)
            onnx.save(model, str(tmp))
            with TorchRunner(colorizer) as ref, OrtRunner(tmp, providers=["CPUExecutionProvider"]) as runner:
                parity = compare(ref, runner, parity_images())
            if parity.within(MAX_ABS_DIFF, MEAN_ABS_DIFF):
                break
            # onnxsim has been seen to break a graph (the teacher's): the unsimplified one is tried next
            failures.append(f"{simplifier}: max |diff| {parity.max_abs}, mean {parity.mean_abs:.4f}")
        else:
            raise RuntimeError(
                f"{path}: ONNX parity check failed ({'; '.join(failures)}; limits: max {MAX_ABS_DIFF}, "
                f"mean {MEAN_ABS_DIFF} uint8 levels)"
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path, parity


def read_metadata(path: str | Path) -> dict[str, str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}
