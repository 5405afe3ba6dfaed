"""training.optim.name picks the optimiser; biases and norms are never decayed."""

from __future__ import annotations

import pytest
import torch

from pipeline.core.config import defaults
from pipeline.training.optimizers import make_optimizer

OPTIM = defaults("model", "optim")  # name adamw, momentum 0.9, weight_decay 0: the config schema's


def named_params():
    torch.manual_seed(0)
    lin, norm = torch.nn.Linear(4, 2), torch.nn.LayerNorm(4)
    return {"head.weight": lin.weight, "head.bias": lin.bias, "layer_norm1.weight": norm.weight,
            "layer_norm1.bias": norm.bias}


@pytest.mark.parametrize("name,cls", [("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam),
                                      ("sgd", torch.optim.SGD), (None, torch.optim.AdamW)])
def test_named_optimiser_with_undecayed_biases_and_norms(name, cls):
    named = named_params()
    cfg = {**OPTIM, "weight_decay": 0.05, **({"name": name} if name else {})}
    opt = make_optimizer(named, cfg, lr=0.01)
    assert type(opt) is cls
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 0.05 and [id(p) for p in decayed["params"]] == [id(named["head.weight"])]
    assert plain["weight_decay"] == 0.0 and len(plain["params"]) == 3
    assert all(g["lr"] == 0.01 for g in opt.param_groups)
    if cls is torch.optim.SGD:
        assert decayed["momentum"] == 0.9


def test_sgd_steps_along_the_gradient():
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = make_optimizer({"w": w}, {"name": "sgd", "momentum": 0.5, "weight_decay": 0.0}, lr=0.1)
    (w ** 2).sum().backward()
    opt.step()
    assert torch.allclose(w.detach(), torch.tensor([0.8, -1.6]))


def test_unknown_optimiser_is_named():
    with pytest.raises(ValueError, match="'lion'.*adamw, adam, sgd"):
        make_optimizer(named_params(), {**OPTIM, "name": "lion"}, lr=0.1)
