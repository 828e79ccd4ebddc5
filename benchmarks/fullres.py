"""What the full-resolution path costs: each model at 256x256 and at 1920x1080 in the same run, the
old float-kernel path for reference, and OpenCV's cvtColor RGB->Lab->RGB on the same 1080p frame.

    python -m benchmarks.fullres                          # torch eager on the CPU, gray/student/teacher
    python -m benchmarks.fullres --runtimes torch,onnxruntime --threads 2
    python -m benchmarks.fullres --device cuda            # cuda rows: 256^2 and 1080p, batch 1 and 8

The cases are timed in interleaved rounds (one call of each per round), so a load that comes and goes
on a shared machine touches all of them alike and the ratios hold; p50 and p95 are over the rounds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edge_colorizer.colorizer import ColorizerModule, GrayBaseline, colorize_reference
from edge_colorizer.inference import load_colorizer
from edge_colorizer.stopping import check_stop
from edge_colorizer.timing import Timing, time_ms

# targets of issue 10, on the CPU
TARGET_1080_OVER_256 = 2.5
TARGET_GRAY_OVER_OPENCV = 3.0
SHAPES = {"256x256": (256, 256), "1080p": (1080, 1920)}


@dataclass
class Case:
    name: str
    run: Callable[[], object]
    sync: Callable[[], None] = lambda: None
    times: list[float] | None = None  # ms

    def p50(self) -> float:
        return Timing(tuple(self.times)).p50

    def p95(self) -> float:
        return Timing(tuple(self.times)).p95


def time_interleaved(cases: list[Case], repeats: int, warmup: int) -> None:
    """Each case timed once per round, round after round, so a change in the machine's load touches every
    case alike (what makes the ratios trustworthy on a shared machine)."""
    for case in cases:
        case.times = []
        for _ in range(warmup):
            case.run()
        case.sync()
    for _ in range(repeats):
        for case in cases:
            case.times.extend(time_ms(case.run, repeats=1, warmup=0, synchronize=case.sync).times_ms)


def frame(shape: tuple[int, int], batch: int = 1, seed: int = 0) -> np.ndarray:
    """A photo-like uint8 RGB frame: scikit-image's astronaut resized, else smooth noise."""
    h, w = shape
    try:
        from PIL import Image
        from skimage import data

        img = np.asarray(Image.fromarray(data.astronaut()).resize((w, h), Image.BILINEAR))
    except ImportError:
        rng = np.random.default_rng(seed)
        img = (rng.random((h // 8 + 1, w // 8 + 1, 3)) * 255).astype(np.uint8).repeat(8, 0).repeat(8, 1)[:h, :w]
    return np.array(np.broadcast_to(img, (batch, h, w, 3)))  # a writable copy (torch warns on read-only)


def colorizers(names: list[str], device: str) -> dict[str, ColorizerModule]:
    out = {}
    for name in names:
        if name == "gray":
            out["gray (ab = 0)"] = ColorizerModule(GrayBaseline()).eval().to(device)
        else:
            out[name] = load_colorizer(name, device=device)
    return out


def torch_cases(models: dict[str, ColorizerModule], reference: bool) -> list[Case]:
    cases = []
    for name, colorizer in models.items():
        for label, shape in SHAPES.items():
            x = torch.from_numpy(frame(shape))

            def run(c=colorizer, x=x):
                with torch.inference_mode():
                    return c(x)

            cases.append(Case(f"{name} | torch | {label}", run))
        if reference:
            x = torch.from_numpy(frame(SHAPES["1080p"]))

            def run_ref(c=colorizer, x=x):
                with torch.inference_mode():
                    return colorize_reference(c.net, c.size, x)

            cases.append(Case(f"{name} | torch, float-kernel path (before) | 1080p", run_ref))
    return cases


def runtime_cases(models: dict[str, ColorizerModule], runtime: str, folder: Path, threads: int) -> list[Case]:
    from runtimes.formats import format_for_runtime, load_format_module
    from runtimes.runners import INPUT_NAME

    fmt = format_for_runtime(runtime)
    module = load_format_module(fmt)
    cases = []
    for name, colorizer in models.items():
        path = folder / f"{name.split()[0]}{fmt.suffix}"
        module.export(colorizer.cpu(), path)
        runner = module.Runner(path, threads=threads, name=runtime)
        runner.__enter__()
        for label, shape in SHAPES.items():
            feeds = {INPUT_NAME: frame(shape)}
            cases.append(
                Case(f"{name} | {runtime} | {label}", lambda r=runner, f=feeds: r.infer(f), runner.synchronize)
            )
    return cases


def opencv_case(threads: int) -> Case | None:
    try:
        import cv2
    except ImportError:
        return None
    if threads:
        cv2.setNumThreads(threads)
    rgb = frame(SHAPES["1080p"])[0]
    return Case(
        "OpenCV cvtColor RGB->Lab->RGB, uint8 | - | 1080p",
        lambda: cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab), cv2.COLOR_Lab2RGB),
    )


def run_cuda(models: dict[str, ColorizerModule], repeats: int, warmup: int, compiled: bool = True) -> list[Case]:
    """Each model at each shape, batch 1 and 8, through :class:`CudaFramePipeline`, timed as soon as it is
    built and printed at once (compiling every pipeline first would hold every number back); a pipeline
    that fails to build or run is a row with its reason."""
    import time

    from edge_colorizer.colorizer import CudaFramePipeline
    from edge_colorizer.io import one_line

    runtime = "cuda" if compiled else "cuda eager"
    print("| model | runtime | input | build s | p50 ms | p95 ms | ms per frame |\n|---|---|---|---|---|---|---|")
    cases = []
    for name, colorizer in models.items():
        for label, shape in reversed(SHAPES.items()):  # 1080p first: the frames video is about
            for batch in (1, 8):
                case_name = f"{name} | {runtime} | {label} x{batch}"
                try:
                    t0 = time.perf_counter()
                    pipeline = CudaFramePipeline(colorizer, batch, shape[0], shape[1], compiled=compiled)
                    built = time.perf_counter() - t0
                    x = torch.from_numpy(frame(shape, batch)).cuda()
                    case = Case(case_name, lambda p=pipeline, x=x: p(x), torch.cuda.synchronize)
                    time_interleaved([case], repeats, warmup)
                except Exception as exc:  # a row with its reason, the rest goes on
                    check_stop()  # a stop that a library swallowed is no failure to go on past
                    reason = one_line(exc, with_type=True)
                    print(f"| {name} | {runtime} | {label} x{batch} | - | failed: {reason} | | |", flush=True)
                    continue
                cases.append(case)
                print(
                    f"| {name} | {runtime} | {label} x{batch} | {built:.1f} | {case.p50():.3f} | {case.p95():.3f} "
                    f"| {case.p50() / batch:.3f} |",
                    flush=True,
                )
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="gray,student,teacher", help="comma-separated; 'gray' is ab = 0")
    parser.add_argument("--runtimes", default="torch", help="comma-separated: torch and the formats table's runtimes")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--threads", type=int, default=0, help="CPU threads for torch, OpenCV and runtimes (0: default)"
    )
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--no-reference", action="store_true", help="skip the float-kernel path (the slow one)")
    parser.add_argument("--no-compile", action="store_true", help="cuda: eager fp16 pipelines (no torch.compile)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [m for m in args.models.split(",") if m]
    runtimes = [r for r in args.runtimes.split(",") if r]
    if args.device == "cuda":
        if not torch.cuda.is_available():
            print("--device cuda: torch sees no CUDA device", file=sys.stderr)
            return 2
        torch.backends.cudnn.benchmark = True
        print(f"{torch.cuda.get_device_name(0)}; torch {torch.__version__}; repeats {args.repeats}")
        run_cuda(colorizers(names, "cuda"), args.repeats, args.warmup, compiled=not args.no_compile)
        return 0
    models = colorizers(names, "cpu")
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        for runtime in runtimes:
            if runtime == "torch":
                cases += torch_cases(models, reference=not args.no_reference)
            else:
                cases += runtime_cases(models, runtime, Path(tmp), args.threads)
        opencv = opencv_case(args.threads)
        cases += [opencv] if opencv else []
        time_interleaved(cases, args.repeats, args.warmup)
    report(cases, args)
    return 0


def report(cases: list[Case], args: argparse.Namespace) -> None:
    print(f"threads: torch {torch.get_num_threads()}; repeats {args.repeats} (interleaved); torch {torch.__version__}")
    print("\n| model | runtime | input | p50 ms | p95 ms |\n|---|---|---|---|---|")
    by_name = {}
    for case in cases:
        model, runtime, label = (s.strip() for s in case.name.split("|"))
        by_name[(model, runtime, label)] = case.p50()
        print(f"| {model} | {runtime} | {label} | {case.p50():.1f} | {case.p95():.1f} |")
    print()
    opencv = next((v for (m, _, _), v in by_name.items() if m.startswith("OpenCV")), None)
    for (model, runtime, label), ms in by_name.items():
        if label != "1080p" or runtime.startswith("torch,"):
            continue
        small = by_name.get((model, runtime, "256x256"))
        if small and not model.startswith("gray"):  # the target is about a network's own 256x256 time
            ratio = ms / small
            verdict = "met" if ratio <= TARGET_1080_OVER_256 else "missed"
            print(f"{model} / {runtime}: 1080p = {ratio:.2f} x 256x256 (target <= {TARGET_1080_OVER_256}: {verdict})")
        if model.startswith("gray") and opencv:
            ratio = ms / opencv
            verdict = "met" if ratio <= TARGET_GRAY_OVER_OPENCV else "missed"
            print(f"{model} / {runtime}: 1080p = {ratio:.2f} x OpenCV (target <= {TARGET_GRAY_OVER_OPENCV}: {verdict})")


if __name__ == "__main__":
    sys.exit(main())
