"""Training configuration as a frozen dataclass; recipes are named presets of it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class TrainConfig:
    data: str = ""  # folder of colour images (searched recursively)
    out: str = "runs/student"
    model: str = "unet_s"
    model_args: dict = field(default_factory=dict)
    loss: str = "bins"  # "bins" (cross-entropy over ab bins, class-rebalanced) or "l1"
    l1_weight: float = 1.0  # added L1 on the decoded ab (both losses)
    rebalance: float = 0.5  # lambda of Zhang et al.'s prior/uniform mix; 1.0 disables rebalancing
    size: int = 192  # training crop size
    batch_size: int = 16
    steps: int = 3000
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    seed: int = 0
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    log_every: int = 25
    ckpt_every: int = 200
    sample_every: int = 500

    def __post_init__(self):
        if self.loss not in ("bins", "l1"):
            raise ValueError(f"loss must be 'bins' or 'l1', got {self.loss!r}")
        if self.loss == "bins" and self.model_args.get("head", "bins") != "bins":
            raise ValueError("loss 'bins' needs a model with head='bins'")
        if self.loss == "l1" and self.model_args.get("head", "bins") != "regression":
            raise ValueError("loss 'l1' needs model_args head='regression'")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be positive")


RECIPES: dict[str, TrainConfig] = {
    # the bundled default student: UNet-S, ab-bin classification + L1, on the GCompris pool
    "student": TrainConfig(model="unet_s", model_args={"head": "bins", "out_stride": 4}, loss="bins", steps=2400),
    "student-l1": TrainConfig(model="unet_s", model_args={"head": "regression", "out_stride": 2}, loss="l1"),
}


def recipe(name: str, **overrides) -> TrainConfig:
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; known: {', '.join(sorted(RECIPES))}")
    return replace(RECIPES[name], **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class GANConfig:
    """The seed's teacher recipe (§9.2-9.3): supervised generator pre-training, then L1 x lambda + GAN."""

    data: str = ""
    out: str = "runs/teacher"
    generator: str = "unet_generator"
    generator_args: dict = field(
        default_factory=lambda: {"encoder": "efficientnet_lite0", "decoder": "plain", "head": "bins"}
    )
    discriminator_args: dict = field(default_factory=lambda: {"width": 64, "n_layers": 3})
    supervised_loss: str = "bins"  # of the generator: "bins" (CE + L1) or "l1"
    rebalance: float = 0.5
    l1_weight: float = 1.0  # L1 inside the supervised loss
    gan_loss: str = "lsgan"  # "lsgan" (MSE on patch logits) or "bce" (BCE-with-logits)
    gan_lambda: float = 100.0  # weight of the supervised loss against the adversarial one in phase 2
    pretrain_steps: int = 1000
    gan_steps: int = 500
    size: int = 192
    batch_size: int = 16
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    lr_pretrain: float = 1e-3
    pretrain_schedule: str = "constant"  # or "cosine": decay lr_pretrain to 5 % over the pre-training
    betas: tuple[float, float] = (0.5, 0.999)
    ema: float = 0.0  # decay of an EMA of the generator weights; 0 disables it
    seed: int = 0
    threads: int = 0
    log_every: int = 25
    ckpt_every: int = 100
    sample_every: int = 250
    tensorboard: bool = True
    wandb: bool = False

    def __post_init__(self):
        if self.gan_loss not in ("lsgan", "bce"):
            raise ValueError(f"gan_loss must be 'lsgan' or 'bce', got {self.gan_loss!r}")
        if self.supervised_loss not in ("bins", "l1"):
            raise ValueError(f"supervised_loss must be 'bins' or 'l1', got {self.supervised_loss!r}")
        if self.pretrain_schedule not in ("constant", "cosine"):
            raise ValueError(f"pretrain_schedule must be 'constant' or 'cosine', got {self.pretrain_schedule!r}")
        head = self.generator_args.get("head", "bins")
        if (self.supervised_loss == "bins") != (head == "bins"):
            raise ValueError(f"supervised_loss {self.supervised_loss!r} does not fit a generator head {head!r}")
        if self.pretrain_steps < 0 or self.gan_steps < 0 or self.pretrain_steps + self.gan_steps < 1:
            raise ValueError("pretrain_steps and gan_steps must be >= 0 and not both 0")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError("ema must be in [0, 1)")

    @property
    def steps(self) -> int:
        return self.pretrain_steps + self.gan_steps


GAN_RECIPES: dict[str, GANConfig] = {
    # the shipped teacher, sized for a 2-core CPU (see edge_colorizer/weights/TEACHER_CARD.md); on a GPU
    # raise size, batch_size, decoder_width and the step counts
    "gan-teacher": GANConfig(
        generator_args={"encoder": "efficientnet_lite0", "decoder": "plain", "head": "bins", "decoder_width": 32},
        discriminator_args={"width": 32, "n_layers": 3},
        size=160,
        batch_size=12,
        pretrain_steps=500,
        gan_steps=250,
        lr_pretrain=5e-4,
        gan_lambda=10.0,
        ema=0.99,
        sample_every=500,
        ckpt_every=200,
    ),
}


def gan_recipe(name: str, **overrides) -> GANConfig:
    if name not in GAN_RECIPES:
        raise KeyError(f"unknown GAN recipe {name!r}; known: {', '.join(sorted(GAN_RECIPES))}")
    return replace(GAN_RECIPES[name], **{k: v for k, v in overrides.items() if v is not None})
