"""``python -m pipeline predict``: its arguments and what it prints and writes."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "p(fake) of video files, images (the faces stage crops them) and folders of either"

EPILOG = """\
Run it from the workflow's folder: the backbone, the faces settings (frames per video, crop, backend)
and the file score (mean or median of the frames' p_fake) are then those of the workflow that trained
the model. It prints a table (p_fake, frames scored/sampled, file, note); a file with no face, or one
that cannot be read, gets a note and no p_fake. Exit status: 0 when every file was scored, 1 when
some were not, 2 when the model cannot be used.

  python -m pipeline predict --model results/models/lnclip_df clip.mp4 photo.jpg folder/ --out scores.csv
"""


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments that choose a trained model and where it runs (predict and serve share them)."""
    p.add_argument("--model", "--adapter", required=True, metavar="DIR",
                   help="the trained model: results/models/NAME (or its adapter.safetensors)")
    p.add_argument("--weights", metavar="DIR",
                   help="backbone folder (default: the one the workflow fetched for this model)")
    p.add_argument("--config", metavar="FILE",
                   help="the workflow config that trained the model (default: found in this folder)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--batch-size", type=int, default=64, help="crops per forward pass")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="video or image files, or folders of them (recursive)")
    add_model_arguments(p)
    p.add_argument("--out", metavar="FILE", help="write one row per file to FILE.csv or FILE.json")
    p.add_argument("--frames-out", metavar="FILE", help="write one row per sampled frame to FILE.csv or FILE.json")
    p.add_argument("--num-frames", type=int, help="frames sampled per video (default: the workflow's)")
    p.add_argument("--backend", choices=["dlib", "face_alignment"], help="face backend (default: the workflow's)")
    p.add_argument("--backend-options", type=json.loads, metavar="JSON",
                   help="face backend options as JSON (default: the workflow's)")
    p.add_argument("--min-side", type=int, help="smaller images and frames are not searched (default: the workflow's)")
    p.add_argument("--reduce", choices=["mean", "median"], help="file score from frames (default: the workflow's)")
    p.add_argument("--aligned", action="store_true",
                   help="the images already are aligned face crops: score them without the faces stage")


def _say(text: str) -> None:
    print(f"predict: {text}", file=sys.stderr)


def run(a) -> int:
    from .files import load_scorer, predict_files
    from .inputs import expand_inputs
    from .output import console_table, file_table, frame_table, write_table
    from .resolve import PredictError, resolve_model

    for out in (a.out, a.frames_out):
        if out and not out.lower().endswith((".csv", ".json")):
            _say(f"{out}: --out and --frames-out write a .csv or a .json file")
            return 2
    inputs, problems = expand_inputs(a.paths)
    for path, why in problems:
        _say(f"{path}: {why}")
    try:
        if a.aligned:
            return _run_aligned(a, inputs)
        faces = {"backend": a.backend, "num_frames": a.num_frames, "min_side": a.min_side,
                 "backend_options": a.backend_options}
        model = resolve_model(a.model, weights=a.weights, config_path=a.config, faces=faces, video_reduce=a.reduce)
    except PredictError as err:
        _say(str(err))
        return 2
    for note in model.notes:
        _say(f"note: {note}")
    _say(f"model {model.adapter}, backbone {model.weights}; faces {model.faces['backend']} "
         f"{json.dumps(model.faces['crop'], sort_keys=True)}; file score: {model.video_reduce} of its frames"
         + (f" (settings of {model.config_path})" if model.config_path else ""))
    try:
        scorer = load_scorer(model, device=a.device) if inputs else None
    except (OSError, RuntimeError, ValueError) as err:  # a missing face model, no CUDA, a mismatched backbone
        _say(f"cannot load the model {model.adapter}: {err}")
        return 2
    results = predict_files(model, inputs, batch_size=a.batch_size, scorer=scorer) if inputs else []
    print(console_table(results))
    for out, table in ((a.out, file_table), (a.frames_out, frame_table)):
        if out:
            _say(f"wrote {write_table(table(results), out)}")
    return 0 if results and not problems and all(r.p_fake is not None for r in results) else 1


def _run_aligned(a, inputs) -> int:
    """``--aligned``: images that already are aligned face crops, scored without the faces stage."""
    from pipeline.model import load_detector, pick_device, read_adapter_meta
    from .resolve import adapter_path, backbone_dir, workflow_config
    from pipeline.evaluation import predict_images

    videos = [str(p) for p, kind in inputs if kind == "video"]
    if videos:
        _say(f"--aligned takes face-crop images, not videos: {', '.join(videos)}")
        return 2
    adapter = adapter_path(a.model)
    weights = backbone_dir(adapter, read_adapter_meta(adapter), workflow_config(adapter, a.config)[1], a.weights)
    device = pick_device(a.device)
    detector, _ = load_detector(adapter, weights, device=device)
    paths = [str(p) for p, _ in inputs if _readable_image(p)]
    for path, p in zip(paths, predict_images(detector, paths, batch_size=a.batch_size, device=device)):
        print(f"{p:.4f}\t{path}")
    return 0 if len(paths) == len(inputs) and inputs else 1


def _readable_image(path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
        return True
    except Exception as err:
        _say(f"{path}: cannot be read as an image ({type(err).__name__})")
        return False
