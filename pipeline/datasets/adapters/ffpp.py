"""FaceForensics++ (``ffpp``: DF, F2F, FS, NT, FaceShifter) and DeepFakeDetection (``dfd``).

Official tree: ``original_sequences/{youtube,actors}/c23/videos``,
``manipulated_sequences/<Method>/c23/videos``; Kaggle mirror ``FaceForensics++_C23/<folder>/*.mp4``
(no actor reals). The root may be the tree itself, the mirror's folder, or a folder above either.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterator

from pipeline.datasets.adapters.base import FAKE, REAL, DatasetLayoutError, Protocol, listing, media, register, row

log = logging.getLogger("pipeline.index")

FFPP_FOLDERS = {  # folder name in both layouts -> short method name
    "original": "real",
    "Deepfakes": "DF",
    "Face2Face": "F2F",
    "FaceSwap": "FS",
    "NeuralTextures": "NT",
    "FaceShifter": "FSh",
    "DeepFakeDetection": "DFD",
}
MIRROR = "FaceForensics++_C23"


@lru_cache(maxsize=1)
def ffpp_pairs() -> dict[str, list[tuple[str, str]]]:
    """The official pairs of each split, shipped with the package."""
    return {split: [tuple(p) for p in json.loads(resources.files("pipeline").joinpath(
        "assets", "ffpp_splits", f"{split}.json").read_text())] for split in ("train", "val", "test")}


def ffpp_splits() -> dict[str, str]:
    """Real video id -> split, from the official split files."""
    return {v: split for split, pairs in ffpp_pairs().items() for pair in pairs for v in pair}


def tree_root(root: Path, compression: str) -> Path | None:
    """The folder holding ``original_sequences``/``manipulated_sequences`` (root or below)."""
    for base in [root, *sorted(root.glob("*/")), *sorted(root.glob("*/*/"))]:
        if (base / "original_sequences").is_dir() or (base / "manipulated_sequences").is_dir():
            return base
    return None


def mirror_root(root: Path) -> Path | None:
    if root.name == MIRROR or (root / "original").is_dir() and (root / "Deepfakes").is_dir():
        return root
    found = sorted(root.glob(f"**/{MIRROR}"))
    return found[0] if found else None


def ffpp_folders(root: Path, compression: str = "c23") -> dict[str, Path]:
    """Method -> folder of its videos, for the official tree or the Kaggle mirror."""
    tree = tree_root(root, compression)
    if tree is not None:
        out = {"real": tree / "original_sequences" / "youtube" / compression / "videos",
               "DFD-real": tree / "original_sequences" / "actors" / compression / "videos"}
        for folder, method in FFPP_FOLDERS.items():
            if method != "real":
                out[method] = tree / "manipulated_sequences" / folder / compression / "videos"
        return out
    mirror = mirror_root(root)
    if mirror is not None:
        return {method: mirror / folder for folder, method in FFPP_FOLDERS.items()}
    return {}


def ffpp_protocol(options: dict) -> list[Protocol]:
    """FF++ test: 140 reals and, per fake method, 140 fakes (both A_B and B_A of the 70 pairs)."""
    methods = options.get("methods", ["real", "DF", "F2F", "FS", "NT"])
    pairs = ffpp_pairs()["test"]
    fakes = [m for m in methods if m != "real"]
    ids = {f"real/{v}" for pair in pairs for v in pair} if "real" in methods else set()
    ids |= {f"{m}/{a}_{b}" for m in fakes for a, b in pairs} | {f"{m}/{b}_{a}" for m in fakes for a, b in pairs}
    name = "FF++ " + "+".join(fakes) if fakes else "FF++ reals"
    return [Protocol(f"{name} test", "test", 140 if "real" in methods else 0, 140 * len(fakes), ids=frozenset(ids))]


@register("ffpp", protocol=ffpp_protocol)
def adapter_ffpp(dataset: str, root: Path, options: dict) -> Iterator[dict]:
    """FaceForensics++ c23 with the official splits (pair [A, B] -> A, B, A_B, B_A)."""
    methods = options.get("methods", ["real", "DF", "F2F", "FS", "NT"])
    folders = ffpp_folders(root, options.get("compression", "c23"))
    found = {m: media(p, options) for m, p in folders.items()}
    found = {m: v for m, v in found.items() if v}
    if not found:
        raise DatasetLayoutError(
            f"dataset {dataset!r}: no FaceForensics++ videos under {root}. Expected the official tree "
            "(original_sequences/youtube/c23/videos, manipulated_sequences/<Method>/c23/videos) or the "
            f"Kaggle mirror ({MIRROR}/<original|Deepfakes|Face2Face|FaceSwap|NeuralTextures|FaceShifter>/*.mp4); "
            f"{listing(root)}")
    absent = [m for m in methods if m not in found]
    if absent:
        where = "; ".join(f"{m}: {folders.get(m, '(no folder for this method)')}" for m in absent)
        raise DatasetLayoutError(f"dataset {dataset!r}: no videos for methods {absent} under {root}; expected "
                                 f"*.mp4 in {where} (found methods: {sorted(found)}). Download the missing "
                                 f"folder, or drop the method from datasets.{dataset}.options.methods")
    split_of = ffpp_splits()
    for method in methods:
        for stem, path in found[method].items():
            target = stem.split("_")[0]
            if target not in split_of:
                log.warning("ffpp: %s is not in the official splits; skipped", path)
            elif method == "real":
                yield row(f"real/{stem}", path, REAL, split=split_of[target])
            else:  # fake A_B keeps the frames and background of real video A
                yield row(f"{method}/{stem}", path, FAKE, method, f"real/{target}", split_of[target]) | mask_of(path)


def mask_of(path) -> dict:
    """``mask_path`` of a fake in the official tree: ``<Method>/masks/videos/<name>`` beside
    ``<Method>/<compression>/videos/<name>`` (the faces stage then crops the face under the mask);
    none for the Kaggle mirror, which ships no masks."""
    path = Path(path)
    mask = path.parents[2] / "masks" / "videos" / path.name if len(path.parents) > 2 else None
    return {"mask_path": str(mask)} if mask is not None and mask.is_file() else {}


def dfd_protocol(options: dict) -> list[Protocol]:
    return [Protocol("DFD test", "test", 363, 3068)]


def dfd_real_of(stem: str) -> str | None:
    """``01_02__meeting_serious__YVGY8LOK`` (target 01, scene meeting_serious) -> ``01__meeting_serious``."""
    parts = stem.split("__")
    return f"real/{parts[0].split('_')[0]}__{parts[1]}" if len(parts) >= 2 else None


@register("dfd", protocol=dfd_protocol)
def adapter_dfd(dataset: str, root: Path, options: dict) -> Iterator[dict]:
    """DeepFakeDetection: actor reals and their fakes, every video in the test split."""
    folders = ffpp_folders(root, options.get("compression", "c23"))
    fakes = media(folders["DFD"], options) if folders else {}
    reals_dir = Path(options["reals"]) if "reals" in options else folders.get("DFD-real")
    reals = media(reals_dir, options) if reals_dir else {}
    if not fakes:
        raise DatasetLayoutError(
            f"dataset {dataset!r}: no DeepFakeDetection fakes under {root}; expected "
            "manipulated_sequences/DeepFakeDetection/c23/videos (official tree) or "
            f"{MIRROR}/DeepFakeDetection (Kaggle mirror); {listing(root)}")
    if not reals:
        raise DatasetLayoutError(
            f"dataset {dataset!r}: found {len(fakes)} DeepFakeDetection fakes but no actor reals "
            f"(looked in {reals_dir or 'original_sequences/actors/c23/videos'}). Without reals DFD cannot be "
            "scored. The Kaggle mirror does not include them: get them with the FaceForensics++ download "
            "script (-d DeepFakeDetection_original -c c23) into original_sequences/actors/c23/videos, or set "
            "options.reals to the folder holding the 363 actor videos (<actor>__<scene>.mp4)")
    for stem, path in reals.items():
        yield row(f"real/{stem}", path, REAL)
    for stem, path in fakes.items():
        source = dfd_real_of(stem)
        yield row(f"DFD/{stem}", path, FAKE, "DFD", source if source and source[5:] in reals else None) | mask_of(path)
