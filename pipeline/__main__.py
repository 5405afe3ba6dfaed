"""Command line for the pipeline's stages, without Snakemake: ``python -m pipeline VERB ...``.

Each verb calls the same function as the workflow rule of that stage, so a stage can be run, debugged
or scripted on its own. ``python -m pipeline VERB --help`` lists a verb's arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _index(a):
    from pipeline.index import build_index

    df = build_index(a.dataset, a.adapter, a.root, json.loads(a.options), a.out, chunk_size=a.chunk_size,
                     chunk_seed=a.chunk_seed, threads=a.threads)
    print(f"{a.out}: {df.height} videos")


def _faces(a):
    from pipeline.faces import extract_chunk
    from pipeline.index import select_chunk

    stats = extract_chunk(select_chunk(a.videos, a.split, a.chunk), a.tar, a.table, backend=a.backend,
                          backend_options=json.loads(a.backend_options), num_frames=a.num_frames,
                          size=a.size, scale=a.scale, points=a.points, choice=a.choice, min_side=a.min_side,
                          png_level=a.png_level, threads=a.threads)
    print(json.dumps(stats))


def _import(a):
    from pipeline.importing import import_chunk
    from pipeline.index import select_chunk

    print(json.dumps(import_chunk(select_chunk(a.videos, a.split, a.chunk), a.tar, a.table, a.num_frames)))


def _manifest(a):
    from pipeline.manifest import build_manifest

    out = Path(a.out_dir)
    stats = build_manifest(a.videos, a.tables, out / "frames.parquet", out / "pairs.parquet", out / "stats.json")
    print(json.dumps(stats, indent=1))


def _train(a):
    from pipeline.config import load, model_config, weights_id
    from pipeline.train import train_model

    config = load(a.config)
    cfg = model_config(config, a.model)
    cfg["backbone"] = weights_id(config, cfg["weights"])
    out = Path(a.out_dir)
    summary = train_model(a.frames, a.weights, cfg, out / "adapter.safetensors", out / "train_log.parquet",
                          a.work_dir or out / "work", seed=config["seed"] if a.seed is None else a.seed,
                          threads=a.threads)
    print(json.dumps(summary, default=str))


def _evaluate(a):
    from pipeline.evaluate import evaluate_benchmark

    out = Path(a.out_dir)
    m = evaluate_benchmark(a.adapter, a.weights, a.frames, out / "scores.parquet", out / "metrics.json",
                           model=a.model, benchmark=a.benchmark, dataset=a.dataset or a.benchmark,
                           split=a.split, video_reduce=a.video_reduce, bootstrap=a.bootstrap,
                           batch_size=a.batch_size, seed=a.seed)
    print(f"video AUROC {m['video']['auroc']}  frame AUROC {m['frame']['auroc']}")


def _predict(a):
    from pipeline.model import load_detector, pick_device
    from pipeline.predict import predict_images

    device = pick_device(a.device)
    detector, _ = load_detector(a.adapter, a.weights, device=device)
    for path, p in zip(a.images, predict_images(detector, a.images, batch_size=a.batch_size, device=device)):
        print(f"{p:.4f}\t{path}")


def _report(a):
    from pipeline.config import load
    from pipeline.layout import from_config
    from pipeline.report import report_from_workflow

    config = load(a.config)
    out = a.out or from_config(config).report()
    report_from_workflow(out, config, require_all=False)
    print(out)


def _chunk_args(p) -> None:
    """The arguments of a verb that writes one chunk's shard."""
    p.add_argument("--videos", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--chunk", type=int, required=True)
    p.add_argument("--tar", required=True)
    p.add_argument("--table", required=True)


def main(argv=None) -> int:
    from pipeline import logs
    from pipeline.adapters import ADAPTERS

    ap = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="verb", required=True)

    p = sub.add_parser("demo", help="write the synthetic demo dataset (see python -m pipeline.demo --help)",
                       add_help=False)
    p.add_argument("args", nargs=argparse.REMAINDER)

    p = sub.add_parser("index", help="list and probe a dataset's videos -> videos.parquet")
    p.add_argument("dataset")
    p.add_argument("--adapter", required=True, choices=sorted(ADAPTERS))
    p.add_argument("--root", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--options", default="{}", help="adapter options as JSON")
    p.add_argument("--chunk-size", type=int, default=64)
    p.add_argument("--chunk-seed", type=int, default=0, help="seeds the shuffled order of videos in chunks")
    p.add_argument("--threads", type=int, default=4)
    p.set_defaults(func=_index)

    p = sub.add_parser("faces", help="face crops of one chunk -> WebDataset tar + Parquet")
    _chunk_args(p)
    p.add_argument("--backend", default="dlib", choices=["dlib", "face_alignment"])
    p.add_argument("--backend-options", default="{}", help="backend options as JSON (see config.yaml)")
    p.add_argument("--num-frames", type=int, default=32)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--scale", type=float, default=1.3)
    p.add_argument("--points", default="deepfakebench", choices=["deepfakebench", "centres"])
    p.add_argument("--choice", default="largest", choices=["largest", "mask"])
    p.add_argument("--min-side", type=int, default=64)
    p.add_argument("--png-level", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=_faces)

    p = sub.add_parser("import", help="existing face crops of one chunk (importer adapters) -> tar + Parquet")
    _chunk_args(p)
    p.add_argument("--num-frames", type=int, default=32)
    p.set_defaults(func=_import)

    p = sub.add_parser("manifest", help="shard tables -> frames.parquet, pairs.parquet, stats.json")
    p.add_argument("--videos", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("tables", nargs="+")
    p.set_defaults(func=_manifest)

    p = sub.add_parser("train", help="train one model of a config on a frames.parquet")
    p.add_argument("--config", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--frames", required=True)
    p.add_argument("--weights", required=True, help="directory of the backbone (save_pretrained)")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--work-dir")
    p.add_argument("--seed", type=int)
    p.add_argument("--threads", type=int, default=4)
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="score a benchmark split with a trained adapter")
    p.add_argument("--adapter", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--frames", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--model", default="model")
    p.add_argument("--benchmark", default="benchmark")
    p.add_argument("--dataset")
    p.add_argument("--video-reduce", choices=["mean", "median"], default="mean")
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("predict", help="p(fake) of aligned face-crop images")
    p.add_argument("--adapter", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--device")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("images", nargs="+")
    p.set_defaults(func=_predict)

    p = sub.add_parser("report", help="rebuild report.html from a config's results folder")
    p.add_argument("--config", required=True)
    p.add_argument("--out")
    p.set_defaults(func=_report)

    a = ap.parse_args(argv)
    if a.verb == "demo":
        from pipeline.demo import main as demo_main

        demo_main(a.args)
        return 0
    logs.setup()
    a.func(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
