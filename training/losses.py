"""Supervised colorization losses (the seed found plain MSE collapses to sepia)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edge_colorizer.lab import AB_NORM
from edge_colorizer.models.ab_bins import soft_encode


def downsample_target(ab_norm: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Average-pool the ab target to the prediction's resolution."""
    if ab_norm.shape[-2:] == like.shape[-2:]:
        return ab_norm
    return F.adaptive_avg_pool2d(ab_norm, like.shape[-2:])


def bins_cross_entropy(
    logits: torch.Tensor, ab_norm: torch.Tensor, centers: torch.Tensor, class_weights: torch.Tensor | None
) -> torch.Tensor:
    """Soft-encoded, class-rebalanced cross-entropy over ab bins (Zhang et al. 2016, eq. 2)."""
    target = soft_encode(downsample_target(ab_norm, logits) * AB_NORM, centers)
    ce = -(target * F.log_softmax(logits, dim=1)).sum(1)
    if class_weights is not None:
        ce = ce * class_weights.to(ce)[target.argmax(1)]
    return ce.mean()


def ab_l1(pred_ab_norm: torch.Tensor, ab_norm: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(pred_ab_norm, downsample_target(ab_norm, pred_ab_norm))


def bin_prior(dataset_ab: list[torch.Tensor], centers: torch.Tensor) -> torch.Tensor:
    """Empirical distribution of nearest bins over some ab tensors (N, 2, H, W) in normalised units."""
    counts = torch.zeros(centers.shape[0])
    for ab in dataset_ab:
        flat = (ab * AB_NORM).permute(0, 2, 3, 1).reshape(-1, 2)
        idx = torch.cdist(flat, centers).argmin(1)
        counts += torch.bincount(idx, minlength=centers.shape[0]).float()
    return (counts + 1.0) / (counts.sum() + counts.numel())


def supervised_loss(
    model: torch.nn.Module,
    l_norm: torch.Tensor,
    ab_norm: torch.Tensor,
    loss: str,
    class_weights: torch.Tensor | None,
    l1_weight: float,
    logits: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total loss, L1 term, decoded prediction) of a bins- or regression-headed colorizer.

    ``logits``: the head's output when the caller already has it (distillation uses it twice)."""
    logits = model.logits(l_norm) if logits is None else logits
    pred = model.decode(logits)
    l1 = ab_l1(pred, ab_norm)
    if loss == "bins":
        total = bins_cross_entropy(logits, ab_norm, model.bin_centers, class_weights) + l1_weight * l1
    else:
        total = l1_weight * l1
    return total, l1, pred


def class_weights_for(dataset, centers: torch.Tensor, lam: float) -> torch.Tensor:
    """Rebalancing weights from the bin prior of one pass over ``dataset`` (ab targets only)."""
    from edge_colorizer.data.dataset import rgb_uint8_to_l_ab
    from edge_colorizer.models.ab_bins import rebalancing_weights

    probe = [rgb_uint8_to_l_ab(dataset[i][0])[1][None] for i in range(len(dataset))]  # jitter: L only
    return rebalancing_weights(bin_prior(probe, centers), lam=lam)
