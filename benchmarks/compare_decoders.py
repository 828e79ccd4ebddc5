"""Train the teacher generator with each decoder on the same short budget and compare them.

    python -m benchmarks.compare_decoders --data data/train --val data/val --steps 500

Both runs use the gan-teacher recipe's pre-training stage only (same data, seed, steps), then are
scored on the validation folder (PSNR, LPIPS, colorfulness ratio; the evaluation pool is kept for the
final report, not for choosing) and timed on one 256x256 image.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from edge_colorizer.colorizer import ColorizerModule
from edge_colorizer.evaluate import evaluate, time_colorizer
from edge_colorizer.metrics.lpips import LPIPS
from training.config import RECIPES
from training.train import train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--val", required=True, help="validation photos (data prepare writes them to val/)")
    ap.add_argument("--out", default="runs/decoders")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--max-side", type=int, default=512)
    args = ap.parse_args()
    lpips = LPIPS("alex")
    results = {}
    for decoder in ("plain", "dynamic"):
        base = RECIPES["gan-teacher"]
        cfg = dataclasses.replace(
            base,
            data=args.data,
            out=str(Path(args.out) / decoder),
            steps=args.steps,
            gan=None,
            ema=0.0,
            tensorboard=False,
            model_args={**base.model_args, "decoder": decoder},
        )
        for stale in Path(cfg.out).glob("state_*.pt"):  # a comparison starts fresh, an interrupted one too
            stale.unlink()
        gen = train(cfg).model
        colorizer = ColorizerModule(gen.eval())
        r = evaluate({decoder: colorizer}, args.val, max_side=args.max_side, include_gray=False, lpips=lpips)[0]
        results[decoder] = {
            "psnr": r.psnr_db,
            "lpips": r.lpips,
            "cf_ratio": r.colorfulness_ratio,
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
