"""Train the teacher generator with each decoder on the same short budget and compare them.

    python -m benchmarks.compare_decoders --data data/train --eval data/eval --steps 300

Both runs use the gan-teacher recipe's pre-training phase only (same data, seed, steps), then are
scored on the evaluation folder (PSNR, LPIPS, colorfulness ratio) and timed on one 256x256 image.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from edge_colorizer.colorizer import ColorizerModule
from edge_colorizer.evaluate import time_colorizer
from edge_colorizer.inference import colorize_array
from edge_colorizer.io import find_images, read_image
from edge_colorizer.metrics import colorfulness, psnr
from edge_colorizer.metrics.lpips import LPIPS, to_lpips_input
from training.config import gan_recipe
from training.gan import train_gan


def score(colorizer: ColorizerModule, images: list[np.ndarray], lpips: LPIPS) -> dict[str, float]:
    rows, cf_pred, cf_true = [], [], []
    with torch.inference_mode():
        for truth in images:
            pred = colorize_array(colorizer, truth)
            rows.append((psnr(pred, truth), float(lpips(to_lpips_input(pred), to_lpips_input(truth)))))
            cf_pred.append(colorfulness(pred))
            cf_true.append(colorfulness(truth))
    p, lp = np.mean(rows, axis=0)
    return {"psnr": float(p), "lpips": float(lp), "cf_ratio": float(np.mean(cf_pred) / np.mean(cf_true))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--eval", required=True)
    ap.add_argument("--out", default="runs/decoders")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--max-side", type=int, default=512)
    args = ap.parse_args()
    lpips = LPIPS("alex")
    images = []
    for path in find_images([args.eval]):
        img = Image.fromarray(read_image(path).rgb)
        img.thumbnail((args.max_side, args.max_side), Image.LANCZOS)
        images.append(np.asarray(img))
    results = {}
    for decoder in ("plain", "dynamic"):
        base = gan_recipe("gan-teacher")
        cfg = dataclasses.replace(
            base,
            data=args.data,
            out=str(Path(args.out) / decoder),
            pretrain_steps=args.steps,
            gan_steps=0,
            ema=0.0,
            tensorboard=False,
            generator_args={**base.generator_args, "decoder": decoder},
        )
        _, gen = train_gan(cfg)
        colorizer = ColorizerModule(gen.eval())
        results[decoder] = {
            **score(colorizer, images, lpips),
            "params": sum(p.numel() for p in gen.parameters()),
            "p50_ms_256": time_colorizer(colorizer, 256, 256)["p50_ms"],
        }
    print(f"| decoder | params | PSNR dB | LPIPS | CF ratio | p50 ms (256x256) |  ({args.steps} pre-training steps)")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['params'] / 1e6:.2f}M | {r['psnr']:.2f} | {r['lpips']:.4f} | {r['cf_ratio']:.2f} "
            f"| {r['p50_ms_256']:.1f} |"
        )
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "decoders.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
