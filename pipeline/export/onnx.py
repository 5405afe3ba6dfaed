"""``--format onnx``: the whole detector as one ONNX graph: ``uint8`` face crops in, p(fake) out.

Input ``crops``: ``uint8 [N, S, S, 3]`` (NHWC, RGB; ``S`` the backbone's input size; ``N`` dynamic), the
face crops resized to ``S`` x ``S`` with PIL's bicubic filter as the pipeline resizes them (no resize when
the crops already have that size). Inside: scaling to [0, 1], the backbone family's mean/std, the backbone
(tuned LayerNorms), the (L2-normalised) feature, the linear head and the softmax. Output ``p_fake``:
``float32 [N]``. Exported with ``torch.onnx.export`` (the ``torch.export``-based exporter, through
onnxscript) at opset :data:`OPSET`, and run with ``onnxruntime``'s CPU provider.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from pipeline.model import Detector
from .source import ExportError

OPSET = 18
FILE = "model.onnx"
INPUT, OUTPUT = "crops", "p_fake"
MAX_SINGLE_FILE = 1800 * 2**20  # larger weights go to an external data file (protobuf's 2 GiB limit)


class Scorer(nn.Module):
    """``uint8 [N, S, S, 3]`` crops -> ``p_fake [N]``: the evaluation's ``softmax(logits)[:, 1]``."""

    def __init__(self, detector: Detector):
        super().__init__()
        self.detector = detector

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        logits, _ = self.detector(self.detector.normalize(crops.permute(0, 3, 1, 2)))
        return torch.softmax(logits, dim=1)[:, 1]


def write_onnx(detector: Detector, out: Path) -> dict:
    """Export ``detector`` to ``out/model.onnx``; returns what the export's metadata says about it."""
    import onnx

    out.mkdir(parents=True, exist_ok=True)
    scorer = Scorer(detector.to("cpu").eval()).eval()
    size = detector.image_size
    example = torch.zeros(2, size, size, 3, dtype=torch.uint8)
    big = sum(p.numel() * 4 for p in scorer.parameters()) > MAX_SINGLE_FILE
    for name in ("onnx_ir", "onnxscript", "torch.onnx"):  # their pass-by-pass INFO lines
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)  # "no torchvision"
    batch = torch.export.Dim("batch", min=1)
    try:
        with torch.no_grad():
            torch.onnx.export(scorer, (example,), str(out / FILE), input_names=[INPUT], output_names=[OUTPUT],
                              opset_version=OPSET, dynamo=True, external_data=big,
                              dynamic_shapes={"crops": {0: batch}}, verbose=False)
    except Exception as err:  # the exporter's many error types: say which step failed and keep the cause
        raise ExportError(f"torch.onnx.export could not export this detector at opset {OPSET} "
                          f"({type(err).__name__}: {str(err)[:500]}); nothing was written") from err
    model = onnx.load(str(out / FILE), load_external_data=False)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return {"file": FILE, "opset": int(opset), "input": {"name": INPUT, "dtype": "uint8", "layout": "NHWC",
            "shape": ["N", size, size, 3], "what": f"RGB face crops resized to {size}x{size} with PIL's bicubic "
                                                   "filter; scaling and mean/std are inside the graph"},
            "output": {"name": OUTPUT, "dtype": "float32", "shape": ["N"], "what": "p(fake) = softmax(logits)[1]"},
            "external_data": big}


def onnx_scores(path: Path, arrays: list, batch_size: int = 32) -> list[float]:
    """p(fake) of RGB crops (``uint8 [S, S, 3]``, already at the input size) by ``onnxruntime`` (CPU)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out: list[float] = []
    for i in range(0, len(arrays), batch_size):
        (p,) = session.run([OUTPUT], {INPUT: np.stack(arrays[i:i + batch_size])})
        out.extend(float(v) for v in p)
    return out
