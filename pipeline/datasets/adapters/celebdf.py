"""Celeb-DF v2 (``celebdf``) and Celeb-DF++ (``celebdf_pp``).

Both: ``Celeb-real/``, ``YouTube-real/``, ``Celeb-synthesis/`` and ``List_of_testing_videos.txt``
whose lines read ``<flag> <folder>/<file>.mp4`` with flag **1 = real** (the opposite of ours).
Celeb-DF++ nests its fakes as ``Celeb-synthesis/<family>/<method>/``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

from pipeline.datasets.adapters.base import FAKE, REAL, DatasetLayoutError, Protocol, listing, media, media_path, register, row

REAL_FOLDERS = ("Celeb-real", "YouTube-real")
FAKE_FOLDER = "Celeb-synthesis"
LIST = "List_of_testing_videos.txt"
log = logging.getLogger("pipeline.index")
# Celeb-DF++ fakes per method in its test list: face swap 8 x 200, reenactment 7 x 200, talking face 7 x 300
CDFPP_FAMILIES = {
    "FaceSwap": ("Celeb-DF", "BlendFace", "GHOST", "HifiFace", "InSwapper", "MobileFaceSwap", "SimSwap", "UniFace"),
    "FaceReenact": ("DaGAN", "FSRT", "HyperReenact", "LIA", "LivePortrait", "MCNET", "TPSMM"),
    "TalkingFace": ("AniTalker", "EchoMimic", "EDTalk", "FLOAT", "IP_LAP", "Real3DPortrait", "SadTalker"),
}
CDFPP_PER_METHOD = {"FaceSwap": 200, "FaceReenact": 200, "TalkingFace": 300}


def dataset_root(dataset: str, root: Path, options: dict) -> Path:
    """The folder holding the test list (the root or a folder below it)."""
    name = options.get("test_list", LIST)
    for base in [root, *sorted(root.glob("*/")), *sorted(root.glob("*/*/"))]:
        if (base / name).is_file():
            return base
    raise DatasetLayoutError(f"dataset {dataset!r}: expected {name} (the official test list) beside the "
                             f"folders {', '.join(REAL_FOLDERS + (FAKE_FOLDER,))} in {root} or a folder below "
                             f"it; {listing(root)}")


def read_test_list(path: Path) -> dict[str, int]:
    """Relative path -> our label (0 real) from the official list (1 = real there)."""
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in ("0", "1"):
            raise DatasetLayoutError(f"{path} line {n}: expected '<0|1> <folder>/<file>.mp4' (1 = real), "
                                     f"got {line!r}")
        out[parts[1]] = REAL if parts[0] == "1" else FAKE
    return out


def video_id(rel: str) -> str:
    return Path(rel).with_suffix("").as_posix()


def celeb_source(stem: str) -> str | None:
    """``idX_idY_NNNN`` is made from ``Celeb-real/idX_NNNN``."""
    parts = stem.split("_")
    return f"Celeb-real/{parts[0]}_{parts[-1]}" if len(parts) == 3 else None


def celebdf_protocol(options: dict) -> list[Protocol]:
    return [Protocol("CDFv2 test", "test", 178, 340)]


def listed_rows(base: Path, test: dict[str, int], options: dict, method_of) -> Iterator[dict]:
    for folder in sorted({rel.rsplit("/", 1)[0] for rel in test}):
        if not (base / folder).is_dir():
            n = sum(rel.startswith(folder + "/") for rel in test)
            log.warning("the test list %s names %d videos in %s, which is missing: they are indexed as 'file not "
                        "found' (download or unpack that folder and run again)",
                        base / options.get("test_list", LIST), n, base / folder)
    for rel, label in sorted(test.items()):
        folder, name = rel.rsplit("/", 1)
        vid = video_id(rel)
        source = None if label == REAL else celeb_source(Path(name).stem)
        yield row(vid, media_path(base / folder, name, options), label,
                  None if label == REAL else method_of(folder), source)


@register("celebdf", protocol=celebdf_protocol)
def adapter_celebdf(dataset: str, root: Path, options: dict) -> Iterator[dict]:
    """Celeb-DF v2: the 518 videos of the official test list (options.splits adds the rest as train)."""
    base = dataset_root(dataset, root, options)
    test = read_test_list(base / options.get("test_list", LIST))
    splits = options.get("splits", ["test"])
    if "test" in splits:
        yield from listed_rows(base, test, options, lambda folder: FAKE_FOLDER)
    if "train" in splits:  # everything not in the test list
        listed = {video_id(rel) for rel in test}
        for folder in REAL_FOLDERS + (FAKE_FOLDER,):
            for stem, path in media(base / folder, options).items():
                if f"{folder}/{stem}" in listed:
                    continue
                label = FAKE if folder == FAKE_FOLDER else REAL
                yield row(f"{folder}/{stem}", path, label, None if label == REAL else folder,
                          celeb_source(stem) if label == FAKE else None, "train")


def celebdf_pp_protocol(options: dict) -> list[Protocol]:
    fakes = sum(len(m) * CDFPP_PER_METHOD[f] for f, m in CDFPP_FAMILIES.items())
    return [Protocol("CDF++ test", "test", 178, fakes)]


@register("celebdf_pp", protocol=celebdf_pp_protocol)
def adapter_celebdf_pp(dataset: str, root: Path, options: dict) -> Iterator[dict]:
    """Celeb-DF++: its test list; method = the folder under ``Celeb-synthesis/<family>/``."""
    base = dataset_root(dataset, root, options)
    test = read_test_list(base / options.get("test_list", LIST))
    for rel, label in test.items():
        folder = rel.rsplit("/", 1)[0]
        if label == FAKE and folder.count("/") != 2:
            raise DatasetLayoutError(f"dataset {dataset!r}: {base / LIST} lists {rel!r}; Celeb-DF++ fakes are "
                                     f"expected under {FAKE_FOLDER}/<family>/<method>/ (families: "
                                     f"{', '.join(CDFPP_FAMILIES)}); is this Celeb-DF v2 (adapter: celebdf)?")
    yield from listed_rows(base, test, options, lambda folder: folder.split("/")[-1])
