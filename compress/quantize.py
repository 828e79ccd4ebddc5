"""INT8 of the network only: the Lab kernel, the resizes and the ab decoding stay float in every artifact.

Post-training: the format's own INT8 exporter (ONNX Runtime static QDQ with per-channel weights, or
OpenVINO through NNCF) calibrated on training photos. Quantization-aware (``qat_steps`` > 0): the
network is first fine-tuned through the shared training loop with fake quantization of its weights
and activations (per-channel symmetric weights, per-tensor activations with running ranges), so the
weights settle where INT8 rounding costs least; the calibrated export follows.

The INT8 artifact is scored against its fp32 parent on the validation photos; a result worse by more
than ``budget`` LPIPS is refused: nothing is written, and the error says by how much.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from compress.card import CARD_SUFFIX, hardware, write_card_markdown
from edge_colorizer.checkpoint import load_model, save_model
from edge_colorizer.colorizer import DEFAULT_SIZE, ColorizerModule
from edge_colorizer.inference import resolve_model_path
from edge_colorizer.io import file_sha256, remove_path, write_bytes_atomic
from edge_colorizer.models.profile import count_macs, count_params
from runtimes.artifacts import artifact_size
from runtimes.export import load_calibration
from runtimes.formats import get_format, load_format_module
from runtimes.runners import INPUT_NAME, OUTPUT_NAME
from training.config import TrainConfig
from training.loop import STOP


class QuantizationRefused(ValueError):
    """The INT8 result lost more validation quality than the budget allows."""


@dataclass(frozen=True)
class QuantizeConfig:
    model: str  # bundled name or checkpoint of the fp32 parent
    out: str  # output folder
    data: str  # calibration photos (the training pool)
    val: str  # validation photos: INT8 against fp32
    format: str = "onnx"  # a format of the table with an "int8" precision that runs here
    calibration_images: int = 64
    calibration_side: int = 256  # photos are resized so the long side is this
    budget: float = 0.005  # most LPIPS (validation) the INT8 result may lose against its parent
    qat: TrainConfig | None = None  # quantization-aware fine-tuning before the export
    threads: int = 0
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        fmt = get_format(self.format)
        if "int8" not in fmt.precisions or not fmt.runs_on_linux or fmt.needs_gpu:
            raise ValueError(f"format {self.format!r} has no INT8 export that runs here (use onnx or openvino)")
        if self.calibration_images < 1 or self.budget < 0:
            raise ValueError("calibration_images must be >= 1 and budget >= 0")


def runner_colorizer(runner):
    """An active runner as what ``evaluate`` takes: uint8 (H, W, 3) -> uint8 (H, W, 3)."""
    return lambda rgb: runner.infer({INPUT_NAME: np.ascontiguousarray(rgb)[None]})[OUTPUT_NAME][0]


# ---- quantization-aware fine-tuning: fake quantization attached to the network's convolutions


def _fake_quant(x: torch.Tensor, scale: torch.Tensor, qmin: int, qmax: int) -> torch.Tensor:
    """Round to the INT8 grid in the forward pass, identity gradient (straight-through estimator)."""
    q = (x / scale).round().clamp(qmin, qmax) * scale
    return x + (q - x).detach()


class _WeightFakeQuant(nn.Module):
    """Per-output-channel symmetric INT8 weights, as ONNX Runtime's per-channel QDQ and NNCF use."""

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        scale = (w.detach().abs().amax(dim=tuple(range(1, w.dim())), keepdim=True) / 127.0).clamp(min=1e-8)
        return _fake_quant(w, scale, -127, 127)


def _activation_fake_quant(module: nn.Module, args: tuple) -> tuple:
    """Forward pre-hook: per-tensor asymmetric uint8 inputs over an EMA of the observed min/max range."""
    x = args[0]
    if module.training:
        seen = torch.stack((x.detach().min(), x.detach().max()))
        if module.qat_range[0] == module.qat_range[1] == 0:
            module.qat_range.copy_(seen)
        else:
            module.qat_range.mul_(0.99).add_(0.01 * seen)
    lo, hi = module.qat_range[0].clamp(max=0.0), module.qat_range[1].clamp(min=0.0)
    scale = ((hi - lo) / 255.0).clamp(min=1e-8)
    offset = (-lo / scale).round() * scale
    return (_fake_quant(x + offset, scale, 0, 255) - offset, *args[1:])


def _quantized_convs(net: nn.Module) -> list[nn.Conv2d]:
    """Every convolution of the network but the ab head (its logits feed the float softmax decode)."""
    return [m for m in net.modules() if isinstance(m, nn.Conv2d) and m is not getattr(net, "head", None)]


def insert_fake_quant(net: nn.Module) -> nn.Module:
    """Attach weight and input fake quantization to the convolutions of ``net`` (in place)."""
    from torch.nn.utils import parametrize

    for conv in _quantized_convs(net):
        parametrize.register_parametrization(conv, "weight", _WeightFakeQuant())
        conv.register_buffer("qat_range", torch.zeros(2, device=conv.weight.device))
        conv.register_forward_pre_hook(_activation_fake_quant)
    return net


def strip_fake_quant(net: nn.Module) -> nn.Module:
    """Plain convolutions again, holding the QAT-tuned float weights, ready for the calibrated export."""
    from torch.nn.utils import parametrize

    for conv in net.modules():
        if isinstance(conv, nn.Conv2d) and parametrize.is_parametrized(conv, "weight"):
            parametrize.remove_parametrizations(conv, "weight", leave_parametrized=False)
            del conv._buffers["qat_range"]
            for key, hook in list(conv._forward_pre_hooks.items()):
                if hook is _activation_fake_quant:
                    del conv._forward_pre_hooks[key]
    return net


def qat_finetune(parent: nn.Module, cfg: TrainConfig, resume: bool, log, stop_after: int | None) -> nn.Module | None:
    """Fine-tune a copy of ``parent`` with fake quantization through the shared loop; None when cut short."""
    import copy

    from training.train import train

    run = train(cfg, resume=resume, log=log, stop_after=stop_after, model=insert_fake_quant(copy.deepcopy(parent)))
    return strip_fake_quant(run.model) if run.finished else None


@dataclass
class QuantizeResult:
    path: Path | None
    card: dict


def quantize(cfg: QuantizeConfig, resume: bool = False, log=print, stop_after: int | None = None) -> QuantizeResult:
    """Calibrate (optionally after QAT), export INT8, score against the parent; refuse beyond the budget."""
    from edge_colorizer.evaluate import evaluate
    from edge_colorizer.metrics.lpips import LPIPS

    t0 = time.perf_counter()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    parent_path = resolve_model_path(cfg.model)
    parent = load_model(parent_path)
    size = getattr(parent, "input_size", DEFAULT_SIZE)
    net, method = parent, "post-training"
    if cfg.qat is not None:
        qat_cfg = dataclasses.replace(
            cfg.qat, out=str(out / "qat"), model=parent.model_name, model_args=dict(parent.model_args), input_size=size
        )
        tuned = qat_finetune(parent, qat_cfg, resume and any((out / "qat").glob("state_*.pt")), log, stop_after)
        if tuned is None:
            return QuantizeResult(None, {})
        net, method = tuned.eval(), f"quantization-aware ({qat_cfg.steps} steps) + post-training calibration"
        save_model(net, out / "qat" / "model.pt", input_size=size)  # the QAT-tuned float weights, plain again
        if STOP.is_set():  # a stop asked for during the last step: the export is the resumed run's
            log("stopped after the quantization-aware fine-tuning; continue with --resume")
            return QuantizeResult(None, {})
    fmt = get_format(cfg.format)
    module = load_format_module(fmt)
    calibration = load_calibration(cfg.data, cfg.calibration_images, cfg.calibration_side, log=log)
    log(f"calibrating on {len(calibration)} photos from {cfg.data}; exporting {fmt.name} int8")
    target = out / f"model_int8{fmt.suffix}"
    exported = module.export(
        ColorizerModule(net, size=size).eval(),
        target,
        precision="int8",
        calibration=calibration,
        model_name=f"{Path(cfg.model).stem}-int8",
        checkpoint=parent_path,
        force=True,  # this folder is the command's own output: a rerun replaces its artifact
    )
    lpips = LPIPS("alex")
    with module.Runner(exported.path, threads=cfg.threads) as runner:
        scored = evaluate(
            {"fp32": ColorizerModule(parent, size=size).eval(), "int8": runner_colorizer(runner)},
            cfg.val,
            max_side=256,
            lpips=lpips,
        )
    rows = {r.name: {"lpips": r.lpips, "psnr": r.psnr_db, "cf_ratio": r.colorfulness_ratio} for r in scored}
    loss = rows["int8"]["lpips"] - rows["fp32"]["lpips"]
    if loss > cfg.budget:
        remove_path(exported.path)
        for sidecar in exported.path.parent.glob(f"{exported.path.name}.*"):
            remove_path(sidecar)
        raise QuantizationRefused(
            f"{cfg.model}: INT8 ({fmt.name}, {method}) is worse than fp32 by {loss:.4f} LPIPS on {cfg.val} "
            f"(budget {cfg.budget}); nothing written"
        )
    card = {
        "title": f"{cfg.model} in INT8 ({fmt.name})",
        "method": f"{method}; network only (Lab kernel, resizes and ab decoding stay float)",
        "parent": f"{cfg.model} (sha256 {file_sha256(parent_path)[:16]})",
        "format": f"{fmt.name}, run by {fmt.runtime}",
        "calibration": f"{len(calibration)} photos from {cfg.data}, long side {cfg.calibration_side}",
        "validation LPIPS change": f"{loss:+.4f} (budget {cfg.budget})",
        "parity vs fp32 torch (uint8 levels)": f"max {exported.parity.max_abs}, mean {exported.parity.mean_abs:.3f}",
        "size": f"{artifact_size(exported.path):.2f} MB",
        "params": count_params(net),
        "gmacs": count_macs(net, size) / 1e9,
        "wall time": f"{time.perf_counter() - t0:.0f} s (this call)",
        "hardware": hardware(),
        "validation": rows,
        **cfg.extra,
    }
    write_card_markdown(card, out)
    write_bytes_atomic(out / f"{exported.path.name}{CARD_SUFFIX}", json.dumps(card, indent=1).encode())
    log(f"wrote {exported.path} (validation LPIPS {rows['int8']['lpips']:.4f} vs fp32 {rows['fp32']['lpips']:.4f})")
    return QuantizeResult(exported.path, card)
