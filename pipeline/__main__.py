"""Command line for the pipeline's stages, without Snakemake: ``python -m pipeline VERB ...``.

Each verb calls the same function as the workflow rule of that stage, so a stage can be run, debugged
or scripted on its own. ``python -m pipeline VERB --help`` lists a verb's arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.core.codec import CODECS


def _index(a):
    from pipeline.datasets import build_index

    df = build_index(a.dataset, a.adapter, a.root, json.loads(a.options), a.out, chunk_size=a.chunk_size,
                     chunk_seed=a.chunk_seed, threads=a.threads)
    print(f"{a.out}: {df.height} videos")


def _faces(a):
    from pipeline.faces import extract_chunk
    from pipeline.core.tables import select_chunk

    stats = extract_chunk(select_chunk(a.videos, a.split, a.chunk), a.tar, a.table, backend=a.backend,
                          backend_options=json.loads(a.backend_options), num_frames=a.num_frames,
                          size=a.size, scale=a.scale, points=a.points, choice=a.choice, min_side=a.min_side,
                          codec=a.codec, png_level=a.png_level, threads=a.threads)
    print(json.dumps(stats))


def _import(a):
    from pipeline.datasets import import_chunk
    from pipeline.core.tables import select_chunk

    print(json.dumps(import_chunk(select_chunk(a.videos, a.split, a.chunk), a.tar, a.table, a.num_frames)))


def _manifest(a):
    from pipeline.datasets import build_manifest

    out = Path(a.out_dir)
    stats = build_manifest(a.videos, a.tables, out / "frames.parquet", out / "pairs.parquet", out / "stats.json")
    print(json.dumps(stats, indent=1))


def _train(a):
    """One model of a config, made as the workflow's train job makes it: the same settings, the same
    files (the workflow's manifests, features and weights under its results and resources folders), the
    same code for its kind, the same number of threads."""
    from pipeline.core.config import check_config, load, model_config, validate_config
    from pipeline.training import kinds
    from pipeline.workflow.resources import cpus_per_device

    config = validate_config(load(a.config), source=a.config)
    check_config(config)
    out = Path(a.out_dir)
    paths = {**kinds.paths(config, a.model), "adapter": str(out / "adapter.safetensors"),
             "log": str(out / "train_log.parquet"), "work_dir": str(out / "work")}
    _features_for(config, paths, out / "features")
    if "pairs" in paths and not Path(paths["pairs"]).exists():
        paths["pairs"] = None  # only paired order and data fractions read it
    needed = {role: p for role, p in kinds.inputs(paths).items() if not role.endswith("_marker") and role != "pairs"}
    needed = _flat(needed) + [paths[k] for k in ("backbone", "released") if k in paths]
    missing = [p for p in needed if not Path(p).exists()]
    if missing:
        raise SystemExit(f"python -m pipeline train: {', '.join(missing)} missing; make it first, e.g. "
                         f"snakemake --configfile={a.config} --cores 4 {missing[0]}")
    cfg = model_config(config, a.model)
    threads = a.threads or cfg["devices"] * cpus_per_device(cfg["data"]["workers"])
    summary = kinds.make(kinds.settings(config, a.model), paths, runtime=kinds.runtime(config, a.model),
                         threads=threads)
    print(json.dumps(summary, default=str))


def _flat(inputs: dict) -> list[str]:
    return [p for v in inputs.values() for p in (v if isinstance(v, list) else [v])]


def _features_for(config: dict, paths: dict, folder: Path) -> None:
    """A logistic model's missing split features, computed into ``folder`` (the workflow's features
    rule does the same into its results folder)."""
    from pipeline.core import layout
    from pipeline.model import extract_features

    wanted = {} if "train_features" not in paths else {"train": paths["train_features"], **paths["val_features"]}
    for role, path in wanted.items():
        if Path(path).exists():
            continue
        _, weights, ds, split = Path(path).with_suffix("").parts[-4:]
        local = str(folder / weights / ds / f"{split}.parquet")
        if not Path(local).exists():
            L = layout.from_config(config)
            extract_features(L.frames(ds), split, layout.weights_root(config, weights), local,
                             batch_size=config["evaluate"]["batch_size"], workers=config["evaluate"]["workers"])
        if role == "train":
            paths["train_features"] = local
        else:
            paths["val_features"][role] = local


def _evaluate(a):
    from pipeline.evaluation import evaluate_benchmark

    out = Path(a.out_dir)
    m = evaluate_benchmark(a.adapter, a.weights, a.frames, out / "scores.parquet", out / "metrics.json",
                           model=a.model, benchmark=a.benchmark, dataset=a.dataset or a.benchmark,
                           split=a.split, video_reduce=a.video_reduce, bootstrap=a.bootstrap,
                           batch_size=a.batch_size, seed=a.seed)
    print(f"video AUROC {m['video']['auroc']}  frame AUROC {m['frame']['auroc']}")


def _report(a):
    from pipeline.core.config import load, validate_config
    from pipeline.core.layout import from_config
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
    from pipeline.core.config import defaults

    f = defaults("faces")
    p = verb("index", "list and probe a dataset's videos -> videos.parquet", _index)
    p.add_argument("dataset", help="the dataset's name (its entry under datasets in the config)")
    p.add_argument("--adapter", required=True, choices=sorted(adapters), help="how the dataset's layout is read")
    p.add_argument("--root", required=True, help="the dataset's folder")
    p.add_argument("--out", required=True, help="videos.parquet to write")
    p.add_argument("--options", default="{}", help="adapter options as JSON")
    p.add_argument("--chunk-size", type=int, default=64, help="videos per faces job")
    p.add_argument("--chunk-seed", type=int, default=f["chunk_seed"], help="seeds the shuffled order of videos in chunks")
    p.add_argument("--threads", type=int, default=4, help="threads probing the videos")

    p = verb("faces", "face crops of one chunk of videos -> WebDataset tar + Parquet", _faces)
    _chunk_args(p)
    p.add_argument("--backend", default="dlib", choices=["dlib", "face_alignment"], help="face detector + landmarks")
    p.add_argument("--backend-options", default="{}", help="backend options as JSON (see config.yaml)")
    p.add_argument("--num-frames", type=int, default=f["num_frames"], help="frames sampled per video")
    p.add_argument("--size", type=int, default=f["size"], help="crop size in pixels")
    p.add_argument("--scale", type=float, default=f["scale"], help="margin around the aligned face")
    p.add_argument("--points", default=f["points"], choices=["deepfakebench", "centres"],
                   help="the five alignment points")
    p.add_argument("--choice", default=f["choice"], choices=["largest", "mask"], help="which face of a frame")
    p.add_argument("--min-side", type=int, default=f["min_side"], help="frames with a shorter side are not searched")
    p.add_argument("--codec", default=f["codec"], choices=CODECS, help="lossless format of the stored crops")
    p.add_argument("--png-level", type=int, default=f["png_level"], help="PNG compression level (the crop is the same)")
    p.add_argument("--threads", type=int, default=1, help="worker processes")

    p = verb("import", "existing face crops of one chunk (importer adapters) -> tar + Parquet", _import)
    _chunk_args(p)
    p.add_argument("--num-frames", type=int, default=f["num_frames"], help="frames taken per video, evenly spread")

    p = verb("manifest", "shard tables -> frames.parquet, pairs.parquet, stats.json", _manifest)
    p.add_argument("--videos", required=True, help="the dataset's videos.parquet")
    p.add_argument("--out-dir", required=True, help="folder for frames.parquet, pairs.parquet and stats.json")
    p.add_argument("tables", nargs="+", help="the shard tables (shards/*.parquet)")


def _model_verbs(verb) -> None:
    from pipeline.core.config import defaults

    ev = defaults("evaluate")
    p = verb("train", "make one model of a config (any kind) as the workflow does, from its files", _train)
    p.add_argument("--config", required=True, help="the workflow config (e.g. config.yaml)")
    p.add_argument("--model", required=True,
                   help="the model's name under models in the config (a model with seeds: a run, <model>-seed<N>)")
    p.add_argument("--out-dir", required=True, help="folder for adapter.safetensors, train_log.parquet and the "
                                                    "resumable state (work/)")
    p.add_argument("--threads", type=int, help="CPU threads (default: the workflow job's)")

    p = verb("evaluate", "score a benchmark split with a trained adapter -> scores.parquet, metrics.json", _evaluate)
    p.add_argument("--adapter", required=True, help="the model's adapter.safetensors")
    p.add_argument("--weights", required=True, help="folder of the backbone it was trained on")
    p.add_argument("--frames", required=True, help="frames.parquet of the benchmark's dataset")
    p.add_argument("--split", default="test", help="the split scored")
    p.add_argument("--out-dir", required=True, help="folder for scores.parquet and metrics.json")
    p.add_argument("--model", default="model", help="model name recorded in metrics.json")
    p.add_argument("--benchmark", default="benchmark", help="benchmark name recorded in metrics.json")
    p.add_argument("--dataset", help="dataset name recorded in metrics.json (default: the benchmark's)")
    p.add_argument("--video-reduce", choices=["mean", "median"], default=ev["video_reduce"],
                   help="video score from frames")
    p.add_argument("--bootstrap", type=int, default=ev["bootstrap"], help="bootstrap resamples of the confidence intervals")
    p.add_argument("--batch-size", type=int, default=ev["batch_size"], help="crops per forward pass")
    p.add_argument("--seed", type=int, default=0, help="seeds the bootstrap")

    p = verb("report", "rebuild report.html from a config's results folder", _report)
    p.add_argument("--config", required=True, help="the workflow config (e.g. config/demo.yaml)")
    p.add_argument("--out", help="the page to write (default: the workflow's report.html)")


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m pipeline`` parser: one sub-command per stage, each with its help text."""
    from pipeline.fetch import demo
    from pipeline.datasets.adapters import REGISTRY
    from pipeline.predict import cli as predict_cli
    from pipeline.serve import cli as serve_cli
    from pipeline.export import cli as export_cli

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
    _dataset_verbs(verb, REGISTRY)
    _model_verbs(verb)
    predict_cli.add_arguments(verb("predict", predict_cli.HELP, predict_cli.run, epilog=predict_cli.EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter))
    serve_cli.add_arguments(verb("serve", serve_cli.HELP, serve_cli.run, epilog=serve_cli.EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter))
    export_cli.add_arguments(verb("export", export_cli.HELP, export_cli.run, epilog=export_cli.EPILOG,
                                  formatter_class=argparse.RawDescriptionHelpFormatter))
    return ap


def main(argv=None) -> int:
    from pipeline.core import logs
    from pipeline.core.config import ConfigError
    from pipeline.core.files import OutputError

    a = build_parser().parse_args(argv)
    logs.setup()
    try:
        status = a.func(a)
    except ConfigError as err:
        print(f"python -m pipeline {a.verb}: {err}", file=sys.stderr)
        return 2
    except OutputError as err:  # a full disk, a folder not writable: the message names the output
        print(f"python -m pipeline {a.verb}: {err}", file=sys.stderr)
        return 1
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
