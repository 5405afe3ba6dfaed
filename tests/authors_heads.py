"""The head both authors' repositories put on the backbone's feature (yermandy/deepfake-detection's and
yermandy/GenD's ``LinearProbe``): ``linear`` = nn.Linear(dim, 2), logits with column 0 real, applied to the
L2-normalised feature for the ``LinearNorm`` head. The tests build the authors' checkpoints with it."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class LinearProbe(torch.nn.Module):
    def __init__(self, dim, normalize_inputs):
        super().__init__()
        self.linear = torch.nn.Linear(dim, 2)
        self.normalize_inputs = normalize_inputs

    def forward(self, x):
        return self.linear(F.normalize(x, p=2, dim=1) if self.normalize_inputs else x)
