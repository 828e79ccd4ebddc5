"""The ``edge-colorizer`` command line: thin commands over the library."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edge_colorizer import __version__
from edge_colorizer.colorizer import DEFAULT_SIZE
from runtimes.formats import FORMATS

err = Console(stderr=True)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


@click.group()
@click.version_option(__version__, prog_name="edge-colorizer")
def main() -> None:
    """Train, compress, export and benchmark automatic image colorizers."""


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--model", default="student", show_default=True, help="Bundled model name or checkpoint path.")
@click.option("--size", default=DEFAULT_SIZE, show_default=True, help="Network input size (L is resized to it).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--side-by-side", is_flag=True, help="Write a gray|colour PNG grid instead of the colour image.")
def colorize(paths, out_dir, model, size, device, side_by_side) -> None:
    """Colorize images (files, folders, globs) into OUT."""
    from edge_colorizer.inference import colorize_files, find_images, load_colorizer

    try:
        total = len(find_images(paths))
        colorizer = load_colorizer(model, size=size, device=device)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise click.ClickException(str(exc)) from None
    with _progress() as progress:
        task = progress.add_task("colorize", total=total)
        report = colorize_files(
            paths,
            out_dir,
            colorizer,
            side_by_side=side_by_side,
            on_error=lambda m: err.print(f"error: {m}", soft_wrap=True, markup=False, highlight=False),
            progress=lambda _: progress.advance(task),
        )
    click.echo(
        f"wrote {len(report.written)} image(s) to {Path(out_dir).resolve()} "
        f"in {report.seconds:.1f} s; {len(report.failed)} failed"
    )
    if report.failed:
        sys.exit(1)


@main.command()
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False), help="Folder of colour images.")
@click.option("--out", default=None, help="Run folder (checkpoints, logs, samples); default runs/<recipe>.")
@click.option(
    "--recipe",
    "recipe_name",
    default="student",
    show_default=True,
    help="student | student-l1 (supervised students) or gan-teacher (the GAN teacher).",
)
@click.option("--steps", type=int, default=None, help="Students: total steps.")
@click.option("--pretrain-steps", type=int, default=None, help="gan-teacher: supervised pre-training steps.")
@click.option("--gan-steps", type=int, default=None, help="gan-teacher: adversarial steps.")
@click.option(
    "--encoder",
    type=click.Choice(["efficientnet_lite0", "vgg16", "resnet18"]),
    default=None,
    help="gan-teacher: the generator's ImageNet encoder.",
)
@click.option("--decoder", type=click.Choice(["plain", "dynamic"]), default=None, help="gan-teacher: decoder type.")
@click.option("--no-pretrained", is_flag=True, help="gan-teacher: train the encoder from scratch.")
@click.option("--ema", type=float, default=None, help="gan-teacher: EMA decay of the generator (0 = off).")
@click.option("--batch-size", type=int, default=None)
@click.option("--size", type=int, default=None, help="Training crop size.")
@click.option("--lr", type=float, default=None, help="Students: peak learning rate.")
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
@click.option("--resume", is_flag=True, help="Continue from the run folder's last checkpoint.")
def train(
    data,
    out,
    recipe_name,
    steps,
    pretrain_steps,
    gan_steps,
    encoder,
    decoder,
    no_pretrained,
    ema,
    batch_size,
    size,
    lr,
    threads,
    resume,
) -> None:
    """Train a colorizer (a student, or the GAN teacher) on a folder of colour images."""
    from training.config import GAN_RECIPES, gan_recipe, recipe

    out = out or f"runs/{recipe_name}"
    log = lambda m: err.print(m, soft_wrap=True, markup=False, highlight=False)  # noqa: E731
    try:
        if recipe_name in GAN_RECIPES:
            from training.gan import train_gan

            base = GAN_RECIPES[recipe_name]
            gen_args = dict(base.generator_args)
            gen_args.update({k: v for k, v in {"encoder": encoder, "decoder": decoder}.items() if v})
            if no_pretrained:
                gen_args["pretrained"] = False
            cfg = gan_recipe(
                recipe_name,
                data=data,
                out=out,
                pretrain_steps=pretrain_steps,
                gan_steps=gan_steps,
                generator_args=gen_args,
                ema=ema,
                batch_size=batch_size,
                size=size,
                threads=threads,
            )
            train_gan(cfg, resume=resume, log=log)
        else:
            if any(v is not None for v in (pretrain_steps, gan_steps, encoder, decoder, ema)) or no_pretrained:
                raise click.UsageError(
                    f"--pretrain-steps/--gan-steps/--encoder/--decoder/--no-pretrained/--ema are "
                    f"options of the gan-teacher recipe, not of {recipe_name!r}"
                )
            from training.train import train as run_training

            cfg = recipe(
                recipe_name, data=data, out=out, steps=steps, batch_size=batch_size, size=size, lr=lr, threads=threads
            )
            run_training(cfg, resume=resume, log=log)
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None


@main.command("evaluate")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--model", "models", multiple=True, default=["student"], show_default=True)
@click.option("--size", default=DEFAULT_SIZE, show_default=True)
@click.option("--max-side", default=512, show_default=True, help="Resize photos so the long side is at most this.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the results as JSON.")
@click.option("--time", "timing", is_flag=True, help="Also time each model on one 256x256 and one 1080p image.")
@click.option("--grid", type=click.Path(dir_okay=False), help="Write a PNG: gray | each model | truth, 6 photos.")
@click.option("--lpips/--no-lpips", "with_lpips", default=True, show_default=True, help="Also LPIPS (AlexNet).")
def evaluate_cmd(data, models, size, max_side, json_path, timing, grid, with_lpips) -> None:
    """PSNR, LPIPS and colorfulness of models vs ground truth and the gray baseline."""
    from edge_colorizer.evaluate import evaluate
    from edge_colorizer.inference import load_colorizer

    try:
        colorizers = {m: load_colorizer(m, size=size) for m in models}
        lpips = None
        if with_lpips:
            from edge_colorizer.metrics.lpips import LPIPS

            lpips = LPIPS("alex")
    except (ValueError, FileNotFoundError, ImportError) as exc:
        raise click.ClickException(str(exc)) from None
    with _progress() as progress:
        task = progress.add_task("evaluate", total=None)
        results = evaluate(colorizers, data, max_side=max_side, progress=lambda _: progress.advance(task), lpips=lpips)
    click.echo("| model | images | PSNR dB | LPIPS | CF | CF truth | CF ratio |\n|---|---|---|---|---|---|---|")
    for r in results:
        lp = f"{r.lpips:.4f}" if r.lpips is not None else "–"
        click.echo(
            f"| {r.name} | {r.images} | {r.psnr_db:.2f} | {lp} | {r.colorfulness:.1f} | {r.colorfulness_truth:.1f} "
            f"| {r.colorfulness_ratio:.2f} |"
        )
    times = {}
    if timing:
        from edge_colorizer.evaluate import time_colorizer

        click.echo("\n| model | input | threads | p50 ms | p95 ms |\n|---|---|---|---|---|")
        for name, colorizer in colorizers.items():
            for h, w in ((256, 256), (1080, 1920)):
                t = time_colorizer(colorizer, h, w)
                times.setdefault(name, []).append(t)
                click.echo(f"| {name} | {h}x{w} | {t['threads']} | {t['p50_ms']:.1f} | {t['p95_ms']:.1f} |")
    if grid:
        from edge_colorizer.evaluate import comparison_grid

        click.echo(f"\nwrote {comparison_grid(colorizers, data, grid)} (columns: gray, {', '.join(models)}, truth)")
    if json_path:
        Path(json_path).write_text(json.dumps({"quality": [r.as_dict() for r in results], "timing": times}, indent=1))


@main.command()
@click.option("--model", default="student", show_default=True, help="Bundled model name or checkpoint path.")
@click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), default="onnx", show_default=True)
@click.option("--size", default=DEFAULT_SIZE, show_default=True, help="Network input size baked into the graph.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="Artifact path (default: <model>.<suffix>).")
def export(model, fmt, size, out_path) -> None:
    """Export the RGB-in/RGB-out colorizer (Lab kernel inside) to a runtime format."""
    from edge_colorizer.inference import load_colorizer, resolve_model_path
    from runtimes.formats import get_format

    spec = get_format(fmt)
    path = Path(out_path) if out_path else Path(f"{Path(model).stem}{spec.suffix}")
    try:
        colorizer = load_colorizer(model, size=size)
        if fmt == "onnx":
            from runtimes.onnx import MAX_ABS_DIFF, MEAN_ABS_DIFF, export_onnx

            path, parity = export_onnx(colorizer, path, model_name=model, checkpoint=resolve_model_path(model))
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB); parity vs torch: max {parity.max_abs} "
        f"(limit {MAX_ABS_DIFF}), mean {parity.mean_abs:.5f} (limit {MEAN_ABS_DIFF}) uint8 levels"
    )


@main.command()
@click.option(
    "--models",
    default="gray,student",
    show_default=True,
    help="Comma-separated: gray, bundled names, checkpoints, eccv16/siggraph17 (speed-only peers).",
)
@click.option("--runtimes", "runtimes_", default="torch,onnxruntime", show_default=True)
@click.option("--precisions", default="fp32", show_default=True)
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False), help="Folder of colour photos.")
@click.option("--out", default="out/bench", show_default=True, help="Folder for results.md/csv/json and pareto.png.")
@click.option("--size", default=DEFAULT_SIZE, show_default=True, help="Network input size.")
@click.option("--max-images", default=0, show_default=True, help="Use only the first N photos (0 = all).")
@click.option("--time-size", default="256x256", show_default=True, help="HxW of the timed input.")
@click.option("--throughput-batch", default=8, show_default=True)
@click.option("--repeats", default=20, show_default=True)
@click.option("--threads", default=0, show_default=True, help="CPU threads for torch and ORT (0 = default).")
@click.option("--fail-above-lpips", type=float, default=None, help="Exit 1 if a model's LPIPS (paper) exceeds this.")
def bench(
    models,
    runtimes_,
    precisions,
    data,
    out,
    size,
    max_images,
    time_size,
    throughput_batch,
    repeats,
    threads,
    fail_above_lpips,
) -> None:
    """Quality (LPIPS, PSNR, SSIM, ...) vs latency for every model x runtime x precision."""
    from benchmarks.bench import BenchConfig, lpips_gate, markdown, run_bench, write_outputs

    try:
        h, w = (int(v) for v in time_size.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected HxW, got {time_size!r}", param_hint="--time-size") from None
    cfg = BenchConfig(
        models=tuple(m for m in models.split(",") if m),
        runtimes=tuple(runtimes_.split(",")),
        precisions=tuple(precisions.split(",")),
        data=data,
        out=out,
        size=size,
        max_images=max_images,
        time_height=h,
        time_width=w,
        throughput_batch=throughput_batch,
        repeats=repeats,
        threads=threads,
    )
    try:
        rows, n_images = run_bench(cfg, log=lambda m: err.print(m, soft_wrap=True, markup=False, highlight=False))
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    paths = write_outputs(rows, cfg, n_images)
    click.echo(markdown(rows, cfg, n_images))
    click.echo(f"wrote {', '.join(str(p) for p in paths.values())}")
    if fail_above_lpips is not None:
        failures = lpips_gate(rows, fail_above_lpips)
        for line in failures:
            err.print(f"LPIPS gate: {line}", soft_wrap=True, markup=False, highlight=False)
        if failures:
            sys.exit(1)


@main.command("models")
def models_cmd() -> None:
    """List the registered architectures and the bundled models."""
    from edge_colorizer.inference import BUNDLED
    from edge_colorizer.models import describe_model, list_models

    for name in list_models():
        click.echo(f"{name:12s} {describe_model(name)}")
    for name, path in BUNDLED.items():
        click.echo(f"bundled: {name:8s} {path.name}{'' if path.exists() else ' (missing)'}")


@main.group()
def data() -> None:
    """Offline training and evaluation photo pools."""


@data.command("prepare")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder (train/, val/, eval/).")
@click.option("--cache", type=click.Path(file_okay=False), default=None, help="Where .debs are downloaded/unpacked.")
def data_prepare(out, cache) -> None:
    """Build the pools from Debian packages (apt-get download + dpkg -x; nothing is installed)."""
    from edge_colorizer.data.sources import prepare

    try:
        prepare(out, cache=cache, log=err.print)
    except (RuntimeError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


if __name__ == "__main__":
    main()
