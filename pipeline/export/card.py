"""The model card (``README.md``) of an ``hf`` export: what the model is, how it was trained and measured,
how to crop faces for it, what it is for, and the code that scores crops with transformers alone."""

from __future__ import annotations

import json
import math
from pathlib import Path

import yaml

from pipeline.core import layout

LIMITS = """\
- It scores **aligned face crops**, one face per crop, made as above. Whole frames, other crops or other
  alignments are out of distribution and give meaningless scores; a video's score is the {reduce} of its
  sampled frames' p(fake).
- A detector trained on some manipulation methods generalises to others only partly: the cross-dataset rows
  of the table above are the best guide to scores on unseen data, and none of them covers every generator.
  Heavy compression, resizing, blur and noise move the scores (see the report's robustness section).
- p(fake) is a score, not a calibrated probability: choose a threshold on data like yours.
- It is not proof that a video is authentic or fake. Use it to prioritise human review (content moderation,
  forensic triage, research), not to make decisions about people on its own.
"""

DEMO = ("**This is the pipeline's offline demo:** a tiny randomly initialised backbone trained on synthetic "
        "videos of one photograph. Its numbers say nothing about real deepfakes.")


def _fmt(v, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{100 * v:.1f}" if pct else f"{v:.3f}"


def metrics_table(config: dict | None, model: str, train_ds: str | None) -> str:
    """The model's metrics on every benchmark whose ``metrics.json`` the workflow wrote (as in the report)."""
    if config is None:
        return "No evaluation of this model was found beside it."
    L = layout.from_config(config)
    rows = ["| benchmark | dataset (split) | videos (real + fake) | video AUROC % [95 % CI] | video AP % | video EER % "
            "| frame AUROC % |", "|---|---|---|---|---|---|---|"]
    for bench, b in sorted(config["benchmarks"].items()):
        path = Path(L.metrics(model, bench))
        if not path.is_file():
            continue
        m = json.loads(path.read_text())
        v, f = m.get("video", {}), m.get("frame", {})
        ci = v.get("auroc_ci") or [None, None]
        mark = " †" if b["dataset"] == train_ds else ""
        rows.append(f"| {bench}{mark} | {b['dataset']} ({b['split']}) | {v.get('n_real', '–')} + {v.get('n_fake', '–')} "
                    f"| {_fmt(v.get('auroc'), True)} [{_fmt(ci[0], True)}, {_fmt(ci[1], True)}] "
                    f"| {_fmt(v.get('ap'), True)} | {_fmt(v.get('eer'), True)} | {_fmt(f.get('auroc'), True)} |")
    if len(rows) == 2:
        return "No evaluation of this model was found beside it."
    return "\n".join(rows) + "\n\n† the model's training dataset (in-domain; its test split was not trained on)."


def faces_text(faces: dict, reduce: str) -> str:
    c = faces["crop"]
    points = {"deepfakebench": "the 68-point landmarks 37, 44, 30, 49 and 55 (upper eyelids, nose tip, outer lip "
                               "points; DeepfakeBench's choice)",
              "centres": "the eye centres (means of landmarks 36-41 and 42-47), the nose tip (30) and the mouth "
                         "corners (48, 54)"}[c["points"]]
    choice = {"largest": "the largest detected face", "mask": "the face under the manipulation mask"}[c["choice"]]
    return f"""\
The model was trained and evaluated on DeepfakeBench-style aligned crops; reproduce them exactly:

1. Sample {c['num_frames']} frames evenly spread over a video (an image is one frame).
2. Detect faces ({faces['backend']} backend, options `{json.dumps(faces['backend_options'], sort_keys=True)}`;
   frames with a side under {c['min_side']} px are not searched) and keep {choice}.
3. Fit the 68 iBUG landmarks on the full-resolution frame and take five points: {points}.
4. Fit a least-squares similarity transform (rotation, uniform scale, translation; no reflection) from those
   points onto the 5-point ArcFace template for 112 px, shifted by +8 px on x, with margin `scale = {c['scale']}`
   and scaled to `size = {c['size']}` px: `x' = ((x + 8) / 112 + (scale - 1) / 2) / scale * size`,
   `y' = (y / 112 + (scale - 1) / 2) / scale * size`.
5. Warp the frame bilinearly with a black border into a {c['size']} x {c['size']} RGB crop, and store it
   losslessly (PNG; JPEG moves the scores).
6. The model resizes a crop to its input size with PIL's bicubic filter (the code above does it).

A video's p(fake) is the {reduce} of its frames' p(fake)."""


def model_card(*, name: str, meta: dict, config: dict | None, faces: dict, reduce: str, hf: dict, check: dict,
               code: str) -> str:
    """The ``README.md`` of an ``hf`` export."""
    cfg = meta.get("cfg") or {}
    data = cfg.get("data", {})
    ds = data.get("dataset")
    entry = (config or {}).get("datasets", {}).get(ds, {})
    demo = bool((config or {}).get("demo"))
    front = {"library_name": "transformers", "pipeline_tag": "image-classification",
             "tags": ["deepfake-detection", "face-forgery-detection", "lnclip-df", "safetensors"]}
    training = yaml.safe_dump({k: cfg[k] for k in sorted(cfg) if k not in ("backbone",)}, sort_keys=True).strip()
    return f"""---
{yaml.safe_dump(front, sort_keys=False).strip()}
---

# {name}: a face-deepfake detector (LNCLIP-DF pipeline)

{DEMO if demo else ''}

A {hf['model_class']} backbone (`{meta.get('backbone')}`) of which only the LayerNorms were tuned, with a
linear head on the {'L2-normalised ' if hf['l2_normalize_features'] else ''}CLS feature (`pooler_output`):
p(fake) = softmax(head(feature))[1]. The tuned LayerNorms are merged into the backbone's weights here, so
`{hf['model_class']}.from_pretrained` loads it with no custom code; the head is `head.safetensors`.

## Use

Only `transformers`, `safetensors` (and the `torch`, `numpy`, `Pillow` they use) are needed:

```python
{code.rstrip()}


print(p_fake([Image.open("face_crop.png")]))  # one p(fake) per crop
```

`preprocessor_config.json` holds the input size ({hf['image_size']} px), the pixel mean/std and the
bicubic resize the code above applies.

## Face crops

{faces_text(faces, reduce)}

## Training

- Data: dataset `{ds}`{f" (adapter `{entry.get('adapter')}`)" if entry else ''}, split `{data.get('train_split')}`
  for training{f", `{data.get('val_split')}` for validation" if data.get('val_split') else ''}.
- Settings (the pipeline's model entry, complete):

```yaml
{training}
```

## Evaluation

{metrics_table(config, name, ds)}

## Export check

This folder was checked against the pipeline's PyTorch model on {check['source']}: the code above, run in
a fresh Python without the pipeline, gave p(fake) within {check['max_abs_diff']:.2e} of the pipeline's
(bound {check['bound']:.0e}, float32). `export.json` holds the details.

## Intended use and limits

{LIMITS.format(reduce=reduce)}"""
