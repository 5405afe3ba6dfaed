"""The optimiser of a training run, chosen by ``training.optim.name`` (adamw, the reference's, by default).

Parameters whose name contains "bias" or "norm" get no weight decay (as the reference code); the
learning rate is set every step by the schedule, so the one given here is only the first.
"""

from __future__ import annotations

import torch

OPTIMIZERS = ("adamw", "adam", "sgd")


def param_groups(named: dict[str, torch.nn.Parameter], weight_decay: float) -> list[dict]:
    """Two groups: decayed weights and undecayed biases/norms (empty groups dropped)."""
    no_decay = [p for n, p in named.items() if "bias" in n or "norm" in n]
    decay = [p for n, p in named.items() if "bias" not in n and "norm" not in n]
    groups = ({"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0})
    return [g for g in groups if g["params"]]


def make_optimizer(
    named: dict[str, torch.nn.Parameter], optim_cfg: dict, lr: float, fused: bool = False
) -> torch.optim.Optimizer:
    """``optim_cfg``: the model's ``optim`` entry (``name``, ``weight_decay``, ``momentum`` for sgd).

    ``fused``: one kernel per step, with the step counter kept on the parameters' device (Adam's
    default keeps it on the host and reads it every step) - what the sync-free training step uses.
    """
    name = optim_cfg["name"]
    groups = param_groups(named, float(optim_cfg["weight_decay"]))
    kw = {"fused": True} if fused else {}
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, **kw)
    if name == "adam":  # L2 penalty added to the gradient instead of decoupled decay
        return torch.optim.Adam(groups, lr=lr, **kw)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=float(optim_cfg["momentum"]), **kw)
    raise ValueError(f"training.optim.name: unknown optimiser {name!r}; use one of {', '.join(OPTIMIZERS)}")
