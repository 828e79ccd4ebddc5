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
