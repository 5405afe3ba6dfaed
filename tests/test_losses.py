"""Losses and slerp against hand-computed values (the definitions of arXiv 2508.06248)."""

import math

import pytest
import torch

from pipeline.model.losses import LossConfig, alignment_loss, slerp, slerp_augment, slerp_expand, total_loss, uniformity_loss


def unit(deg):
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


def vecs(*degs):
    return torch.tensor([unit(d) for d in degs], dtype=torch.float64)


# ---------------------------------------------------------------------------- alignment


def test_alignment_square_two_classes():
    # 0°, 90° (real) and 180°, 270° (fake): each same-label pair is 90° apart, ||a-b||² = 2.
    z = vecs(0, 90, 180, 270)
    assert alignment_loss(z, torch.tensor([0, 0, 1, 1])).item() == pytest.approx(2.0, abs=1e-12)


def test_alignment_pools_classes_in_one_mean():
    # 0°, 60°, 150°: squared distances 2-2cos(Δ): 60° -> 1, 150° -> 2+√3, 90° -> 2.
    z = vecs(0, 60, 150)
    assert alignment_loss(z, torch.tensor([1, 1, 1])).item() == pytest.approx(
        (1 + 2 + math.sqrt(3) + 2) / 3, abs=1e-12
    )
    # Only pair (0, 2) shares a label.
    assert alignment_loss(z, torch.tensor([0, 1, 0])).item() == pytest.approx(2 + math.sqrt(3), abs=1e-12)
    # Labels [0,0,1,1,1] on 0,90 | 0,60,150: pairs (0,1)=2 and the three above: (2 + 1 + 2+√3 + 2)/4.
    z5 = vecs(0, 90, 0, 60, 150)
    expected = (2 + 1 + (2 + math.sqrt(3)) + 2) / 4
    assert alignment_loss(z5, torch.tensor([0, 0, 1, 1, 1])).item() == pytest.approx(expected, abs=1e-12)


def test_alignment_without_same_label_pair_is_zero_and_differentiable():
    z = vecs(0, 90).requires_grad_(True)
    loss = alignment_loss(z, torch.tensor([0, 1]))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(z.grad, torch.zeros_like(z))
    single = vecs(30).requires_grad_(True)
    assert alignment_loss(single, torch.tensor([1])).item() == 0.0


# ---------------------------------------------------------------------------- uniformity


def test_uniformity_antipodal_pair():
    assert uniformity_loss(vecs(0, 180)).item() == pytest.approx(-8.0, abs=1e-12)


def test_uniformity_square():
    # Pairs: four at 90° (d²=2) and two at 180° (d²=4): log((4e^-4 + 2e^-8) / 6).
    expected = math.log((4 * math.exp(-4) + 2 * math.exp(-8)) / 6)
    assert uniformity_loss(vecs(0, 90, 180, 270)).item() == pytest.approx(expected, abs=1e-12)
    # t = 1: log((4e^-2 + 2e^-4) / 6).
    expected_t1 = math.log((4 * math.exp(-2) + 2 * math.exp(-4)) / 6)
    assert uniformity_loss(vecs(0, 90, 180, 270), t=1.0).item() == pytest.approx(expected_t1, abs=1e-12)


def test_uniformity_identical_points_is_zero_and_single_point_is_zero():
    assert uniformity_loss(vecs(10, 10)).item() == pytest.approx(0.0, abs=1e-12)
    z = vecs(10).requires_grad_(True)
    loss = uniformity_loss(z)
    assert loss.item() == 0.0
    loss.backward()  # connected to the graph


# ---------------------------------------------------------------------------- slerp


def test_slerp_endpoints_and_midpoint():
    a = torch.tensor([[3.0, 0.0]])
    b = torch.tensor([[0.0, 5.0]])
    assert torch.allclose(slerp(a, b, 0.0), torch.tensor([[1.0, 0.0]]), atol=1e-6)
    assert torch.allclose(slerp(a, b, 1.0), torch.tensor([[0.0, 1.0]]), atol=1e-6)
    s = 1 / math.sqrt(2)
    assert torch.allclose(slerp(a, b, 0.5), torch.tensor([[s, s]]), atol=1e-6)
    # 0° -> 60° at t = 1/3 is the unit vector at 20°.
    out = slerp(vecs(0), vecs(60), torch.tensor([[1 / 3]], dtype=torch.float64))
    assert torch.allclose(out, vecs(20), atol=1e-9)


def test_slerp_same_vector_no_nan_and_unit_norm():
    x = torch.tensor([[2.0, -1.0, 0.5]])
    out = slerp(x, x, torch.tensor([[0.3]]))
    assert torch.isfinite(out).all()
    assert torch.allclose(out, x / x.norm(), atol=1e-6)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, 16, generator=g), torch.randn(50, 16, generator=g)
    t = torch.rand(50, 1, generator=g)
    assert torch.allclose(slerp(a, b, t).norm(dim=1), torch.ones(50), atol=1e-5)


# ---------------------------------------------------------------------------- slerp augmentation


def reference_slerp_augment(features, labels):
    """Direct re-implementation of the reference code's loop (global CPU RNG)."""
    out = features.clone()
    for label in torch.unique(labels):
        idx = labels == label
        fc = out[idx]
        n = fc.shape[0]
        if n < 2:
            continue
        perm = torch.randperm(n)
        t = torch.rand(n, 1)
        a = fc / fc.norm(dim=1, keepdim=True)
        b = fc[perm] / fc[perm].norm(dim=1, keepdim=True)
        omega = torch.acos(torch.clamp((a * b).sum(dim=1, keepdim=True), -1 + 1e-7, 1 - 1e-7))
        so = torch.sin(omega)
        out[idx] = torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b
    return out


def test_slerp_augment_reproduces_reference_rng_order():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(13, 8, generator=g)
    labels = torch.tensor([1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1, 1])
    torch.manual_seed(42)
    expected = reference_slerp_augment(z, labels)
    torch.manual_seed(42)
    got = slerp_augment(z, labels)
    assert torch.allclose(got, expected, atol=1e-6)
    # A dedicated generator with the same seed draws the same numbers.
    got_g = slerp_augment(z, labels, generator=torch.Generator().manual_seed(42))
    assert torch.allclose(got_g, expected, atol=1e-6)
    assert not torch.allclose(got, z / z.norm(dim=1, keepdim=True), atol=1e-3)


def test_slerp_augment_single_member_class_unchanged_and_within_class():
    # Class 0 lives in dims 0-3, class 1 in dims 4-7; class 2 has one sample.
    g = torch.Generator().manual_seed(3)
    z = torch.zeros(9, 12)
    z[:4, :4] = torch.randn(4, 4, generator=g)
    z[4:8, 4:8] = torch.randn(4, 4, generator=g)
    z[8] = torch.randn(12, generator=g) * 5
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2])
    before = z.clone()
    out = slerp_augment(z, labels, generator=torch.Generator().manual_seed(0))
    assert torch.equal(z, before), "input modified in place"
    assert torch.equal(out[8], z[8]), "single-member class must be left unchanged"
    assert torch.all(out[:4, 4:] == 0) and torch.all(out[4:8, :4] == 0) and torch.all(out[4:8, 8:] == 0)
    assert torch.allclose(out[:8].norm(dim=1), torch.ones(8), atol=1e-6)


def test_slerp_augment_gradients_flow():
    z = torch.randn(6, 5, generator=torch.Generator().manual_seed(5)).requires_grad_(True)
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    out = slerp_augment(z, labels, generator=torch.Generator().manual_seed(0))
    (out * torch.arange(5.0)).sum().backward()
    assert torch.isfinite(z.grad).all()
    assert (z.grad.abs().sum(dim=1) > 0).all()


def test_slerp_expand_size_unit_norm_and_classes():
    g = torch.Generator().manual_seed(7)
    z = torch.zeros(6, 8)
    z[:3, :4] = torch.randn(3, 4, generator=g)
    z[3:5, 4:] = torch.randn(2, 4, generator=g)
    z[5] = torch.randn(8, generator=g)
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    z.requires_grad_(True)
    out, out_labels = slerp_expand(z, labels, 3000, generator=torch.Generator().manual_seed(0))
    assert out.shape == (3000, 8) and out_labels.shape == (3000,)
    assert set(out_labels.tolist()) == {0, 1}, "class 2 (one member) cannot be interpolated"
    assert torch.allclose(out.norm(dim=1), torch.ones(3000), atol=1e-5)
    assert torch.all(out[out_labels == 0][:, 4:] == 0) and torch.all(out[out_labels == 1][:, :4] == 0)
    frac0 = (out_labels == 0).float().mean().item()
    assert abs(frac0 - 3 / 5) < 0.04  # classes drawn in proportion to their counts (3 : 2)
    out.sum().backward()
    assert torch.isfinite(z.grad).all() and z.grad[:5].abs().sum() > 0
    # Nothing to interpolate: the input comes back.
    same, same_labels = slerp_expand(z[:2].detach(), torch.tensor([0, 1]), 8)
    assert same.shape == (2, 8) and same_labels.tolist() == [0, 1]


# ---------------------------------------------------------------------------- total loss


def test_total_loss_combines_terms():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    labels = torch.tensor([0, 1])
    eps = 0.1
    p0 = math.exp(2) / (math.exp(2) + 1)
    ce0 = -(1 - eps) * math.log(p0) - eps / 2 * (math.log(p0) + math.log(1 - p0))
    ce1 = math.log(2)  # uniform logits: every term is log 2
    ce = (ce0 + ce1) / 2
    z = vecs(0, 180).float()
    # No same-label pair -> align 0; antipodal -> unif -8.
    loss, parts = total_loss(logits, z, labels, label_smoothing=eps, w_align=0.1, w_unif=0.5)
    assert loss.item() == pytest.approx(ce + 0.5 * -8.0, abs=1e-5)
    assert parts["ce"].item() == pytest.approx(ce, abs=1e-6)
    assert parts["unif"].item() == pytest.approx(-8.0, abs=1e-5)
    assert parts["align"].item() == 0.0
    # Weights 0: CE only, terms not computed (NaN) unless monitored.
    loss0, parts0 = total_loss(logits, z, labels, label_smoothing=eps)
    assert loss0.item() == pytest.approx(ce, abs=1e-6)
    assert math.isnan(parts0["align"].item()) and math.isnan(parts0["unif"].item())
    _, parts_m = LossConfig(label_smoothing=eps)(logits, z, labels, monitor=True)
    assert parts_m["unif"].item() == pytest.approx(-8.0, abs=1e-5)
    with pytest.raises(ValueError):
        LossConfig.from_dict({"label_smoothing": 0.1, "alignmnet": 0.1})
