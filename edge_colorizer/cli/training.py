"""Commands that make models: train, data prepare (compress lives in ``compress`` once installed)."""

from __future__ import annotations

import click

from edge_colorizer.cli import main
from edge_colorizer.cli.common import say

# encoder/decoder choices of the teacher's generator; options of models that take them
ENCODERS = ("efficientnet_lite0", "vgg16", "resnet18")
DECODERS = ("plain", "dynamic")


@main.command()
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False), help="Folder of colour images.")
@click.option("--val", type=click.Path(exists=True, file_okay=False), help="Validation photos: best weights are kept.")
@click.option("--out", default=None, help="Run folder (checkpoints, logs, samples); default runs/<recipe>.")
@click.option(
    "--recipe",
    "recipe_name",
    default="student",
    show_default=True,
    help="student | student-l1 (supervised students) or gan-teacher (the GAN teacher).",
)
@click.option("--steps", type=click.IntRange(1), default=None, help="Supervised steps (gan-teacher: pre-training).")
@click.option("--gan-steps", type=click.IntRange(1), default=None, help="Adversarial steps (recipes with a GAN stage).")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=None, help="Peak learning rate (supervised).")
@click.option("--encoder", type=click.Choice(ENCODERS), default=None, help="unet_generator: the ImageNet encoder.")
@click.option("--decoder", type=click.Choice(DECODERS), default=None, help="unet_generator: decoder type.")
@click.option("--no-pretrained", is_flag=True, help="unet_generator: train the encoder from scratch.")
@click.option("--ema", type=click.FloatRange(0, 1, max_open=True), default=None, help="EMA decay of the weights.")
@click.option("--batch-size", type=click.IntRange(1), default=None)
@click.option("--size", type=click.IntRange(16, 1024), default=None, help="Training crop size.")
@click.option("--val-every", type=click.IntRange(0), default=None, help="Validate every N steps (with --val).")
@click.option("--patience", type=click.IntRange(0), default=None, help="Stop after N validations without gain.")
@click.option("--threads", type=click.IntRange(0, 512), default=None, help="torch CPU threads.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None, help="default: auto.")
@click.option("--resume", is_flag=True, help="Continue from the run folder's last checkpoint.")
def train(recipe_name, resume, encoder, decoder, no_pretrained, gan_steps, **options) -> None:
    """Train a colorizer (a student, or the GAN teacher) on a folder of colour images."""
    from dataclasses import replace

    from training.config import RECIPES, recipe
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
    if gan_steps is not None and base.gan is None:
        raise click.UsageError(f"--gan-steps: recipe {recipe_name!r} has no adversarial stage")
    if options["val_every"] is not None or options["patience"] is not None:
        if not options["val"]:
            raise click.UsageError("--val-every/--patience need --val (the validation photos)")
    options["out"] = options["out"] or f"runs/{recipe_name}"
    try:
        cfg = recipe(
            recipe_name,
            model_args={**base.model_args, **generator_options} if generator_options else None,
            gan=replace(base.gan, steps=gan_steps) if gan_steps is not None else None,
            **options,
        )
        run_training(cfg, resume=resume, log=say)
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None


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
        prepare(out, cache=cache, log=say)
    except (RuntimeError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
