"""``python -m pipeline export``: the exported model gives ``predict``'s p(fake) without this package.

A tiny random CLIP with randomised LayerNorms (so an export that forgot to merge the tuned LayerNorms
scores differently) and a head with large weights (so the scores spread over [0, 1]) is exported; real
face crops (scikit-image's astronaut, cropped by the faces stage, in several poses and lightings) are
scored by ``predict --aligned``'s code, by the ``hf`` folder in a fresh ``python -I`` that cannot import
this package and loads only transformers + safetensors, and by the ``onnx`` graph in onnxruntime.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from pipeline.__main__ import main
from pipeline.evaluation import predict_images
from pipeline.export import BOUND, ExportError, export_model
from pipeline.faces import CropSettings, crop_frame, make_backend
from pipeline.model import Detector, load_backbone, load_detector, save_adapter

TOL = 1e-4

# Run first in every fresh Python below: importing the pipeline there fails.
NO_PIPELINE = '''\
import importlib.abc, sys
class NoPipeline(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "pipeline" or name.startswith("pipeline."):
            raise ImportError("pipeline is not importable here")
sys.meta_path.insert(0, NoPipeline())
'''

# Written here from the model card's description, not from the exporter's code.
INDEPENDENT = '''
import json, sys
import numpy as np, torch
from PIL import Image
from safetensors import safe_open
from transformers import CLIPVisionModel


def independent(out, paths):
    model = CLIPVisionModel.from_pretrained(out).eval()
    with safe_open(f"{out}/head.safetensors", "pt") as f:
        w, b, l2 = f.get_tensor("weight"), f.get_tensor("bias"), json.loads(f.metadata()["l2_normalize_features"])
    pre = json.load(open(f"{out}/preprocessor_config.json"))
    s = pre["size"]["height"]
    x = torch.stack([torch.from_numpy(np.array(Image.open(p).convert("RGB").resize((s, s), Image.BICUBIC)))
                     for p in paths]).permute(0, 3, 1, 2)
    x = (x.float() / 255 - torch.tensor(pre["image_mean"]).view(3, 1, 1)) / torch.tensor(pre["image_std"]).view(3, 1, 1)
    with torch.no_grad():
        feat = model(pixel_values=x).pooler_output
        feat = torch.nn.functional.normalize(feat, dim=1) if l2 else feat
        return torch.softmax(feat @ w.T + b, dim=1)[:, 1].tolist()
'''
CHECK = '''
paths = json.loads(sys.argv[2])
got = {"independent": independent(sys.argv[1], paths), "card": p_fake([Image.open(p) for p in paths])}
try:
    import pipeline
    sys.exit("pipeline was importable")
except ImportError:
    pass
assert not [m for m in sys.modules if m.split(".")[0] == "pipeline"]
print(json.dumps(got))
'''


def fresh_python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-I", "-c", code, *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def crops(tmp_path_factory) -> list[Path]:
    """Aligned face crops of the astronaut by the faces stage: the photo as it is, turned, smaller, darker
    and mirrored (real crops of one face that the model scores differently)."""
    folder = tmp_path_factory.mktemp("crops")
    photo = np.ascontiguousarray(data.astronaut())
    h, w = photo.shape[:2]
    turned = cv2.warpAffine(photo, cv2.getRotationMatrix2D((w / 2, h / 3), 12, 1.0), (w, h))
    small = cv2.resize(photo, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    darker = np.clip(photo.astype(np.float32) * 0.6, 0, 255).astype(np.uint8)
    frames = {"photo": photo, "turned": turned, "small": small, "darker": darker,
              "mirrored": np.ascontiguousarray(photo[:, ::-1])}
    backend, settings = make_backend("dlib", upsample=1), CropSettings()
    paths = []
    for name, frame in frames.items():
        res = crop_frame(frame, backend, settings, where=name)
        assert res.status == "ok", name
        paths.append(folder / f"{name}.png")
        Image.fromarray(res.crop).save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, backbone_dir) -> Path:
    """A trained model's folder as training leaves it (its adapter names the backbone's folder)."""
    torch.manual_seed(3)
    detector = Detector(load_backbone(backbone_dir), ln_tuning=True, l2_norm=True)
    with torch.no_grad():
        for name, p in detector.trainable_parameters().items():
            if name.startswith("backbone."):  # tuned LayerNorms: far from the backbone's own
                p.add_(torch.randn_like(p) * 0.5)
        detector.head.weight.normal_(0, 8.0)
    folder = tmp_path_factory.mktemp("models") / "lnclip_df"
    save_adapter(detector, folder / "adapter.safetensors", meta={"backbone": str(backbone_dir), "cfg": {}})
    return folder


@pytest.fixture(scope="module")
def expected(model_dir, backbone_dir, crops) -> list[float]:
    """``predict --aligned``'s p(fake) of the crops."""
    detector, _ = load_detector(model_dir / "adapter.safetensors", backbone_dir)
    p = predict_images(detector, crops)
    assert max(p) - min(p) > 100 * TOL, p  # spread: a crop mix-up or a missing step would show
    return p


@pytest.fixture(scope="module")
def hf_out(model_dir, crops, tmp_path_factory):
    out = tmp_path_factory.mktemp("exports") / "hf"
    assert main(["export", "--model", str(model_dir), "--format", "hf", "--out", str(out),
                 "--crops", str(crops[0].parent)]) == 0
    return out


def test_hf_export_loads_in_a_fresh_python_with_transformers_alone(hf_out, crops, expected):
    """The folder, read by code written here and by the model card's code, in one fresh ``python -I`` in
    which the pipeline cannot be imported, gives predict's p(fake)."""
    assert {p.name for p in hf_out.iterdir()} == {"config.json", "model.safetensors", "head.safetensors",
                                                   "preprocessor_config.json", "README.md", "export.json"}
    assert json.loads((hf_out / "config.json").read_text())["model_type"] == "clip_vision_model"
    card = (hf_out / "README.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", card, flags=re.S)
    usage = 'print(p_fake([Image.open("face_crop.png")]))  # one p(fake) per crop'
    assert code.rstrip().endswith(usage) and "pipeline" not in code
    code = code.replace("path/to/this/folder", str(hf_out)).replace(usage, "")
    proc = fresh_python(NO_PIPELINE + INDEPENDENT + code + CHECK, str(hf_out), json.dumps([str(p) for p in crops]))
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["independent"] == pytest.approx(expected, abs=TOL)
    assert got["card"] == pytest.approx(expected, abs=TOL)
    meta = json.loads((hf_out / "export.json").read_text())
    assert meta["format"] == "hf" and meta["model_class"] == "CLIPVisionModel" and meta["dtype"] == "float32"
    assert meta["check"]["crops"] == len(crops) and meta["check"]["bound"] == BOUND
    assert 0 <= meta["check"]["max_abs_diff"] <= TOL
    # the export's reference scores the crops in one batch, predict here in its own batches: float32 kernels
    # may round differently by batch shape on some CPUs (4e-8 seen on an AVX-512 Xeon), far below the bound
    assert meta["check"]["p_fake_range"] == pytest.approx([min(expected), max(expected)], abs=1e-6)
    for text in ("scale = 1.3", "size = 256", "37, 44, 30, 49 and 55", "ArcFace", "Intended use and limits",
                 "not a calibrated probability", "No evaluation of this model", f"{len(crops)} crops"):
        assert text in card, text


def test_onnx_export_runs_in_onnxruntime_at_any_batch_size(model_dir, crops, expected, tmp_path):
    import onnx
    import onnxruntime as ort

    out = tmp_path / "onnx"
    meta = export_model(model_dir, "onnx", out, crops=[str(p) for p in crops])
    assert meta["opset"] == 18 and meta["input"]["layout"] == "NHWC" and meta["check"]["max_abs_diff"] <= TOL
    model = onnx.load(str(out / "model.onnx"))
    onnx.checker.check_model(model)
    assert next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == 18
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.type, inp.shape[1:]) == ("crops", "tensor(uint8)", [32, 32, 3])
    assert isinstance(inp.shape[0], str) and outp.name == "p_fake"  # a dynamic batch
    size = inp.shape[1]  # the user's resize: PIL bicubic to the input size
    x = np.stack([np.array(Image.open(p).convert("RGB").resize((size, size), Image.BICUBIC)) for p in crops])
    (all_at_once,) = session.run(None, {"crops": x})
    one_by_one = [session.run(None, {"crops": x[i:i + 1]})[0][0] for i in range(len(x))]
    assert all_at_once.dtype == np.float32 and all_at_once.shape == (len(crops),)
    assert all_at_once.tolist() == pytest.approx(expected, abs=TOL)
    assert one_by_one == pytest.approx(expected, abs=TOL)


def test_a_dinov3_backbone_exports_with_its_own_class(dinov3_dir, crops, tmp_path):
    """GenD's DINOv3 backbone: ``DINOv3ViTModel`` in the folder, ImageNet's mean/std, the raw feature (no
    L2 norm) in the card's code, checked in a fresh Python."""
    torch.manual_seed(5)
    detector = Detector(load_backbone(dinov3_dir), ln_tuning=True, l2_norm=False)
    with torch.no_grad():
        for name, p in detector.trainable_parameters().items():
            p.add_(torch.randn_like(p) * 0.5)
    save_adapter(detector, tmp_path / "gend/adapter.safetensors", meta={"backbone": str(dinov3_dir), "cfg": {}})
    meta = export_model(tmp_path / "gend", "hf", tmp_path / "out", crops=[str(p) for p in crops[:2]])
    assert meta["model_class"] == "DINOv3ViTModel" and meta["check"]["max_abs_diff"] <= TOL
    assert json.loads((tmp_path / "out/config.json").read_text())["model_type"] == "dinov3_vit"
    pre = json.loads((tmp_path / "out/preprocessor_config.json").read_text())
    assert pre["image_mean"] == pytest.approx([0.485, 0.456, 0.406]) and pre["size"] == {"height": 32, "width": 32}
    card = (tmp_path / "out" / "README.md").read_text()
    assert "from transformers import DINOv3ViTModel" in card and "normalize(feature" not in card


def test_an_export_beyond_the_bound_is_refused_and_leaves_the_earlier_one(model_dir, crops, expected, hf_out,
                                                                           tmp_path, monkeypatch, capsys):
    import pipeline.export.hf as hf

    out = tmp_path / "again"
    shutil.copytree(hf_out, out)  # an earlier export
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(hf, "hf_scores", lambda *a, **k: [expected[0] + 3 * BOUND])  # its runtime is off by 3e-4
    assert main(["export", "--model", str(model_dir), "--format", "hf", "--out", str(out), "--crops",
                 str(crops[0])]) == 2
    err = capsys.readouterr().err
    assert "differs from the PyTorch model by up to 0.0003 in p(fake)" in err and "not written" in err
    assert "Traceback" not in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the earlier export, unchanged
    assert [p.name for p in tmp_path.iterdir()] == ["again"]  # no half-written folder beside it
    monkeypatch.setattr(hf, "hf_scores", lambda *a, **k: [expected[0] + 0.5 * BOUND])  # within the bound
    assert main(["export", "--model", str(model_dir), "--format", "hf", "--out", str(out), "--crops",
                 str(crops[0])]) == 0
    assert json.loads((out / "export.json").read_text())["check"]["max_abs_diff"] == pytest.approx(0.5 * BOUND, abs=1e-6)


def test_bad_requests_are_explained(model_dir, crops, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no workflow here: no benchmark crops to check on
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    (tmp_path / "clip.mp4").write_bytes(b"\x00" * 10)
    cases = [
        (["--out", "x"], "no face crops to check the export on"),
        (["--out", "taken", "--crops", str(crops[0])], "--out taken exists and is not an earlier export"),
        (["--out", "x", "--crops", "clip.mp4"], "clip.mp4: a video: give aligned face-crop images"),
        (["--out", "x", "--crops", "nope.png"], "nope.png: no such file or folder"),
        (["--out", "x", "--crops", str(crops[0]), "--max-crops", "0"], "--max-crops 0: check on at least one crop"),
    ]
    for extra, message in cases:
        assert main(["export", "--model", str(model_dir), "--format", "hf", *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (extra, err)
    assert main(["export", "--model", "results/models/nope", "--format", "onnx", "--out", "x"]) == 2
    assert "no trained model at results/models/nope" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    with pytest.raises(ExportError, match="--format 'tflite'"):
        export_model(model_dir, "tflite", tmp_path / "y")


def test_the_model_card_shows_the_workflows_metrics(tmp_path, monkeypatch):
    from pipeline.export.card import metrics_table

    monkeypatch.chdir(tmp_path)
    config = {"results": "results/demo", "benchmarks": {"demo": {"dataset": "demo", "split": "test"},
                                                         "other": {"dataset": "shift", "split": "test"},
                                                         "absent": {"dataset": "x", "split": "test"}}}
    for bench, auroc in (("demo", 0.9712), ("other", 0.75)):
        path = tmp_path / f"results/demo/eval/m/{bench}/metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"video": {"auroc": auroc, "auroc_ci": [auroc - 0.05, None], "ap": 0.5, "eer": 0.1,
                                              "n_real": 20, "n_fake": 20}, "frame": {"auroc": 0.8}}))
    rows = metrics_table(config, "m", "demo").splitlines()
    assert rows[2] == "| demo † | demo (test) | 20 + 20 | 97.1 [92.1, –] | 50.0 | 10.0 | 80.0 |"
    assert rows[3].startswith("| other | shift (test) | 20 + 20 | 75.0 [70.0, –]") and len(rows) == 6
    assert metrics_table(None, "m", "demo") == "No evaluation of this model was found beside it."
