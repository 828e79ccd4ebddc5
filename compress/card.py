"""The card every compressed model carries: parent, method, data, steps, wall time, hardware, metrics.

It is stored inside the checkpoint (``card``) and written beside it as Markdown (``CARD.md``), so a
model found on disk says where it came from and what it measured.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import torch

from edge_colorizer.io import write_bytes_atomic

# an exported artifact's card lies beside it as JSON: "<artifact>.card.json"
CARD_SUFFIX = ".card.json"


def hardware() -> str:
    cpu = platform.processor() or platform.machine()
    gpu = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return f"{cpu}, {torch.get_num_threads()} torch threads{gpu}; torch {torch.__version__}"


def validation_table(models: dict[str, torch.nn.Module], val: str | Path, size: int) -> dict[str, dict]:
    """LPIPS, PSNR and colourfulness ratio of each model on the validation photos (as the loop scores them)."""
    from training.train import make_validator

    validate = make_validator(val, size, check=False)  # the photos were checked (and reported) by the run
    return {name: validate(model.eval()) for name, model in models.items()}


def card_markdown(card: dict[str, Any]) -> str:
    lines = [f"# {card.get('title', 'Compressed model')}", "", "| | |", "|---|---|"]
    for key, value in card.items():
        if key in ("title", "validation"):
            continue
        lines.append(f"| {key} | {value} |")
    val = card.get("validation")
    if val:
        metrics = sorted({m for row in val.values() for m in row})
        lines += ["", "## Validation", "", "| model | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
        for name, row in val.items():
            cells = [f"{row[m]:.4f}" if isinstance(row.get(m), float) else str(row.get(m, "–")) for m in metrics]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_card_markdown(card: dict[str, Any], folder: str | Path) -> Path:
    path = Path(folder) / "CARD.md"
    write_bytes_atomic(path, card_markdown(card).encode())
    return path
