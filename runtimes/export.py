"""The one entry point of every export: the format table says which module exports, which precisions
it takes and which need calibration images; this checks the request against it and dispatches.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge_colorizer.colorizer import ColorizerModule
from edge_colorizer.inference import BUNDLED
from edge_colorizer.io import NAME_MAX, fit_long_side, same_file, shown
from runtimes.artifacts import ExportError, check_destination, check_named
from runtimes.formats import Format, get_format, load_format_module
from runtimes.models import artifact_format
from runtimes.runners import Exported

CALIBRATION_IMAGES = 32  # default number of calibration photos read from a folder
CALIBRATION_SIDE = 512  # their long side: the network sees a fixed small L anyway


def load_calibration(
    folder: str | Path,
    max_images: int = CALIBRATION_IMAGES,
    max_side: int = CALIBRATION_SIDE,
    log: Callable[[str], None] = print,
):
    """uint8 RGB calibration images from a folder of photos: ``max_images`` spread evenly over the sorted
    paths (a pool sorted by source package would otherwise calibrate on one package only). A photo that
    cannot be read is one ``log`` line and skipped; a ValueError only if none is left.

    Calibration sets the int8 ranges: use photos like the real inputs, never the evaluation photos."""
    from edge_colorizer.evaluate import why_skipped
    from edge_colorizer.io import find_images, read_image

    paths = find_images([str(folder)])
    if len(paths) > max_images:
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, max_images).round().astype(int)]
    images = []
    for path in paths:
        try:
            images.append(fit_long_side(read_image(path).rgb, max_side))
        except (ValueError, OSError) as exc:
            log(f"skip calibration photo {why_skipped(path, exc)}")
    if not images:
        raise ValueError(f"{shown(folder)}: no calibration images found")
    return images


def check_request(fmt: Format, precision: str, calibration: list | None) -> None:
    """The table's word on a request: the precision exists for the format, calibration is given where needed."""
    if precision not in fmt.precisions:
        raise ValueError(f"{fmt.name} has no precision {precision!r}; it has {', '.join(fmt.precisions)}")
    if precision in fmt.calibrated and not calibration:
        raise ValueError(
            f"{fmt.name} {precision} needs calibration images (photos like the real inputs, not the evaluation "
            "set): pass --calibration DIR"
        )


def export_artifact(
    colorizer: ColorizerModule,
    fmt: str,
    out: str | Path,
    precision: str | None = None,
    calibration: list[np.ndarray] | None = None,
    model_name: str = "",
    checkpoint: str | Path | None = None,
    force: bool = False,
    shape: tuple[int, int] | None = None,
) -> Exported:
    """Export ``colorizer`` to format ``fmt`` at ``precision`` (default: the format's first) into ``out``.

    ``shape`` (H, W) is the input of a fixed-shape format (the table's ``fixed_shape``), RGB, batch 1;
    another format refuses it. An existing ``out`` is refused unless ``force``; the artifact is written
    beside ``out`` and renamed into place only after it passed its parity check."""
    spec = get_format(fmt)
    precision = precision or spec.precisions[0]
    check_request(spec, precision, calibration)
    if shape is not None and not spec.fixed_shape:
        raise ValueError(f"{spec.name} artifacts take any image size: a fixed input shape does not apply")
    out = Path(out)
    _check_target(spec, out, force, checkpoint)
    if spec.needs_gpu:
        import torch

        if not torch.cuda.is_available():
            raise ExportError(
                f"{out}: {spec.name} builds its engine on the GPU that will run it, and torch sees no CUDA device "
                "here; run this command on the target (see the README's Jetson recipe)"
            )
    module = load_format_module(spec)
    kwargs = {"force": force} if "force" in inspect.signature(module.export).parameters else {}
    if shape is not None:
        kwargs["shape"] = (1, int(shape[0]), int(shape[1]), 3)
    return module.export(colorizer, out, precision, calibration, model_name=model_name, checkpoint=checkpoint, **kwargs)


def _check_target(spec: Format, out: Path, force: bool, checkpoint: str | Path | None) -> None:
    """Before any work: the destination's own checks, a name that says the format (compare, bench and
    colorize know an artifact by it), never the checkpoint itself, and ``force`` replaces only an
    artifact of the same format (a folder of someone's files is not one)."""
    name = shown(out)
    # the name first: an existing file of the wrong name is not worth a --force that would fail next
    check_named(out)
    if artifact_format(out) is not spec:
        raise ExportError(
            f"{name}: {spec.name} artifacts' names end in {spec.suffix} (compare, bench and colorize "
            "know the format by it)"
        )
    check_destination(out, force, spec.folder)
    if len(os.fsencode(out.name + spec.sidecar)) > NAME_MAX:
        raise ExportError(f"{name}: with its {spec.sidecar} card beside it, a name longer than {NAME_MAX} bytes")
    if checkpoint is not None and same_file(out, checkpoint):
        raise ExportError(f"{name}: is the checkpoint being exported; write the artifact to another name")
    bundled = next((model for model, path in BUNDLED.items() if same_file(out, path)), None)
    if bundled is not None:
        raise ExportError(f"{name}: is the bundled model {bundled!r}; write the artifact to another name")
    if force and spec.folder and out.is_dir() and any(out.iterdir()):
        load_format_module(spec)  # a missing SDK says which extra to install, not "not an artifact"
        try:
            known = bool(read_artifact_metadata(spec, out).get("producer", "").startswith("edge-colorizer"))
        except Exception:  # unreadable: not one of ours
            known = False
        if not known:
            raise ExportError(
                f"{name}: exists and is not an edge-colorizer {spec.name} artifact; refusing to replace it"
            )


def read_artifact_metadata(fmt: Format, path: str | Path) -> dict[str, str]:
    """What an artifact says about itself (empty where its module cannot read it back)."""
    module = load_format_module(fmt)
    reader = getattr(module, "read_metadata", None)
    return dict(reader(path)) if reader else {}
