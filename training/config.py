"""Training configuration: one frozen dataclass for every method, and named recipes as presets of it.

A run is one or more *stages*, each one call of the shared loop (:mod:`training.loop`): the supervised
stage (students; the teacher's generator pre-training; fine-tuning after pruning), then, when
``gan`` is set, the adversarial stage. Distillation is the supervised stage with a ``teacher``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from edge_colorizer.metrics.lpips import NETS as PERCEPTUAL_NETS

LOSSES = ("bins", "l1")
SCHEDULES = ("constant", "cosine")
OPTIMIZERS = ("adamw", "adam")


@dataclass(frozen=True)
class Stage:
    """One call of the loop: what it is called (log, state file), how long, and its optimiser."""

    name: str
    steps: int
    lr: float
    schedule: str = "cosine"  # constant | cosine (linear warm-up, then decay to 5 %)
    warmup: int = 0
    optimizer: str = "adamw"
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    minutes: float = 0.0  # wall-clock budget: the stage sizes itself to fit (``steps`` is then the most)


@dataclass(frozen=True)
class GANSettings:
    """The seed's adversarial stage (§9.2-9.3): lambda x supervised + adversarial, a PatchGAN critic."""

    steps: int = 500
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    gan_loss: str = "lsgan"  # "lsgan" (MSE on patch logits) or "bce" (BCE-with-logits)
    gan_lambda: float = 100.0  # weight of the supervised loss against the adversarial one
    discriminator_args: dict = field(default_factory=lambda: {"width": 64, "n_layers": 3})
    minutes: float = 0.0  # wall-clock budget of the adversarial stage (``steps`` is then the most); 0 = off

    def __post_init__(self):
        if self.minutes < 0:
            raise ValueError("gan minutes must be >= 0")
        if self.gan_loss not in ("lsgan", "bce"):
            raise ValueError(f"gan_loss must be 'lsgan' or 'bce', got {self.gan_loss!r}")
        if self.steps < 1:
            raise ValueError("gan steps must be positive")
        if not self.gan_lambda > 0:
            raise ValueError(f"gan_lambda must be > 0, got {self.gan_lambda}")


@dataclass(frozen=True)
class TrainConfig:
    data: str = ""  # folder of colour images (searched recursively)
    subset: float = 1.0  # share of ``data`` trained on, a stable hash-chosen subset (learning curves)
    cutouts: str = ""  # folder of photographic cut-outs (RGBA) pasted onto training crops; empty = none
    cutout_prob: float = 0.5  # share of training crops that get a cut-out
    full_frame: float = 0.0  # share of training samples that are the whole photo squashed to the square
    val: str = ""  # validation photos: scored every val_every steps, the best weights kept
    out: str = "runs/student"
    model: str = "unet_s"
    model_args: dict = field(default_factory=dict)
    # start from this model's weights (a bundled name or checkpoint of the same architecture: a fine-tune);
    # empty = the model's own initialisation (ImageNet encoder weights where it has them)
    init: str = ""
    # the supervised objective
    loss: str = "bins"  # "bins" (cross-entropy over ab bins, class-rebalanced) or "l1"
    l1_weight: float = 1.0  # added L1 on the decoded ab (both losses)
    rebalance: float = 0.5  # lambda of Zhang et al.'s prior/uniform mix; 1.0 disables rebalancing
    # a perceptual term: weight x LPIPS (``perceptual_net``) between the crop rebuilt in RGB from its L and
    # the decoded prediction, and the crop itself; 0 = off
    perceptual: float = 0.0
    perceptual_net: str = "vgg"
    # distillation (Hinton et al.): KL between teacher and student bin distributions at a temperature
    teacher: str = ""  # bundled name or checkpoint; empty = no teacher
    kd_weight: float = 0.5  # alpha: loss = alpha * T^2 * KL + (1 - alpha) * supervised
    kd_temperature: float = 2.0
    # the supervised stage's schedule
    size: int = 192  # training crop size
    batch_size: int = 16
    steps: int = 3000
    lr: float = 2e-3
    schedule: str = "cosine"
    warmup: int = 100
    optimizer: str = "adamw"
    weight_decay: float = 1e-4
    # a wall-clock budget for the supervised stage: after its first steps the stage fixes its step count
    # (and so its schedule) to what fits in these minutes, ``steps`` being the most; 0 = run ``steps``
    minutes: float = 0.0
    # an adversarial stage after it (the GAN teacher)
    gan: GANSettings | None = None
    ema: float = 0.0  # decay of an EMA of the weights in every stage; 0 disables it
    input_size: int = 0  # network size the colorizer runs the result at (stored with it); 0 = size
    seed: int = 0
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    workers: int = 0  # data-loading processes (crops and Lab conversion); 0 = in the training process
    device: str = "auto"  # auto (CUDA when present) | cpu | cuda
    amp: bool = True  # bf16 autocast on CUDA (ignored on the CPU)
    # torch.compile the training forward (the trainee's, the frozen teacher's): the first steps compile,
    # the rest run faster; weights, checkpoints and results are those of the plain modules
    compile: bool = False
    log_every: int = 25
    ckpt_every: int = 200
    sample_every: int = 500
    val_every: int = 0  # 0: validate only at the end of each stage (when ``val`` is set)
    patience: int = 0  # stop a stage after this many validations without improvement; 0 = never
    tensorboard: bool = False
    wandb: bool = False

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        head = self.model_args.get("head", "bins")
        if (self.loss == "bins") != (head == "bins"):
            raise ValueError(f"loss {self.loss!r} does not fit a model with head {head!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.steps < 0 or self.batch_size < 1 or self.size < 16:
            raise ValueError("steps must be >= 0, batch_size >= 1 and size >= 16")
        for name in ("size", "input_size"):  # the network runs at multiples of 8 (its samples and validation)
            if getattr(self, name) % 8:
                raise ValueError(f"{name} must be a multiple of 8, got {getattr(self, name)}")
        if self.steps == 0 and self.gan is None:
            raise ValueError("a run needs steps > 0 (or an adversarial stage)")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError("ema must be in [0, 1)")
        if not 0.0 <= self.kd_weight <= 1.0 or self.kd_temperature <= 0:
            raise ValueError("kd_weight must be in [0, 1] and kd_temperature positive")
        if self.teacher and self.loss != "bins":
            raise ValueError("distillation matches bin distributions: it needs loss 'bins'")
        if not self.perceptual >= 0.0:
            raise ValueError(f"perceptual must be >= 0, got {self.perceptual}")
        if self.perceptual_net not in PERCEPTUAL_NETS:
            raise ValueError(f"perceptual_net must be one of {PERCEPTUAL_NETS}, got {self.perceptual_net!r}")
        if not 0.0 < self.subset <= 1.0:
            raise ValueError(f"subset must be in (0, 1], got {self.subset}")
        if not 0.0 <= self.full_frame <= 1.0:
            raise ValueError(f"full_frame must be in [0, 1], got {self.full_frame}")
        if not 0.0 <= self.cutout_prob <= 1.0:
            raise ValueError(f"cutout_prob must be in [0, 1], got {self.cutout_prob}")
        if self.minutes < 0 or self.workers < 0:
            raise ValueError("minutes and workers must be >= 0")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if min(self.log_every, self.ckpt_every, self.sample_every) < 1 or self.val_every < 0 or self.patience < 0:
            raise ValueError("log_every, ckpt_every and sample_every must be >= 1; val_every, patience >= 0")

    def stages(self) -> list[Stage]:
        """The loop calls of this run, in order."""
        first = "pretrain" if self.gan else "train"
        out = []
        if self.steps:
            out.append(
                Stage(
                    first,
                    self.steps,
                    self.lr,
                    self.schedule,
                    self.warmup,
                    self.optimizer,
                    weight_decay=self.weight_decay,
                    minutes=self.minutes,
                )
            )
        if self.gan:
            gan = self.gan
            out.append(Stage("gan", gan.steps, gan.lr_g, "constant", 0, "adam", gan.betas, minutes=gan.minutes))
        return out


RECIPES: dict[str, TrainConfig] = {
    # the bundled default student: UNet-S, ab-bin classification + L1, on the GCompris pool
    "student": TrainConfig(model="unet_s", model_args={"head": "bins", "out_stride": 4}, loss="bins", steps=2400),
    "student-l1": TrainConfig(model="unet_s", model_args={"head": "regression", "out_stride": 2}, loss="l1"),
    # the shipped teacher, sized for a 2-core CPU (see edge_colorizer/weights/TEACHER_CARD.md): supervised
    # pre-training of the generator, then the adversarial stage. On a GPU raise size, batch_size,
    # decoder_width and the step counts.
    "gan-teacher": TrainConfig(
        out="runs/teacher",
        model="unet_generator",
        model_args={"encoder": "efficientnet_lite0", "decoder": "plain", "head": "bins", "decoder_width": 32},
        size=160,
        batch_size=12,
        steps=500,
        lr=5e-4,
        schedule="constant",
        warmup=0,
        optimizer="adam",
        weight_decay=0.0,
        gan=GANSettings(steps=250, gan_lambda=10.0, discriminator_args={"width": 32, "n_layers": 3}),
        ema=0.99,
        sample_every=500,
        tensorboard=True,
    ),
}


def recipe(name: str, **overrides) -> TrainConfig:
    """The named preset with ``overrides`` (None values are ignored); unknown fields are an error."""
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; known: {', '.join(sorted(RECIPES))}")
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"recipe {name!r} has no setting {', '.join(unknown)}")
    return replace(RECIPES[name], **{k: v for k, v in overrides.items() if v is not None})
