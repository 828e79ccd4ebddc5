"""Commands that make models: train, data prepare (compress lives in ``compress`` once installed)."""

from __future__ import annotations

from contextlib import ExitStack, nullcontext

import click

from edge_colorizer.cli import main
from edge_colorizer.cli.common import (
    FiniteRange,
    end_if_stopped,
    no_traceback,
    not_empty,
    progress_bar,
    say,
    stop_after_step,
    stop_cleanly,
)
from edge_colorizer.io import shown

# encoder/decoder choices of the teacher's generator; options of models that take them
ENCODERS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "vgg16", "resnet18")
DECODERS = ("plain", "dynamic")


@main.command()
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False), help="Folder of colour images.")
@click.option(
    "--subset",
    type=FiniteRange(0, 1, min_open=True),
    default=None,
    help="Train on this share of --data (a stable subset: 0.25 is inside 0.5; for learning curves).",
)
@click.option(
    "--cutouts",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Folder of photographic cut-outs (RGBA; data prepare writes cutouts/) pasted onto training crops.",
)
@click.option(
    "--cutout-prob",
    type=FiniteRange(0, 1),
    default=None,
    help="Share of training crops that get a cut-out (with --cutouts; default 0.5).",
)
@click.option(
    "--full-frame",
    type=FiniteRange(0, 1),
    default=None,
    help="Share of training samples that are whole photos squashed to the square (the view inference gives).",
)
@click.option("--val", type=click.Path(exists=True, file_okay=False), help="Validation photos: best weights are kept.")
@click.option(
    "--out", default=None, help="Run folder (checkpoints, logs, samples); default runs/<recipe>.", callback=not_empty
)
@click.option(
    "--recipe",
    "recipe_name",
    default="student",
    show_default=True,
    help="student | student-l1 (supervised students) or gan-teacher (the GAN teacher).",
)
@click.option(
    "--steps",
    type=click.IntRange(0),
    default=None,
    help="Supervised steps (gan-teacher: pre-training; 0 skips it, for a fine-tune from --init).",
)
@click.option(
    "--init",
    default=None,
    callback=not_empty,
    help="Start from this model's weights (bundled name or checkpoint of the recipe's architecture): a fine-tune.",
)
@click.option(
    "--gan-steps",
    type=click.IntRange(0),
    default=None,
    help="Adversarial steps (recipes with a GAN stage; 0 skips it).",
)
@click.option("--lr", type=FiniteRange(0, min_open=True), default=None, help="Peak learning rate (supervised).")
@click.option(
    "--minutes",
    type=FiniteRange(0, min_open=True),
    default=None,
    help="Time budget of the supervised stage: its step count is fixed to what fits (--steps the most).",
)
@click.option("--gan-minutes", type=FiniteRange(0, min_open=True), default=None, help="Same, adversarial stage.")
@click.option(
    "--gan-lambda",
    type=FiniteRange(0, min_open=True),
    default=None,
    help="Adversarial stage: weight of the supervised loss against the adversarial one (gan-teacher: 10; "
    "lower gives the discriminator more say).",
)
@click.option("--workers", type=click.IntRange(0, 64), default=None, help="Data-loading processes (GPU runs).")
@click.option("--encoder", type=click.Choice(ENCODERS), default=None, help="unet_generator: the ImageNet encoder.")
@click.option("--decoder", type=click.Choice(DECODERS), default=None, help="unet_generator: decoder type.")
@click.option("--no-pretrained", is_flag=True, help="unet_generator: train the encoder from scratch.")
@click.option(
    "--rebalance",
    type=FiniteRange(0, 1, min_open=True),
    default=None,
    help="Class rebalancing of the ab-bin loss (Zhang et al.'s lambda; default 0.5): lower weights rare, "
    "saturated colours more; 1 turns it off.",
)
@click.option(
    "--perceptual",
    type=FiniteRange(0),
    default=None,
    help="Weight of a perceptual loss: LPIPS between each crop and its colourised version (default 0: off).",
)
@click.option(
    "--perceptual-net",
    type=click.Choice(["vgg", "alex"]),
    default=None,
    help="The perceptual loss's LPIPS network (default vgg; alex is the one the benchmark scores with).",
)
@click.option("--ema", type=FiniteRange(0, 1, max_open=True), default=None, help="EMA decay of the weights.")
@click.option("--batch-size", type=click.IntRange(1), default=None)
@click.option("--size", type=click.IntRange(16, 1024), default=None, help="Training crop size.")
@click.option("--val-every", type=click.IntRange(0), default=None, help="Validate every N steps (with --val).")
@click.option("--patience", type=click.IntRange(0), default=None, help="Stop after N validations without gain.")
@click.option("--threads", type=click.IntRange(0, 512), default=None, help="torch CPU threads.")
@click.option(
    "--seed", type=click.IntRange(0, 2**31 - 1), default=None, help="Random seed (weights, crops); default 0."
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None, help="default: auto.")
@click.option(
    "--compile",
    "compile_",
    is_flag=True,
    help="torch.compile the training forward (GPU runs; the first steps compile).",
)
@click.option("--resume", is_flag=True, help="Continue from the run folder's last checkpoint.")
def train(
    recipe_name, resume, encoder, decoder, no_pretrained, gan_steps, gan_minutes, gan_lambda, compile_, **options
) -> None:
    """Train a colorizer (a student, or the GAN teacher) on a folder of colour images."""
    from dataclasses import replace

    options["compile"] = True if compile_ else None

    from training.config import RECIPES, recipe
    from training.loop import STOP
    from training.train import train as run_training

    if recipe_name not in RECIPES:
        raise click.BadParameter(f"unknown recipe; known: {', '.join(sorted(RECIPES))}", param_hint="--recipe")
    base = RECIPES[recipe_name]
    # an option the recipe cannot honour is an error, never silently dropped
    generator_options = {"encoder": encoder, "decoder": decoder, "pretrained": False if no_pretrained else None}
    generator_options = {k: v for k, v in generator_options.items() if v is not None}
    if generator_options and base.model != "unet_generator":
        names = ", ".join("--no-pretrained" if k == "pretrained" else f"--{k}" for k in generator_options)
        raise click.UsageError(f"{names}: options of the unet_generator model, not of recipe {recipe_name!r}")
    gan_options = {"steps": gan_steps, "minutes": gan_minutes, "gan_lambda": gan_lambda}
    gan_options = {k: v for k, v in gan_options.items() if v is not None}
    if gan_options and base.gan is None:
        names = ", ".join(f"--gan-{k.removeprefix('gan_')}" for k in gan_options)
        raise click.UsageError(f"{names}: recipe {recipe_name!r} has no adversarial stage")
    if options["cutout_prob"] is not None and not options["cutouts"]:
        raise click.UsageError("--cutout-prob needs --cutouts (the cut-out folder)")
    if options["rebalance"] is not None and base.loss != "bins":
        raise click.UsageError(f"--rebalance: recipe {recipe_name!r} has no ab-bin loss to rebalance")
    if options["steps"] == 0 and (base.gan is None or gan_steps == 0):
        raise click.UsageError("--steps 0 leaves nothing to train (no adversarial stage either)")
    if options["steps"] == 0:
        names = [f"--{k}" for k in ("lr", "minutes") if options[k] is not None]
        if names:
            raise click.UsageError(f"{', '.join(names)}: --steps 0 leaves no supervised stage")
    if options["perceptual_net"] is not None and not options["perceptual"]:
        raise click.UsageError("--perceptual-net needs --perceptual W (W > 0)")
    if options["val_every"] is not None or options["patience"] is not None:
        if not options["val"]:
            raise click.UsageError("--val-every/--patience need --val (the validation photos)")
    options["out"] = options["out"] or f"runs/{recipe_name}"
    if gan_steps == 0:
        names = ", ".join(f"--gan-{k.removeprefix('gan_')}" for k in gan_options if k != "steps")
        if names:
            raise click.UsageError(f"{names}: --gan-steps 0 leaves no adversarial stage")
        gan = None
    else:
        gan = replace(base.gan, **gan_options) if gan_options else base.gan
    with no_traceback("train"):  # what is not foreseen below is one line too
        try:
            cfg = recipe(
                recipe_name,
                model_args={**base.model_args, **generator_options} if generator_options else None,
                **options,
            )
            cfg = replace(cfg, gan=gan)
            with stop_cleanly(), stop_after_step(STOP) as got:
                run = run_training(cfg, resume=resume, log=say)
        except (ValueError, OSError, KeyError, RuntimeError) as exc:
            raise click.ClickException(shown(str(exc))) from None
    end_if_stopped(got, lambda: not run.finished)


@main.group()
def data() -> None:
    """Offline training and evaluation photo pools."""


@data.command("prepare")
@click.option(
    "--out", required=True, help="Output folder (train/, val/, eval/, cutouts/, manifest.json).", callback=not_empty
)
@click.option("--cache", default=None, help="Where .debs are downloaded/unpacked.", callback=not_empty)
def data_prepare(out, cache) -> None:
    """Build the pools from Debian packages (apt-get download + dpkg -x; nothing is installed)."""
    from edge_colorizer.data.sources import prepare
    from edge_colorizer.inference import prepare_output_folder
    from edge_colorizer.io import new_folders_dropped_on_failure, os_reason

    folders = [folder for folder in (out, cache) if folder]
    with ExitStack() as made:
        for folder in folders:  # a failed or stopped run leaves no empty folders it made
            made.enter_context(new_folders_dropped_on_failure(folder))
        try:  # one line before any download, as every command that writes a folder
            for folder in folders:
                prepare_output_folder(folder)
        except ValueError as exc:
            raise click.ClickException(shown(str(exc))) from None
        with stop_cleanly(), progress_bar() as progress:
            task = progress.add_task("packages", total=None)

            done = [0]

            def started(name: str, total: int) -> None:  # the bar counts the packages done, names the one begun
                progress.update(task, total=total, completed=done[0], description=name)
                done[0] += 1

            try:
                prepare(out, cache=cache, log=say, on_package=started)
            except OSError as exc:  # a folder that cannot be written after all (a pseudo-filesystem, full disk)
                where = f"{shown(exc.filename)}: " if exc.filename else ""
                raise click.ClickException(f"{where}{os_reason(exc)}") from None
            except RuntimeError as exc:
                raise click.ClickException(shown(str(exc))) from None


def _finetune_options(fn):
    """The shared-loop options every compress subcommand that trains takes (defined once)."""
    options = [
        click.option("--data", required=True, type=click.Path(exists=True, file_okay=False), help="Training photos."),
        click.option("--val", type=click.Path(exists=True, file_okay=False), help="Validation photos (keep-best)."),
        click.option("--steps", type=click.IntRange(1), default=300, show_default=True, help="Training steps."),
        click.option(
            "--minutes",
            type=FiniteRange(0),
            default=0.0,
            help="Time budget per training run: the step count is fixed to what fits (--steps the most).",
        ),
        click.option("--workers", type=click.IntRange(0, 64), default=0, help="Data-loading processes (GPU runs)."),
        click.option("--compile", is_flag=True, help="torch.compile the training forward (GPU runs)."),
        click.option("--lr", type=FiniteRange(0, min_open=True), default=5e-4, show_default=True),
        click.option("--batch-size", type=click.IntRange(1), default=12, show_default=True),
        click.option("--size", type=click.IntRange(16, 1024), default=160, show_default=True, help="Crop size."),
        click.option("--kd-weight", type=FiniteRange(0, 1), default=0.5, show_default=True),
        click.option("--kd-temperature", type=FiniteRange(0, min_open=True), default=2.0, show_default=True),
        click.option("--val-every", type=click.IntRange(0), default=0, show_default=True),
        click.option("--threads", type=click.IntRange(0, 512), default=0, show_default=True),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--resume", is_flag=True, help="Continue after an interruption."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _finetune_config(out: str, **options):
    from training.config import TrainConfig

    options["val"] = options["val"] or ""
    return TrainConfig(
        out=out,
        schedule="cosine",
        warmup=min(50, options["steps"] // 10),
        optimizer="adamw",
        weight_decay=0.0,
        sample_every=10**9,
        ckpt_every=100,
        **options,
    )


def _before_compressing(
    out: str, resume: bool, checkpoints: tuple[str, ...], data: str = "", val: str = "", earlier: str = ""
) -> None:
    """What a compress command checks before any work, as one line: an --out that cannot be a folder or
    lies inside --data or --val, an exported artifact where a checkpoint is needed, a --val without a
    photo to score (each one passed over is a skip line), --resume with nothing saved under --out, and a
    fresh run over an unfinished one (whose state it would throw away) or over ``earlier`` results a
    fresh run would reuse (a glob under --out)."""
    from pathlib import Path

    from edge_colorizer.io import check_outside, check_writable_folder
    from runtimes.models import require_checkpoint
    from training.train import check_validation_photos, refuse_unfinished

    try:
        check_writable_folder(out)
        for folder, option in ((data, "--data"), (val, "--val")):
            check_outside(out, folder, option)
        for model in checkpoints:
            require_checkpoint(model, "compressing")
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(shown(str(exc))) from None
    states = sorted(Path(out).rglob("state_*.pt")) if Path(out).is_dir() else []
    if resume and not states:
        raise click.ClickException(f"{out}: nothing to resume from (no saved training state under it)")
    try:
        if not resume:
            for folder in sorted({state.parent for state in states}):
                refuse_unfinished(Path(out), folder)
            found = sorted(Path(out).glob(earlier)) if earlier and Path(out).is_dir() else []
            if found:
                raise ValueError(
                    f"{out}: holds an earlier run ({found[0].relative_to(out)}); continue it with --resume (the "
                    "same options), or choose another --out"
                )
        if val:
            check_validation_photos(val, log=say)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(shown(str(exc))) from None


@main.group()
def compress() -> None:
    """Compress a trained colorizer: prune, distill, quantize (each output is a model with a card)."""


@compress.command("prune")
@click.option("--model", required=True, help="Bundled model name or checkpoint to prune.", callback=not_empty)
@click.option("--out", required=True, help="Output folder (model.pt, CARD.md).", callback=not_empty)
@click.option(
    "--ratio",
    type=FiniteRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="Share of channels cut (default 0.5 without --target-gmacs).",
)
@click.option("--target-gmacs", type=FiniteRange(0, min_open=True), default=None, help="Or: a MACs budget.")
@click.option("--rounds", type=click.IntRange(1, 20), default=2, show_default=True)
@click.option("--importance", type=click.Choice(["group_norm", "magnitude"]), default="group_norm", show_default=True)
@click.option("--round-to", type=click.IntRange(0, 64), default=0, show_default=True)
@click.option("--distill/--no-distill", default=True, show_default=True, help="Fine-tune with the parent as teacher.")
@click.option("--teacher", default="", help="Another teacher for the fine-tuning (default: the parent).")
@_finetune_options
def compress_prune(model, out, ratio, target_gmacs, rounds, importance, round_to, distill, teacher, resume, **ft):
    """Structured channel pruning, then fine-tuning through the training loop, in rounds."""
    from click.core import ParameterSource

    from compress.prune import PruneConfig, prune
    from training.loop import STOP

    if ratio is not None and target_gmacs is not None:
        raise click.UsageError("--ratio and --target-gmacs are alternatives: give one")
    if teacher and not distill:
        raise click.UsageError("--teacher is the fine-tuning's teacher: it needs --distill")
    if not distill and click.get_current_context().get_parameter_source("kd_weight") == ParameterSource.COMMANDLINE:
        raise click.UsageError("--kd-weight weighs the teacher's distributions: it needs --distill")
    _before_compressing(
        out, resume, (model, teacher) if teacher else (model,), ft["data"], ft["val"], earlier="round*/*.pt"
    )
    try:
        cfg = PruneConfig(
            parent=model,
            out=out,
            finetune=_finetune_config(out, **ft),
            ratio=0.5 if ratio is None and target_gmacs is None else (ratio or 0.0),
            target_gmacs=target_gmacs or 0.0,
            rounds=rounds,
            importance=importance,
            round_to=round_to,
            distill=distill,
            teacher=teacher,
        )
        with stop_cleanly(), stop_after_step(STOP) as got:
            result = prune(cfg, resume=resume, log=say)
    except (ValueError, FileNotFoundError, KeyError, RuntimeError, ImportError) as exc:
        raise click.ClickException(shown(str(exc))) from None
    end_if_stopped(got, lambda: not result.finished)


@compress.command("distill")
@click.option(
    "--teacher", required=True, help="Bundled model name or checkpoint with an ab-bins head.", callback=not_empty
)
@click.option(
    "--student",
    "--model",
    "student",
    default="unet_s",
    show_default=True,
    help="An architecture (from scratch), a bundled model or a checkpoint (fine-tuned).",
    callback=not_empty,
)
@click.option("--width", type=click.IntRange(4, 256), default=None, help="Student architecture width.")
@click.option("--out", required=True, help="Output folder (model.pt, CARD.md).", callback=not_empty)
@click.option("--baseline", is_flag=True, help="Also train the student without the teacher and compare.")
@_finetune_options
def compress_distill(teacher, student, width, out, baseline, resume, **ft):
    """Knowledge distillation of TEACHER's ab-bin distributions into a student."""
    from compress.distill import DistillConfig, distill
    from edge_colorizer.models import list_models
    from training.loop import STOP

    checkpoints = (teacher,) if student in list_models() else (teacher, student)
    _before_compressing(out, resume, checkpoints, ft["data"], ft["val"])

    try:
        cfg = DistillConfig(
            teacher=teacher,
            student=student,
            out=out,
            train=_finetune_config(out, **ft),
            student_args={"width": width} if width else {},
            baseline=baseline,
        )
        with stop_cleanly(), stop_after_step(STOP) as got:
            report = distill(cfg, resume=resume, log=say)
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as exc:
        raise click.ClickException(shown(str(exc))) from None
    end_if_stopped(got, lambda: not report)


@compress.command("quantize")
@click.option("--model", required=True, help="Bundled model name or checkpoint (the fp32 parent).", callback=not_empty)
@click.option("--out", required=True, help="Output folder (artifact, CARD.md).", callback=not_empty)
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False), help="Calibration photos.")
@click.option("--val", required=True, type=click.Path(exists=True, file_okay=False), help="Validation photos.")
@click.option("--format", "fmt", type=click.Choice(["onnx", "openvino"]), default="onnx", show_default=True)
@click.option("--calibration-images", type=click.IntRange(1, 10000), default=64, show_default=True)
@click.option("--budget", type=FiniteRange(0), default=0.005, show_default=True, help="Most LPIPS lost.")
@click.option("--qat-steps", type=click.IntRange(0), default=0, show_default=True, help="Quantization-aware steps.")
@click.option("--lr", type=FiniteRange(0, min_open=True), default=1e-4, show_default=True, help="QAT lr.")
@click.option("--batch-size", type=click.IntRange(1), default=12, show_default=True, help="QAT batch.")
@click.option("--size", type=click.IntRange(16, 1024), default=160, show_default=True, help="QAT crop size.")
@click.option("--threads", type=click.IntRange(0, 512), default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue an interrupted quantization-aware fine-tuning.")
def compress_quantize(
    model, out, data, val, fmt, calibration_images, budget, qat_steps, lr, batch_size, size, threads, resume
):
    """INT8 of the network (post-training, or after quantization-aware fine-tuning), refused beyond --budget."""
    from compress.quantize import QuantizeConfig, quantize
    from training.loop import STOP

    if resume and not qat_steps:
        raise click.UsageError("--resume continues a quantization-aware fine-tuning: it needs --qat-steps")
    _before_compressing(out, resume, (model,), data, val)
    qat = None
    if qat_steps:
        qat = _finetune_config(
            out,
            data=data,
            val="",
            steps=qat_steps,
            lr=lr,
            batch_size=batch_size,
            size=size,
            kd_weight=0.5,
            kd_temperature=2.0,
            val_every=0,
            threads=threads,
            seed=0,
        )
    try:
        cfg = QuantizeConfig(
            model=model,
            out=out,
            data=data,
            val=val,
            format=fmt,
            calibration_images=calibration_images,
            budget=budget,
            qat=qat,
            threads=threads,
        )
        # only a quantization-aware fine-tuning has steps to stop after; the rest stops at once
        with stop_cleanly(), stop_after_step(STOP) if qat else nullcontext([]) as got:
            result = quantize(cfg, resume=resume, log=say)
    except (ValueError, FileNotFoundError, KeyError, RuntimeError, ImportError) as exc:
        raise click.ClickException(shown(str(exc))) from None
    end_if_stopped(got, lambda: result.path is None)
