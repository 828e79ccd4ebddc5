"""Checkpoints that rebuild their own model: name + arguments + weights, loaded with ``weights_only=True``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from edge_colorizer.io import default_file_mode
from edge_colorizer.models import create_model

FORMAT_VERSION = 1


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """Write to a temporary file beside ``path`` and rename it over, so no half-written file is left."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)  # left by a writer that was killed (SIGKILL) mid-write
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def model_state(model: nn.Module, half: bool = False) -> dict[str, Any]:
    """The part of a checkpoint that rebuilds ``model`` (built by ``create_model``)."""
    if not hasattr(model, "model_name"):
        raise ValueError("model was not built by create_model; its name and arguments are unknown")
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    args = dict(model.model_args)
    if getattr(model, "ACCEPTS_PRETRAINED", False):
        args["pretrained"] = False  # the checkpoint holds every weight: rebuilding it must load no ImageNet file
    return {
        "format_version": FORMAT_VERSION,
        "model_name": model.model_name,
        "model_args": args,
        "state_dict": state,
    }


def save_model(model: nn.Module, path: str | Path, half: bool = False, **extra: Any) -> None:
    atomic_torch_save({**model_state(model, half=half), **extra}, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt files
        raise ValueError(f"{path}: not a readable checkpoint ({exc.__class__.__name__}: {exc})") from exc
    if not isinstance(ckpt, dict) or "model_name" not in ckpt or "state_dict" not in ckpt:
        raise ValueError(f"{path}: not an edge-colorizer checkpoint (no model_name/state_dict)")
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any]) -> nn.Module:
    model = create_model(ckpt["model_name"], **ckpt.get("model_args", {}))
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    model.load_state_dict(state)
    return model.eval()


def load_model(path: str | Path) -> nn.Module:
    """Rebuild the model stored in ``path`` (weights cast to fp32), in eval mode."""
    return model_from_checkpoint(load_checkpoint(path))
