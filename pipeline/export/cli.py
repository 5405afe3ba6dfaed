"""``python -m pipeline export``: its arguments and what it prints."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "a trained model as a transformers folder (hf) or one ONNX graph (onnx), checked against PyTorch"

EPILOG = """\
Run it from the workflow's folder (as predict): the backbone and the faces settings are then the workflow's,
and the export is checked on the test crops of the workflow's benchmarks; elsewhere give --crops (aligned
face-crop images). The export is refused, and nothing written, when its p(fake) differs from the PyTorch
model's by more than 1e-4 on any check crop. Exit status: 0 written, 2 refused or not possible.

  python -m pipeline export --model results/models/lnclip_df --format hf --out exports/lnclip_df-hf
  python -m pipeline export --model results/models/lnclip_df --format onnx --out exports/lnclip_df-onnx
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .build import FORMATS

    p.add_argument("--model", required=True, metavar="DIR", help="the trained model: results/models/NAME")
    p.add_argument("--format", required=True, choices=FORMATS, help="hf: transformers folder + head + model card; "
                                                                    "onnx: the whole detector, uint8 crops in")
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to write (replaced if an earlier export)")
    p.add_argument("--weights", metavar="DIR", help="backbone folder (default: the one the workflow fetched)")
    p.add_argument("--config", metavar="FILE", help="the workflow config that trained the model (default: found here)")
    p.add_argument("--crops", nargs="+", metavar="PATH",
                   help="aligned face-crop images (or folders) to check on (default: the benchmarks' test crops)")
    p.add_argument("--max-crops", type=int, default=512, help="check on at most this many crops, evenly spread")


def run(a) -> int:
    from .build import export_model
    from .source import ExportError

    try:
        info = export_model(a.model, a.format, a.out, weights=a.weights, config=a.config, crops=a.crops,
                            max_crops=a.max_crops)
    except ExportError as err:
        print(f"export: {err}", file=sys.stderr)
        return 2
    for note in info["notes"]:
        print(f"export: note: {note}", file=sys.stderr)
    c = info["check"]
    print(json.dumps({"out": a.out, "format": info["format"], "crops": c["crops"], "max_abs_diff": c["max_abs_diff"],
                      "bound": c["bound"]}))
    return 0
