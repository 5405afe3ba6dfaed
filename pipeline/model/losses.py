"""Losses and latent augmentation of LNCLIP-DF (arXiv 2508.06248: loss terms and slerp augmentation).

Everything here acts on a mini-batch of features ``z`` of shape ``[N, D]``. The metric losses expect
unit vectors (the L2-normalised features the head returns); slerp normalises its inputs itself.

* :func:`alignment_loss` - label-aware alignment, mean ``||z_i - z_j||^2`` over same-label pairs.
* :func:`uniformity_loss` - Wang & Isola uniformity, ``log mean exp(-t ||z_i - z_j||^2)``.
* :func:`slerp`, :func:`slerp_augment` (the reference code: replace every sample of a class by an
  interpolant with a random partner of the same class) and :func:`slerp_expand` (the paper's text:
  grow the batch to ``size`` interpolated samples).
* :func:`total_loss` / :class:`LossConfig` - ``CE(label smoothing) + w_align * align + w_unif * unif``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

SLERP_EPS = 1e-7  # cos(theta) is clamped to [-1 + eps, 1 - eps] (reference value)
UNIFORMITY_FLOOR = 1e-6  # the reference clamps the mean before the log (inert for unit vectors)


def _zero(z: torch.Tensor) -> torch.Tensor:
    """A scalar zero that is part of ``z``'s graph (so ``.backward()`` works and gives zero grads)."""
    return z.sum() * 0.0


def alignment_loss(z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Label-aware alignment: mean of ``||z_i - z_j||^2`` over unordered pairs i<j with equal labels.

    Pairs of all classes are pooled into ONE mean (a class with n_c samples contributes
    n_c (n_c - 1) / 2 pairs), exactly as the reference code. Returns a zero connected to ``z``'s graph
    when there is no same-label pair (N < 2, or every label distinct). ``labels`` may live on the
    CPU while ``z`` is on a GPU (the training step passes the loader's labels: no host sync).
    """
    n = z.shape[0]
    if n < 2:
        return _zero(z)
    sq = torch.pdist(z).pow(2)  # [N(N-1)/2], pairs (i, j) with i < j in row-major order
    i, j = torch.triu_indices(n, n, offset=1, device=labels.device)
    same = (labels[i] == labels[j]).to(device=z.device, dtype=sq.dtype)
    # A weighted mean rather than ``sq[same].mean()``: no data-dependent shape, so no host sync.
    return (sq * same).sum() / same.sum().clamp_min(1.0)


def uniformity_loss(z: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """Uniformity: ``log(max(mean_{i<j} exp(-t ||z_i - z_j||^2), 1e-6))`` over all pairs of the batch.

    With N < 2 there is no pair; the reference then returns NaN (the mean of an empty ``pdist``),
    which its NaN guard turns into a zero loss. Here the result is a zero connected to ``z``'s graph.
    """
    if z.shape[0] < 2:
        return _zero(z)
    mean = torch.pdist(z).pow(2).mul(-t).exp().mean()
    return mean.clamp_min(UNIFORMITY_FLOOR).log()


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Spherical linear interpolation between the directions of ``a`` and ``b`` (rows, ``[N, D]``).

    Both inputs are L2-normalised; ``cos(theta)`` is clamped to ``[-1+1e-7, 1-1e-7]`` so that
    ``slerp(x, x, t) = x / ||x||`` without NaN. ``t`` is a scalar or broadcastable (``[N, 1]``);
    t = 0 gives â, t = 1 gives b̂, and every output row has unit norm.
    """
    a_hat = F.normalize(a, dim=-1)
    b_hat = F.normalize(b, dim=-1)
    cos = (a_hat * b_hat).sum(dim=-1, keepdim=True).clamp(-1 + SLERP_EPS, 1 - SLERP_EPS)
    theta = torch.acos(cos)
    sin = torch.sin(theta)
    if not torch.is_tensor(t):
        t = torch.tensor(t, dtype=a_hat.dtype, device=a_hat.device)
    return torch.sin((1 - t) * theta) / sin * a_hat + torch.sin(t * theta) / sin * b_hat


def slerp_augment(
    z: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The reference's in-batch slerp augmentation; returns a new ``[N, D]`` tensor.

    For each class in ``torch.unique(labels)`` (ascending) with at least 2 samples: partner =
    ``randperm(n_c)`` within the class, ``t ~ U(0, 1)`` per sample, and the class's rows are replaced
    by ``slerp(z_c, z_c[perm], t)``. Classes with one sample keep their row unchanged. Random numbers
    come from ``generator`` on the CPU in the order randperm(n_0), rand(n_0, 1), randperm(n_1), ...
    so that with ``generator=None`` after ``torch.manual_seed(s)`` the draws equal the reference's on
    CPU (on GPU the reference draws ``t`` from the CUDA generator; here ``t`` is always drawn on the
    CPU, then moved to ``z``'s device and dtype). The input is not modified; gradients flow into both
    interpolation endpoints. The class indices are computed from ``labels`` on the CPU: pass the
    loader's CPU labels and no host sync happens whatever ``z``'s device.
    """
    out = z.clone()
    labels = labels.cpu()
    for c in torch.unique(labels):
        idx = torch.nonzero(labels == c, as_tuple=True)[0].to(z.device, non_blocking=True)
        n_c = idx.numel()
        if n_c < 2:
            continue
        perm = torch.randperm(n_c, generator=generator)
        t = torch.rand(n_c, 1, generator=generator).to(device=z.device, dtype=z.dtype)
        z_c = z[idx]
        out[idx] = slerp(z_c, z_c[perm.to(z.device, non_blocking=True)], t)
    return out


def slerp_expand(
    z: torch.Tensor, labels: torch.Tensor, size: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's batch-growing slerp (``slerp.expand_to``): ``size`` interpolated samples.

    Each output sample belongs to a class drawn with probability proportional to its count among
    the classes with at least 2 samples; it lies on the arc between two DISTINCT random members of
    that class, at ``t ~ U(0, 1)``. No clean sample is kept. Returns ``(z_new [size, D], labels_new
    [size])``. If no class has 2 samples, nothing can be interpolated and the input is returned as is.
    Random numbers come from ``generator`` on the CPU; indices are computed from ``labels`` on the
    CPU (pass CPU labels for a sync-free step); ``labels_new`` is on ``labels``' device.
    """
    if size < 1:
        raise ValueError(f"slerp_expand: size must be >= 1, got {size}")
    out_device, labels = labels.device, labels.cpu()
    classes, counts = torch.unique(labels, return_counts=True)
    keep = counts >= 2
    classes, counts = classes[keep], counts[keep]
    if classes.numel() == 0:
        return z, labels.to(out_device)
    choice = torch.multinomial(counts.double(), size, replacement=True, generator=generator)
    labels_new = classes[choice].to(out_device)
    pieces_a, pieces_b, pieces_t, rows = [], [], [], []
    for k, c in enumerate(classes):  # 0-d CPU tensors: no value is read on the host
        out_rows = torch.nonzero(choice == k, as_tuple=True)[0]
        m = out_rows.numel()
        if m == 0:
            continue
        members = torch.nonzero(labels == c, as_tuple=True)[0]
        n_c = members.numel()
        i = torch.randint(n_c, (m,), generator=generator)
        j = (i + 1 + torch.randint(n_c - 1, (m,), generator=generator)) % n_c  # j != i
        pieces_a.append(members[i])
        pieces_b.append(members[j])
        pieces_t.append(torch.rand(m, 1, generator=generator))
        rows.append(out_rows)
    a_idx = torch.cat(pieces_a).to(z.device, non_blocking=True)
    b_idx = torch.cat(pieces_b).to(z.device, non_blocking=True)
    t = torch.cat(pieces_t).to(device=z.device, dtype=z.dtype)
    order = torch.argsort(torch.cat(rows)).to(z.device, non_blocking=True)  # back to the order of ``choice``
    z_new = slerp(z[a_idx], z[b_idx], t)[order]
    return z_new, labels_new


def total_loss(
    logits: torch.Tensor,
    z: torch.Tensor,
    labels: torch.Tensor,
    label_smoothing: float = 0.0,
    w_align: float = 0.0,
    w_unif: float = 0.0,
    monitor: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``CE(logits, labels; label_smoothing) + w_align * alignment(z) + w_unif * uniformity(z)``.

    A term whose weight is 0 is not part of the loss (and not computed, unless ``monitor`` asks for
    its value: then it is computed under ``no_grad`` for logging only, as the reference logs both
    metric terms every step). Returns ``(loss, parts)`` where ``parts`` maps ``loss``, ``ce``,
    ``align``, ``unif`` to detached scalars (NaN for a term neither used nor monitored).
    """
    ce = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    loss = ce
    nan = torch.full((), math.nan, device=logits.device)
    parts = {"ce": ce.detach(), "align": nan, "unif": nan}
    if w_align:
        align = alignment_loss(z, labels)
        loss = loss + w_align * align
        parts["align"] = align.detach()
    elif monitor:
        with torch.no_grad():
            parts["align"] = alignment_loss(z, labels)
    if w_unif:
        unif = uniformity_loss(z)
        loss = loss + w_unif * unif
        parts["unif"] = unif.detach()
    elif monitor:
        with torch.no_grad():
            parts["unif"] = uniformity_loss(z)
    parts["loss"] = loss.detach()
    return loss, parts


@dataclass(frozen=True)
class LossConfig:
    """The ``loss`` entry of a model config: ``{label_smoothing, alignment, uniformity}``."""

    label_smoothing: float = 0.0
    alignment: float = 0.0
    uniformity: float = 0.0

    @classmethod
    def from_dict(cls, cfg: dict) -> "LossConfig":
        unknown = set(cfg) - {"label_smoothing", "alignment", "uniformity"}
        if unknown:
            raise ValueError(f"loss: unknown keys {sorted(unknown)}")
        return cls(**{k: float(v) for k, v in cfg.items()})

    def __call__(self, logits, z, labels, monitor: bool = False):
        return total_loss(
            logits, z, labels, self.label_smoothing, self.alignment, self.uniformity, monitor=monitor
        )
