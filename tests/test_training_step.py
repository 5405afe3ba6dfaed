"""The training step at GPU settings, run on the CPU: no host sync, non-finite steps skipped and
counted and bounded, bf16 frozen weights, attention kernel, torch.compile, gradient accumulation."""

import json
from pathlib import Path

import polars as pl
import pytest
import torch
import yaml
from safetensors.torch import load_file

from pipeline.model.losses import LossConfig
from pipeline.model.detector import Detector, load_backbone
from pipeline.core.config import defaults
from pipeline.training.optimizers import make_optimizer
from pipeline.training import NonFiniteLoss
from pipeline.training import step as step_mod
from pipeline.training.engine import DEFAULTS, Engine, cast_frozen
from pipeline.training.step import StepParts, guarded_step, train_step

from test_train import make_cfg, run, toy  # noqa: F401  (the toy fixture)

HEAD_LOSS = step_mod._head_loss
SYNCS = ("item", "tolist", "__float__", "__int__", "__bool__", "__index__")


def _parts(backbone, dtype=torch.float32, accumulate=1, expand=None):
    torch.manual_seed(0)
    detector = Detector(load_backbone(backbone), ln_tuning=True, l2_norm=True)
    cast_frozen(detector.backbone, dtype)
    opt = make_optimizer(detector.trainable_parameters(), defaults("model", "optim"), 1e-3, fused=True)
    loss = LossConfig.from_dict({"label_smoothing": 0.1, "alignment": 0.1, "uniformity": 0.5})
    slerp = {"enabled": True, "expand_to": expand}
    return StepParts(detector, opt, loss, slerp, torch.device("cpu"), dtype, accumulate)


def _batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"pixel_values": torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g),
            "labels": torch.arange(n) % 2}


@pytest.mark.parametrize("dtype,accumulate,expand", [(torch.float32, 1, None), (torch.bfloat16, 2, 16)])
def test_step_makes_no_host_sync(toy, monkeypatch, dtype, accumulate, expand):  # noqa: F811
    parts = _parts(toy["backbone"], dtype, accumulate, expand)
    train_step(parts, _batch(), 1e-3, torch.Generator().manual_seed(0))  # optimiser state exists now

    def refuse(self, *a, **k):
        raise AssertionError("host sync inside the training step")

    with monkeypatch.context() as m:  # structurally: any read of a tensor's value on the host fails
        for name in SYNCS:
            m.setattr(torch.Tensor, name, refuse)
        out = train_step(parts, _batch(seed=1), 1e-3, torch.Generator().manual_seed(1))
    assert set(out) == set(step_mod.TERMS) | {"batch"}
    assert all(torch.is_tensor(out[k]) and out[k].dim() == 0 for k in step_mod.TERMS)
    assert out["batch"] == (expand or 8) and not out["skipped"]
    if torch.cuda.is_available():  # the same on a GPU, where torch reports real syncs
        gpu = _parts(toy["backbone"], torch.bfloat16)
        gpu.detector.cuda(), setattr(gpu, "device", torch.device("cuda"))
        torch.cuda.set_sync_debug_mode("error")
        try:
            train_step(gpu, _batch(), 1e-3, torch.Generator().manual_seed(0))
        finally:
            torch.cuda.set_sync_debug_mode(0)


def test_the_no_sync_check_catches_an_item(toy, monkeypatch):  # noqa: F811
    parts = _parts(toy["backbone"])
    monkeypatch.setattr(step_mod, "guarded_step", lambda opt, finite: opt.step() if finite.item() else None)
    monkeypatch.setattr(torch.Tensor, "item", lambda self: (_ for _ in ()).throw(AssertionError("sync")))
    with pytest.raises(AssertionError, match="sync"):
        train_step(parts, _batch(), 1e-3, torch.Generator().manual_seed(0))


def test_guarded_step_skips_a_non_finite_step_on_the_device(toy):  # noqa: F811
    parts = _parts(toy["backbone"])
    train_step(parts, _batch(), 1e-3, torch.Generator().manual_seed(0))
    params = {n: p.detach().clone() for n, p in parts.detector.trainable_parameters().items()}
    state = {k: v.clone() for st in parts.opt.state.values() for k, v in st.items()}
    for p in params:
        parts.detector.trainable_parameters()[p].grad = torch.full_like(params[p], float("nan"))
    guarded_step(parts.opt, torch.tensor(False))
    for n, p in parts.detector.trainable_parameters().items():
        assert torch.equal(p, params[n]), n
    assert int(next(iter(parts.opt.state.values()))["step"]) == 1  # the step counter did not move
    # A first step that is skipped leaves the optimiser state at its initial zeros.
    fresh = _parts(toy["backbone"])
    for p in fresh.detector.trainable_parameters().values():
        p.grad = torch.full_like(p, float("inf"))
    before = {n: p.detach().clone() for n, p in fresh.detector.trainable_parameters().items()}
    guarded_step(fresh.opt, torch.tensor(False))
    assert all(torch.equal(p, before[n]) for n, p in fresh.detector.trainable_parameters().items())
    assert all(float(v.abs().sum()) == 0 for st in fresh.opt.state.values() for v in st.values())
    assert state  # the first optimiser had state to protect


def _poison(monkeypatch, bad_steps):
    """Make the loss non-finite at the given (0-based, counted per call) optimiser steps."""
    real, calls = HEAD_LOSS, {"n": 0}

    def head_loss(parts, features, labels_cpu, generator):
        loss, terms, logits, y = real(parts, features, labels_cpu, generator)
        if calls["n"] in bad_steps:
            loss = loss * float("nan")
            terms = {**terms, "loss": loss.detach()}
        calls["n"] += 1
        return loss, terms, logits, y

    monkeypatch.setattr(step_mod, "_head_loss", head_loss)


def test_non_finite_steps_are_skipped_and_counted(toy, tmp_path, monkeypatch):  # noqa: F811
    _poison(monkeypatch, {2, 5})
    cfg = make_cfg(epochs=2)
    cfg["engine"] = {"log_every": 3}
    summary = run(toy, tmp_path, cfg)
    train = pl.read_parquet(tmp_path / "log.parquet").filter(pl.col("kind") == "train")
    assert train.filter(pl.col("skipped"))["step"].to_list() == [2, 5]
    assert train.filter(pl.col("skipped"))["loss"].is_nan().all()
    assert summary["nonfinite_steps"] == 2
    assert all(torch.isfinite(t).all() for t in load_file(str(tmp_path / "adapter.safetensors")).values())


def test_too_many_non_finite_steps_stop_and_keep_the_last_good_state(toy, tmp_path, monkeypatch):  # noqa: F811
    cfg = make_cfg(epochs=2)
    cfg["engine"] = {"log_every": 1, "checkpoint_every": 2, "max_nonfinite": 2}
    _poison(monkeypatch, {5, 6, 7, 8, 9})  # steps 5.. are non-finite: the third in a row stops it
    with pytest.raises(NonFiniteLoss, match="3 consecutive steps had a non-finite loss"):
        run(toy, tmp_path, cfg)
    assert not (tmp_path / "adapter.safetensors").exists()
    state = json.loads((tmp_path / "work" / "state.json").read_text())
    assert state["step"] == 6  # saved after steps 4 (good) and 5 (skipped); never after the limit
    # The kept state resumes: the same command with the fault gone ends like an uninterrupted run.
    _poison(monkeypatch, set())
    summary = run(toy, tmp_path, cfg)
    assert summary["nonfinite_steps"] == 1  # step 5, logged before the stop, stays in the log
    log = pl.read_parquet(tmp_path / "log.parquet").filter(pl.col("kind") == "train")
    assert log["step"].to_list() == list(range(8)) and log["skipped"].to_list() == [False] * 5 + [True] + [False] * 2


def test_bf16_frozen_weights_on_cpu(toy, tmp_path):  # noqa: F811
    detector = Detector(load_backbone(toy["backbone"]), ln_tuning=True, l2_norm=True)
    n = cast_frozen(detector.backbone, torch.bfloat16)
    assert n > 0
    for name, p in detector.named_parameters():
        is_norm = "norm" in name
        assert p.dtype == (torch.float32 if (p.requires_grad or is_norm) else torch.bfloat16), name
    cfg = make_cfg(epochs=2)
    cfg["engine"] = {"precision": "bf16", "attention": "eager"}
    summary = run(toy, tmp_path, cfg)
    adapter = load_file(str(tmp_path / "adapter.safetensors"))
    assert all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in adapter.values())
    assert summary["val"]["video_auroc"] > 0.5


def test_accumulation_attention_and_compile_match_the_plain_step(toy, tmp_path):  # noqa: F811
    base = make_cfg(epochs=1)
    variants = {"plain": {}, "accumulate": {"accumulate": 4}, "eager": {"attention": "eager"},
                "compiled": {"compile": "aot_eager"}}
    adapters = {}
    for name, engine in variants.items():
        run(toy, tmp_path / name, base | {"engine": engine})
        adapters[name] = load_file(str(tmp_path / name / "adapter.safetensors"))
    for name in variants:
        for k, t in adapters["plain"].items():
            assert torch.allclose(adapters[name][k], t, atol=2e-5), (name, k)


def test_engine_defaults_match_the_schema(repo):
    schema = yaml.safe_load((Path(repo) / "workflow/schemas/config.schema.yaml").read_text())
    props = schema["$defs"]["model"]["properties"]["engine"]["properties"]
    assert {k: v["default"] for k, v in props.items()} == DEFAULTS
    with pytest.raises(ValueError, match="unknown keys"):
        Engine.from_cfg({"precison": "bf16"})


def test_persistent_workers_serve_every_epoch_and_validation(toy, tmp_path, monkeypatch):  # noqa: F811
    import torch.utils.data as tud

    made = []
    real_init = tud.DataLoader.__init__

    def counting_init(self, *a, **k):
        made.append(k.get("persistent_workers"))
        real_init(self, *a, **k)

    monkeypatch.setattr(tud.DataLoader, "__init__", counting_init)
    cfg = make_cfg(epochs=2)
    summaries = {}
    for workers in (0, 2):
        cfg["data"]["workers"] = workers
        summaries[workers] = run(toy, tmp_path / str(workers), cfg)
    assert made == [False, False, True, True]  # one train and one val loader per run, whatever the epochs
    a, b = (load_file(str(tmp_path / str(w) / "adapter.safetensors")) for w in (0, 2))
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert summaries[0]["val"] == summaries[2]["val"]
