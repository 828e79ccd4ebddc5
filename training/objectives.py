"""What each training method adds to the shared loop: the loss of one batch.

An objective is called with the network being trained (through :class:`Trainee`, so DDP sees the
forward) and a :class:`Batch`; it returns the loss to back-propagate and the named terms to log.
Objectives with state of their own (the GAN's discriminator and its optimiser) save and restore it
through ``state_dict``/``load_state_dict``, so the loop's checkpoints resume them too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from edge_colorizer.lab import denormalize_ab, denormalize_l, lab_to_rgb
from training.losses import supervised_loss

# every term any objective logs, in the order of the log's columns
LOG_TERMS = ("loss", "ce", "l1", "kd", "perceptual", "loss_d", "loss_adv")


@dataclass
class Batch:
    l_norm: torch.Tensor  # (N, 1, s, s)
    ab_norm: torch.Tensor  # (N, 2, s, s)
    teacher_logits: torch.Tensor | None = None  # (N, Q, h, w) when the loop has a teacher


@dataclass
class Trainee:
    """The network as an objective sees it: ``logits`` goes through DDP when training is distributed."""

    logits: Callable[[torch.Tensor], torch.Tensor]
    decode: Callable[[torch.Tensor], torch.Tensor]
    bin_centers: torch.Tensor | None


class Objective:
    terms: tuple[str, ...] = ("loss",)

    def setup(self, device: torch.device, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Move own modules to ``device``; ``wrap`` makes a module data-parallel when the run is."""

    def __call__(self, net: Trainee, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class Supervised(Objective):
    """Cross-entropy over ab bins (or L1) + L1 on the decoded ab (+ ``perceptual_weight`` x LPIPS between the
    crop rebuilt from its L and the decoded ab, and the crop); with a teacher, Hinton distillation:
    ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * supervised``, the teacher's bin
    distribution average-pooled to the student's grid when their strides differ."""

    def __init__(
        self,
        loss: str,
        class_weights: torch.Tensor | None,
        l1_weight: float,
        kd_weight: float = 0.0,
        kd_temperature: float = 1.0,
        perceptual: nn.Module | None = None,
        perceptual_weight: float = 0.0,
    ):
        self.loss = loss
        self.class_weights = class_weights
        self.l1_weight = l1_weight
        self.kd_weight = kd_weight
        self.kd_temperature = kd_temperature
        self.perceptual = perceptual if perceptual_weight else None
        self.perceptual_weight = perceptual_weight
        self.terms = (
            ("loss", "l1") + (("perceptual",) if self.perceptual is not None else ()) + (("kd",) if kd_weight else ())
        )

    def setup(self, device, wrap) -> None:
        if self.class_weights is not None:
            self.class_weights = self.class_weights.to(device)
        if self.perceptual is not None:
            self.perceptual.to(device)

    def supervised(self, net: Trainee, batch: Batch, logits: torch.Tensor | None = None):
        """(supervised loss, its named terms, the decoded ab prediction)."""
        total, l1, pred = supervised_loss(
            net, batch.l_norm, batch.ab_norm, self.loss, self.class_weights, self.l1_weight, logits=logits
        )
        terms = {"l1": l1}
        if self.perceptual is not None:
            terms["perceptual"] = perceptual_distance(self.perceptual, batch.l_norm, pred, batch.ab_norm)
            total = total + self.perceptual_weight * terms["perceptual"]
        return total, terms, pred

    def __call__(self, net: Trainee, batch: Batch):
        if not self.kd_weight:
            total, terms, _ = self.supervised(net, batch)
            return total, {"loss": total, **terms}
        if batch.teacher_logits is None:
            raise ValueError("distillation needs a teacher in the loop")
        logits = net.logits(batch.l_norm)
        sup, terms, _ = self.supervised(net, batch, logits=logits)
        kd = distillation_kl(logits, batch.teacher_logits, self.kd_temperature)
        total = self.kd_weight * kd + (1.0 - self.kd_weight) * sup
        return total, {"loss": total, **terms, "kd": kd}


def perceptual_distance(
    lpips: nn.Module, l_norm: torch.Tensor, pred_ab_norm: torch.Tensor, ab_norm: torch.Tensor
) -> torch.Tensor:
    """Mean LPIPS between the crop as predicted and as it is, both rebuilt in RGB (float32 Lab math) from
    the network's input L (so only the colour differs); the prediction upsampled to the crop's size."""
    L = denormalize_l(l_norm.float()).clamp(0.0, 100.0)

    def rgb(ab: torch.Tensor) -> torch.Tensor:
        return lab_to_rgb(torch.cat((L, denormalize_ab(full_res(ab.float(), L))), dim=1)) * 2.0 - 1.0

    return lpips(rgb(pred_ab_norm), rgb(ab_norm)).mean()


def distillation_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(p_teacher || p_student)`` per pixel, both at temperature T (Hinton et al. 2015)."""
    t = temperature
    target = torch.softmax(teacher_logits.float() / t, dim=1)
    if target.shape[-2:] != student_logits.shape[-2:]:
        # a distribution stays one when averaged over a pixel's footprint
        target = F.adaptive_avg_pool2d(target, student_logits.shape[-2:])
    log_p = F.log_softmax(student_logits.float() / t, dim=1)
    kl = (target * (target.clamp_min(1e-12).log() - log_p)).sum(1).mean()
    return kl * t * t


def adversarial_loss(logits: torch.Tensor, real: bool, kind: str) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    if kind == "lsgan":
        return F.mse_loss(logits, target)
    return F.binary_cross_entropy_with_logits(logits, target)


def full_res(ab_pred: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The generator predicts ab at a stride; the discriminator judges it at the image's resolution."""
    if ab_pred.shape[-2:] == like.shape[-2:]:
        return ab_pred
    return F.interpolate(ab_pred, size=like.shape[-2:], mode="bilinear", align_corners=False)


class Adversarial(Objective):
    """Per batch: one discriminator step on real vs (detached) generated (L, ab); then the generator's
    loss ``lambda x supervised + adversarial``, with the discriminator's weights held as constants so
    no gradient reaches them (it is "frozen" for the generator's step without toggling flags)."""

    def __init__(self, supervised: Supervised, disc: nn.Module, lr_d: float, betas, kind: str, gan_lambda: float):
        self.supervised = supervised
        self.disc = disc
        self.disc_train = disc
        self.opt_d = torch.optim.Adam(disc.parameters(), lr=lr_d, betas=betas)
        self.kind = kind
        self.gan_lambda = gan_lambda
        self.terms = (*supervised.terms, "loss_d", "loss_adv")

    def setup(self, device, wrap) -> None:
        self.supervised.setup(device, wrap)
        self.disc.to(device).train()
        self.disc_train = wrap(self.disc)

    def discriminator_step(self, l_norm, ab_real, ab_fake) -> torch.Tensor:
        loss_d = 0.5 * (
            adversarial_loss(self.disc_train(l_norm, ab_real), True, self.kind)
            + adversarial_loss(self.disc_train(l_norm, ab_fake.detach()), False, self.kind)
        )
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        return loss_d.detach()

    def fooling_loss(self, l_norm, ab_fake) -> torch.Tensor:
        """How far D is from calling the generated ab real, through D's weights as constants."""
        params = {k: v.detach() for k, v in self.disc.named_parameters()}
        buffers = dict(self.disc.named_buffers())
        logits = torch.func.functional_call(self.disc, {**params, **buffers}, (l_norm, ab_fake))
        return adversarial_loss(logits, True, self.kind)

    def __call__(self, net: Trainee, batch: Batch):
        sup, terms, pred = self.supervised.supervised(net, batch)
        ab_fake = full_res(pred, batch.ab_norm)
        loss_d = self.discriminator_step(batch.l_norm, batch.ab_norm, ab_fake)
        loss_adv = self.fooling_loss(batch.l_norm, ab_fake)
        total = self.gan_lambda * sup + loss_adv
        return total, {"loss": sup, **terms, "loss_d": loss_d, "loss_adv": loss_adv.detach()}

    def state_dict(self) -> dict:
        from edge_colorizer.checkpoint import model_state

        return {"discriminator": model_state(self.disc), "opt_d": self.opt_d.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.disc.load_state_dict(state["discriminator"]["state_dict"])
        self.opt_d.load_state_dict(state["opt_d"])
