"""Channel plans: the layer widths of a network whose channels were pruned, so a checkpoint rebuilds it.

``create_model`` derives every width from a few arguments; structured pruning changes them layer by
layer. A plan records, for every convolution, batch norm and linear layer, the shape it has; applying
the plan to a freshly built network replaces each layer whose shape differs by an empty one of the
recorded shape, after which the pruned state dict loads as usual (``weights_only=True``).
"""

from __future__ import annotations

import torch.nn as nn

# kind -> the constructor arguments that a plan records
_PLANNED = (nn.Conv2d, nn.BatchNorm2d, nn.Linear)


def channel_plan(model: nn.Module) -> dict[str, list[int]]:
    """``{layer name: shape}``: conv [in, out, groups], batch norm [features], linear [in, out]."""
    plan = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            plan[name] = [m.in_channels, m.out_channels, m.groups]
        elif isinstance(m, nn.BatchNorm2d):
            plan[name] = [m.num_features]
        elif isinstance(m, nn.Linear):
            plan[name] = [m.in_features, m.out_features]
    return plan


def _resized(m: nn.Module, shape: list[int]) -> nn.Module:
    if isinstance(m, nn.Conv2d):
        c_in, c_out, groups = shape
        return type(m)(
            c_in,
            c_out,
            m.kernel_size,
            m.stride,
            m.padding,
            m.dilation,
            groups,
            bias=m.bias is not None,
            padding_mode=m.padding_mode,
        )
    if isinstance(m, nn.BatchNorm2d):
        return type(m)(shape[0], m.eps, m.momentum, m.affine, m.track_running_stats)
    return type(m)(shape[0], shape[1], bias=m.bias is not None)


def apply_channel_plan(model: nn.Module, plan: dict[str, list[int]]) -> nn.Module:
    """Resize, in place, every layer of ``model`` named in ``plan`` to the recorded shape; returns ``model``.

    Raises ``ValueError`` for a plan that names a layer the model lacks or of another kind, or a shape
    that is not a list of positive integers (a forged or foreign checkpoint).
    """
    current = channel_plan(model)
    modules = dict(model.named_modules())
    for name, shape in plan.items():
        if name not in current:
            raise ValueError(f"channel plan names a layer {name!r} that the model does not have")
        if (
            not isinstance(shape, list)
            or len(shape) != len(current[name])
            or not all(isinstance(v, int) and 0 < v <= 1 << 16 for v in shape)
        ):
            raise ValueError(f"channel plan of layer {name!r} is malformed: {shape!r}")
        if shape == current[name]:
            continue
        if isinstance(modules[name], nn.Conv2d) and (shape[0] % shape[2] or shape[1] % shape[2]):
            raise ValueError(f"channel plan of layer {name!r}: channels not divisible by groups: {shape}")
        parent_name, _, child = name.rpartition(".")
        parent = modules[parent_name] if parent_name else model
        setattr(parent, child, _resized(modules[name], shape))
    return model
