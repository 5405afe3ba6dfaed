"""``--format hf``: a folder that ``transformers`` loads without this package and without remote code.

* the backbone, saved with ``save_pretrained`` after the adapter's tuned LayerNorms were loaded into it
  (``CLIPVisionModel`` or ``DINOv3ViTModel``: ``config.json`` + ``model.safetensors``);
* ``head.safetensors``: the linear head (``weight [2, hidden]``, ``bias [2]``; class 1 is fake) and, in
  its metadata, whether it reads the L2-normalised feature;
* ``preprocessor_config.json``: the input size, the pixel mean/std and the bicubic resize;
* the scoring code (:func:`snippet`), which the model card shows and the export's check runs in a fresh,
  isolated Python where this package cannot be imported (:func:`hf_scores`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

from pipeline.core.files import write_json
from pipeline.model import Detector, family, quiet_transformers
from .source import ExportError

HEAD = "head.safetensors"
PREPROCESSOR = "preprocessor_config.json"
IMAGE_PROCESSOR = {"CLIPVisionModel": "CLIPImageProcessor", "DINOv3ViTModel": "DINOv3ViTImageProcessor"}
RESAMPLE_BICUBIC = 3  # PIL.Image.BICUBIC, what the pipeline resizes crops with

_SNIPPET = '''\
import json

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file
from transformers import {model_class}

folder = {folder}
backbone = {model_class}.from_pretrained(folder).eval()  # the tuned LayerNorms are in its weights
head = load_file(f"{{folder}}/head.safetensors")  # weight [2, hidden], bias [2]; class 1 is fake
pre = json.load(open(f"{{folder}}/preprocessor_config.json"))
size = pre["size"]["height"]
mean = torch.tensor(pre["image_mean"]).view(3, 1, 1)
std = torch.tensor(pre["image_std"]).view(3, 1, 1)


def p_fake(crops):
    """p(fake) of aligned face crops (PIL images cropped as the model card says)."""
    pixels = [np.asarray(c.convert("RGB").resize((size, size), Image.BICUBIC)) for c in crops]
    x = (torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).float() / 255 - mean) / std
    with torch.no_grad():
        feature = backbone(pixel_values=x).pooler_output  # the CLS token after the last LayerNorm
{normalise}        logits = feature @ head["weight"].T + head["bias"]
    return torch.softmax(logits, dim=1)[:, 1].tolist()
'''
_NORMALISE = "        feature = torch.nn.functional.normalize(feature, dim=1)  # the head reads the L2-normalised feature\n"

# Run before the snippet in the check: the snippet must not need (nor import) this package.
_NO_PIPELINE = '''\
import importlib.abc, sys
class NoPipeline(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "pipeline" or name.startswith("pipeline."):
            raise ImportError("the exported folder must load without the pipeline package")
sys.meta_path.insert(0, NoPipeline())
'''
_RUN = '''
import sys
paths = json.loads(open(sys.argv[1]).read())
scores = []
for i in range(0, len(paths), 32):
    scores += p_fake([Image.open(p) for p in paths[i:i + 32]])
assert not any(m == "pipeline" or m.startswith("pipeline.") for m in sys.modules)
print(json.dumps(scores))
'''


def model_class(detector: Detector) -> str:
    """The transformers class of the detector's backbone (``CLIPVisionModel`` or ``DINOv3ViTModel``)."""
    return family(detector.backbone.config.model_type).model_class


def snippet(model_class_name: str, l2_norm: bool, folder: str = ".") -> str:
    """Python that loads an exported folder with transformers + safetensors and defines ``p_fake(crops)``."""
    return _SNIPPET.format(model_class=model_class_name, folder=json.dumps(str(folder)), normalise=_NORMALISE if l2_norm else "")


def write_hf(detector: Detector, out: Path) -> dict:
    """Write the backbone (tuned LayerNorms in it), ``head.safetensors`` and ``preprocessor_config.json``
    into ``out``; returns what the export's metadata says about them."""
    out.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        detector.backbone.save_pretrained(out)
    head = {"weight": detector.head.weight.detach().to("cpu", torch.float32).contiguous(),
            "bias": detector.head.bias.detach().to("cpu", torch.float32).contiguous()}
    save_file(head, str(out / HEAD), metadata={"l2_normalize_features": json.dumps(detector.l2_norm),
                                                 "fake_class": "1", "feature": "pooler_output"})
    size = detector.image_size
    cls = model_class(detector)
    write_json(out / PREPROCESSOR, {
        "image_processor_type": IMAGE_PROCESSOR[cls], "do_convert_rgb": True, "do_resize": True,
        "size": {"height": size, "width": size}, "resample": RESAMPLE_BICUBIC, "do_center_crop": False,
        "crop_size": {"height": size, "width": size}, "do_rescale": True, "rescale_factor": 1 / 255,
        "do_normalize": True, "image_mean": detector.pixel_mean.flatten().tolist(),
        "image_std": detector.pixel_std.flatten().tolist()})
    return {"model_class": cls, "head": HEAD, "l2_normalize_features": detector.l2_norm, "image_size": size,
            "input": "RGB face crops resized to image_size x image_size with PIL's bicubic filter, scaled to "
                     "[0, 1], minus image_mean, over image_std (preprocessor_config.json)"}


def hf_scores(folder: Path, arrays: list, model_class_name: str, l2_norm: bool, timeout: int = 1800) -> list[float]:
    """p(fake) of RGB crops (``uint8 [H, W, 3]``) by the model card's code on ``folder``, run in a fresh
    isolated Python (``python -I``) in which importing this package fails."""
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="export-check-") as tmp:
        paths = []
        for i, rgb in enumerate(arrays):
            paths.append(os.path.join(tmp, f"{i:06d}.png"))
            Image.fromarray(rgb).save(paths[-1])  # lossless: the crop's pixels
        listing = Path(tmp) / "crops.json"
        listing.write_text(json.dumps(paths))
        code = _NO_PIPELINE + snippet(model_class_name, l2_norm, str(Path(folder).resolve())) + _RUN
        proc = subprocess.run([sys.executable, "-I", "-c", code, str(listing)], capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if proc.returncode != 0:
        raise ExportError(f"the exported folder did not load and score in a fresh Python; it was not written:\n"
                          f"{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
