"""Command line for the pipeline's stages, without Snakemake: ``python -m pipeline VERB ...``.

Each verb calls the same function as the workflow rule of that stage, so a stage can be run, debugged
or scripted on its own. ``python -m pipeline VERB --help`` lists a verb's arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.codec import CODECS


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
                          codec=a.codec, png_level=a.png_level, threads=a.threads)
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
    from pipeline.config import load, model_config, validate_config, weights_id
    from pipeline.train import train_model

    config = validate_config(load(a.config), source=a.config)
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


def _report(a):
    from pipeline.config import load, validate_config
    from pipeline.layout import from_config
    from pipeline.report import report_from_workflow

    config = validate_config(load(a.config), source=a.config)
    out = a.out or from_config(config).report()
    report_from_workflow(out, config, require_all=False)
    print(out)


def _chunk_args(p) -> None:
    """The arguments of a verb that writes one chunk's shard."""
    p.add_argument("--videos", required=True, help="the dataset's videos.parquet")
    p.add_argument("--split", required=True, help="the split of the chunk")
    p.add_argument("--chunk", type=int, required=True, help="the chunk's number within the split")
    p.add_argument("--tar", required=True, help="the WebDataset shard to write")
    p.add_argument("--table", required=True, help="the shard's Parquet table to write")


def _dataset_verbs(verb, adapters) -> None:
    p = verb("index", "list and probe a dataset's videos -> videos.parquet", _index)
    p.add_argument("dataset", help="the dataset's name (its entry under datasets in the config)")
    p.add_argument("--adapter", required=True, choices=sorted(adapters), help="how the dataset's layout is read")
    p.add_argument("--root", required=True, help="the dataset's folder")
    p.add_argument("--out", required=True, help="videos.parquet to write")
    p.add_argument("--options", default="{}", help="adapter options as JSON")
    p.add_argument("--chunk-size", type=int, default=64, help="videos per faces job")
    p.add_argument("--chunk-seed", type=int, default=0, help="seeds the shuffled order of videos in chunks")
    p.add_argument("--threads", type=int, default=4, help="threads probing the videos")

    p = verb("faces", "face crops of one chunk of videos -> WebDataset tar + Parquet", _faces)
    _chunk_args(p)
    p.add_argument("--backend", default="dlib", choices=["dlib", "face_alignment"], help="face detector + landmarks")
    p.add_argument("--backend-options", default="{}", help="backend options as JSON (see config.yaml)")
    p.add_argument("--num-frames", type=int, default=32, help="frames sampled per video")
    p.add_argument("--size", type=int, default=256, help="crop size in pixels")
    p.add_argument("--scale", type=float, default=1.3, help="margin around the aligned face")
    p.add_argument("--points", default="deepfakebench", choices=["deepfakebench", "centres"],
                   help="the five alignment points")
    p.add_argument("--choice", default="largest", choices=["largest", "mask"], help="which face of a frame")
    p.add_argument("--min-side", type=int, default=64, help="frames with a shorter side are not searched")
    p.add_argument("--codec", default=CODECS[0], choices=CODECS, help="lossless format of the stored crops")
    p.add_argument("--png-level", type=int, default=1, help="PNG compression level (the crop is the same)")
    p.add_argument("--threads", type=int, default=1, help="worker processes")

    p = verb("import", "existing face crops of one chunk (importer adapters) -> tar + Parquet", _import)
    _chunk_args(p)
    p.add_argument("--num-frames", type=int, default=32, help="frames taken per video, evenly spread")

    p = verb("manifest", "shard tables -> frames.parquet, pairs.parquet, stats.json", _manifest)
    p.add_argument("--videos", required=True, help="the dataset's videos.parquet")
    p.add_argument("--out-dir", required=True, help="folder for frames.parquet, pairs.parquet and stats.json")
    p.add_argument("tables", nargs="+", help="the shard tables (shards/*.parquet)")


def _model_verbs(verb) -> None:
    p = verb("train", "train one model of a config on a frames.parquet", _train)
    p.add_argument("--config", required=True, help="the workflow config (e.g. config.yaml)")
    p.add_argument("--model", required=True, help="the model's name under models in the config")
    p.add_argument("--frames", required=True, help="frames.parquet of the training dataset")
    p.add_argument("--weights", required=True, help="folder of the backbone (save_pretrained)")
    p.add_argument("--out-dir", required=True, help="folder for adapter.safetensors and train_log.parquet")
    p.add_argument("--work-dir", help="resumable state (default OUT_DIR/work)")
    p.add_argument("--seed", type=int, help="training seed (default: the config's)")
    p.add_argument("--threads", type=int, default=4, help="CPU threads")

    p = verb("evaluate", "score a benchmark split with a trained adapter -> scores.parquet, metrics.json", _evaluate)
    p.add_argument("--adapter", required=True, help="the model's adapter.safetensors")
    p.add_argument("--weights", required=True, help="folder of the backbone it was trained on")
    p.add_argument("--frames", required=True, help="frames.parquet of the benchmark's dataset")
    p.add_argument("--split", default="test", help="the split scored")
    p.add_argument("--out-dir", required=True, help="folder for scores.parquet and metrics.json")
    p.add_argument("--model", default="model", help="model name recorded in metrics.json")
    p.add_argument("--benchmark", default="benchmark", help="benchmark name recorded in metrics.json")
    p.add_argument("--dataset", help="dataset name recorded in metrics.json (default: the benchmark's)")
    p.add_argument("--video-reduce", choices=["mean", "median"], default="mean", help="video score from frames")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of the confidence intervals")
    p.add_argument("--batch-size", type=int, default=64, help="crops per forward pass")
    p.add_argument("--seed", type=int, default=0, help="seeds the bootstrap")

    p = verb("report", "rebuild report.html from a config's results folder", _report)
    p.add_argument("--config", required=True, help="the workflow config (e.g. config/demo.yaml)")
    p.add_argument("--out", help="the page to write (default: the workflow's report.html)")


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m pipeline`` parser: one sub-command per stage, each with its help text."""
    from pipeline import demo
    from pipeline.adapters import ADAPTERS
    from pipeline.predict import cli as predict_cli

    ap = argparse.ArgumentParser(prog="python -m pipeline", description="The pipeline's stages without Snakemake "
                                 "(each verb calls the same function as the workflow's rule), and predict.",
                                 epilog="`python -m pipeline VERB --help` lists the arguments of a verb.")
    sub = ap.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name, help_text, func, **kw):
        p = sub.add_parser(name, help=help_text, description=f"python -m pipeline {name}: {help_text}", **kw)
        p.set_defaults(func=func)
        return p

    demo.add_arguments(verb("demo", "write the offline demo dataset (synthetic real and self-blended fake "
                                    "videos + labels.csv)", demo.run))
    _dataset_verbs(verb, ADAPTERS)
    _model_verbs(verb)
    predict_cli.add_arguments(verb("predict", predict_cli.HELP, predict_cli.run, epilog=predict_cli.EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter))
    return ap


def main(argv=None) -> int:
    from pipeline import logs
    from pipeline.config import ConfigError

    a = build_parser().parse_args(argv)
    logs.setup()
    try:
        status = a.func(a)
    except ConfigError as err:
        print(f"python -m pipeline {a.verb}: {err}", file=sys.stderr)
        return 2
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
