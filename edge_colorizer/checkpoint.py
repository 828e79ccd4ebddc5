"""Checkpoints that rebuild their own model: name + arguments + weights, loaded with ``weights_only=True``."""

from __future__ import annotations

import re
import shutil
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from edge_colorizer.io import atomic_write, one_line
from edge_colorizer.models import create_model
from edge_colorizer.models.structure import apply_channel_plan, channel_plan

FORMAT_VERSION = 1


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """Write to a temporary file beside ``path`` and rename it over, so no half-written file is left
    (a temporary left by a writer killed with SIGKILL is removed by the next save)."""
    with atomic_write(path) as f:
        try:
            torch.save(obj, f)
        except RuntimeError as exc:  # torch's zip writer reports a failed write (a full disk) this way
            # measured while the partial temporary still holds its space (it is removed on the way out)
            folder = Path(path).absolute().parent
            reason = "no space left on its disk" if shutil.disk_usage(folder).free < 16 * 2**20 else one_line(exc)
            raise OSError(f"{path}: could not be written ({reason})") from None


def model_state(model: nn.Module, half: bool = False, input_size: int | None = None) -> dict[str, Any]:
    """The part of a checkpoint that rebuilds ``model`` (built by ``create_model``, pruned or not).

    ``input_size`` is the network size the colorizer runs the model at (default: the model's own
    ``input_size`` attribute, set when it was loaded, else none is stored).
    """
    if not hasattr(model, "model_name"):
        raise ValueError("model was not built by create_model; its name and arguments are unknown")
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    args = dict(model.model_args)
    if getattr(model, "ACCEPTS_PRETRAINED", False):
        args["pretrained"] = False  # the checkpoint holds every weight: rebuilding it must load no ImageNet file
    ckpt = {
        "format_version": FORMAT_VERSION,
        "model_name": model.model_name,
        "model_args": args,
        "state_dict": state,
    }
    input_size = input_size or getattr(model, "input_size", None)
    if input_size:
        ckpt["input_size"] = int(input_size)
    if getattr(model, "pruned", False):
        ckpt["channel_plan"] = channel_plan(model)
    return ckpt


def save_model(model: nn.Module, path: str | Path, half: bool = False, **extra: Any) -> None:
    atomic_torch_save({**model_state(model, half=half, input_size=extra.pop("input_size", None)), **extra}, path)


def read_torch_file(
    path: str | Path, what: str = "checkpoint", weights_only: bool = True, map_location="cpu", mmap: bool = False
) -> Any:
    """``torch.load(path)``, every failure a one-line error naming ``path`` (``what`` it should be): a
    folder, a missing or empty file, a damaged or foreign one. ``mmap``: tensors are read when used."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: a folder, not a {what} file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file (0 bytes), not a {what}")
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of a foreign file
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=weights_only, mmap=mmap)
    except Exception as exc:  # torch raises several types for corrupt files and refused pickles
        raise ValueError(f"{path}: {unreadable_reason(path, exc)}") from None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    ckpt = read_torch_file(path)
    if not isinstance(ckpt, dict) or "model_name" not in ckpt or "state_dict" not in ckpt:
        raise ValueError(f"{path}: not an edge-colorizer checkpoint (no model_name/state_dict)")
    return ckpt


def unreadable_reason(path: Path, exc: Exception) -> str:
    """Why torch could not load ``path``, in words a user can act on (torch's own messages are about its
    internals, and for a refused pickle they suggest turning the safety check off)."""
    refused = re.search(r"Unsupported global: GLOBAL (\S+) was not an allowed global", str(exc))
    if refused:
        return (
            f"refused: the file stores Python objects ({refused.group(1)}), not only tensors "
            "(checkpoints are loaded with weights_only=True)"
        )
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                torch_file = any(n.endswith("/data.pkl") or n == "data.pkl" for n in z.namelist())
        except (OSError, zipfile.BadZipFile):
            torch_file = False
        if not torch_file:
            return "a zip archive, not a torch checkpoint (torch.save writes data.pkl into it)"
        return f"a damaged torch file: changed after it was saved ({type(exc).__name__})"
    if "central directory" in str(exc):
        return "a damaged torch file: truncated, or changed after it was saved"
    return "not a torch checkpoint file, or a damaged one (torch.save writes a zip archive; this is not one)"


def _without_legacy(model: nn.Module, entries: dict, expected: dict) -> dict:
    """``entries`` (a state dict or a channel plan) less the layers that ``model`` no longer has by design
    (its class's ``LEGACY_PREFIXES``: e.g. the teacher encoder's unused classifier, dropped from the
    architecture after checkpoints holding it were written)."""
    prefixes = getattr(model, "LEGACY_PREFIXES", ())
    return {k: v for k, v in entries.items() if k in expected or not k.startswith(prefixes)}


def _build(ckpt: dict[str, Any], where: str) -> tuple[nn.Module, dict]:
    """The checkpoint's architecture (pruned as its plan says) and the state dict to load into it,
    validated before any weight is allocated."""
    name, args = ckpt["model_name"], ckpt.get("model_args", {})
    state, plan = ckpt["state_dict"], ckpt.get("channel_plan")
    if not isinstance(name, str) or not isinstance(args, dict) or not isinstance(state, dict):
        raise ValueError(f"{where}: malformed checkpoint (model_name, model_args or state_dict of the wrong type)")
    if plan is not None and not isinstance(plan, dict):
        raise ValueError(f"{where}: malformed channel plan")
    args = dict(args)
    if args.get("pretrained"):
        args["pretrained"] = False  # a checkpoint holds its own weights: never fetch ImageNet ones at load
    try:
        # on the meta device first: shapes are checked before memory is spent (a forged width=2048
        # would otherwise allocate gigabytes before failing)
        with torch.device("meta"):
            skeleton = create_model(name, **args)
            if plan is not None:
                plan = _without_legacy(skeleton, plan, dict(skeleton.named_modules()))
                apply_channel_plan(skeleton, plan)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: cannot rebuild model {name!r} from its arguments ({one_line(exc)})") from None
    expected = skeleton.state_dict()
    state = _without_legacy(skeleton, state, expected)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        names = missing or unexpected
        detail = f"{'missing' if missing else 'unexpected'} {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
        raise ValueError(f"{where}: weights do not match model {name!r} ({detail})")
    for key, tensor in state.items():
        if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != tuple(expected[key].shape):
            got = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise ValueError(f"{where}: weight {key} has shape {got}, the model needs {tuple(expected[key].shape)}")
    model = create_model(name, **args)
    if plan is not None:
        apply_channel_plan(model, plan)
        model.pruned = True
    return model, state


def model_from_checkpoint(ckpt: dict[str, Any], where: str | Path = "checkpoint") -> nn.Module:
    """Rebuild and load the model a checkpoint dict holds; ``where`` names it in error messages."""
    model, state = _build(ckpt, str(where))
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state)
    if ckpt.get("input_size"):
        model.input_size = int(ckpt["input_size"])
    return model.eval()


def load_model(path: str | Path) -> nn.Module:
    """Rebuild the model stored in ``path`` (weights cast to fp32), in eval mode."""
    return model_from_checkpoint(load_checkpoint(path), path)
