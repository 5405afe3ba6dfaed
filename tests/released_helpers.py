"""What the tests of published checkpoints share: face-sized crops to score, and the head both authors' repositories put on the backbone's feature (yermandy/deepfake-detection's and
yermandy/GenD's ``LinearProbe``): ``linear`` = nn.Linear(dim, 2), logits with column 0 real, applied to the
L2-normalised feature for the ``LinearNorm`` head. The tests build the authors' checkpoints with it."""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


class LinearProbe(torch.nn.Module):
    def __init__(self, dim, normalize_inputs):
        super().__init__()
        self.linear = torch.nn.Linear(dim, 2)
        self.normalize_inputs = normalize_inputs

    def forward(self, x):
        return self.linear(F.normalize(x, p=2, dim=1) if self.normalize_inputs else x)


def crops(n_noise=3):
    """Real (scikit-image's astronaut, resized and cut) and generated face-sized crops as PNG bytes, and
    the same as images."""
    from skimage import data as skdata

    rng = np.random.default_rng(0)
    images = [Image.fromarray(skdata.astronaut()).resize((256, 256), Image.BICUBIC),
              Image.fromarray(skdata.astronaut()[:256, 128:384]),
              *[Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)) for _ in range(n_noise)]]
    pngs = []
    for img in images:
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        pngs.append(buf.getvalue())
    return pngs, images
