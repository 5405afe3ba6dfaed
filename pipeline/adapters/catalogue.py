"""The smaller benchmarks: FFIW-10K, DeepSpeak, UADFV, DFDM, FakeAVCeleb, and ``folder`` for any other.

All of them are test sets for cross-dataset evaluation; every video goes to ``test`` unless the
dataset ships a split (FFIW's released ``val`` is its test set; DeepSpeak's ``test``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from pipeline.adapters.base import (FAKE, REAL, DatasetLayoutError, Protocol, find_dir, listing, media,
                                    register, row)

REAL_WORDS = ("real", "original", "originals", "pristine", "genuine")
FAKE_WORDS = ("fake", "fakes", "deepfake", "deepfakes", "synthetic", "manipulated")


def ffiw_protocol(options: dict) -> list[Protocol]:
    return [Protocol("FFIW test", "test", 250, 250)]


@register("ffiw", protocol=ffiw_protocol)
def adapter_ffiw(dataset: str, root: Path, options: dict) -> Iterator[dict]:
    """FFIW-10K: ``source/`` real, ``target/`` fake; the released val split is the test set."""
    base = root if (root / "source").is_dir() else find_dir(root, ("FFIW10K-v1-release",))
    if base is None or not (base / "target").is_dir():
        raise DatasetLayoutError(f"dataset {dataset!r}: expected FFIW10K-v1-release/{{source,target}}/"
                                 f"{{train,val}}/videos/*.mp4 at or below {root}; {listing(root)}")
    ours = {"val": "test", "train": "train"}
    for theirs in ("val", "train"):
        if ours[theirs] not in options.get("splits", ["test"]):
            continue
        reals = media(base / "source" / theirs / "videos", options)
        for stem, path in reals.items():
            yield row(f"source/{theirs}/{stem}", path, REAL, split=ours[theirs])
        for stem, path in media(base / "target" / theirs / "videos", options).items():
            source = f"source/{theirs}/{stem}" if stem in reals else None
            yield row(f"target/{theirs}/{stem}", path, FAKE, "FFIW", source, ours[theirs])


def label_from_parts(parts: tuple[str, ...]) -> tuple[int, str] | None:
    """(label, method) from path components: a real-word folder, or a fake-word folder followed by
    the generator's folder (``fake/<generator>/...``)."""
    low = [p.lower() for p in parts]
    for i, p in enumerate(low):
        if p in REAL_WORDS:
            return REAL, "real"
        if p in FAKE_WORDS:
            return FAKE, parts[i + 1] if i + 1 < len(parts) - 1 else "fake"
    return None


@register("deepspeak")
def adapter_deepspeak(dataset: str, root: Path, options: dict) -> Iterator[dict]:
    """DeepSpeak v1/v1.1/v2: ``<split>/{real,fake/<generator>}/...``; a fake named
    ``<engine>--<source>-<target>--...`` takes the engine as its method."""
    splits = options.get("splits", ["test"])
    found = False
    for split in splits:
        folder = find_dir(root, (split,), depth=3)
        if folder is None:
            continue
        for rel, path in media(folder, options, recursive=True).items():
            rel = Path(rel)
            labelled = label_from_parts(rel.parts)
            if "--" in path.stem and (labelled is None or labelled == (FAKE, "fake")):
                labelled = FAKE, path.stem.split("--")[0]  # fakes are named <engine>--<source>-<target>--...
            if labelled is None:
                raise DatasetLayoutError(f"dataset {dataset!r}: cannot tell whether {path} is real or fake: "
                                         f"expected a folder named one of {REAL_WORDS} or {FAKE_WORDS}/<generator> "
                                         f"in its path below {folder}")
            found = True
            label, method = labelled
            yield row(f"{split}/{rel.as_posix()}", path, label, method, split=split)
    if not found:
        raise DatasetLayoutError(f"dataset {dataset!r}: no videos in split folders {splits} at or below {root} "
                                 f"(expected <split>/real/... and <split>/fake/<generator>/...); {listing(root)}")


def uadfv_protocol(options: dict) -> list[Protocol]:
    return [Protocol("UADFV test", "test", 49, 49)]


@register("uadfv", protocol=uadfv_protocol)
def adapter_uadfv(dataset: str, root: Path, options: dict) -> Iterator[dict]:
    """UADFV: ``real/NNNN.mp4`` and ``fake/NNNN_fake.mp4`` (paired by number), all test."""
    real_dir, fake_dir = find_dir(root, ("real",)), find_dir(root, ("fake",))
    if real_dir is None or fake_dir is None:
        raise DatasetLayoutError(f"dataset {dataset!r}: expected the folders real/ and fake/ at or below {root}; "
                                 f"{listing(root)}")
    reals = media(real_dir, options)
    for stem, path in reals.items():
        yield row(f"real/{stem}", path, REAL)
    for stem, path in media(fake_dir, options).items():
        base = stem.removesuffix("_fake")
        yield row(f"fake/{stem}", path, FAKE, "UADFV", f"real/{base}" if base in reals else None)


def dfdm_protocol(options: dict) -> list[Protocol]:
    return [Protocol("DFDM test", "test", fake=6450)]


@register("dfdm", protocol=dfdm_protocol)
def adapter_dfdm(dataset: str, root: Path, options: dict) -> Iterator[dict]:
    """DFDM: fakes ``id*_id*_<scene>_<model>.mp4`` per model folder; reals from a folder named
    ``*original*`` or from options.reals (e.g. Celeb-DF v2's Celeb-real, as in GenD)."""
    reals = media(Path(options["reals"]), options) if "reals" in options else {}
    n_fakes = 0
    for key, path in media(root, options, recursive=True).items():
        rel, stem = Path(key), path.stem
        if any("original" in p.lower() for p in rel.parts[:-1]):
            reals.setdefault(stem, path)
            continue
        model = rel.parts[0] if len(rel.parts) > 1 else stem.split("_")[-1]
        n_fakes += 1
        yield row(f"{model}/{stem}", path, FAKE, model)
    if not reals or not n_fakes:
        raise DatasetLayoutError(f"dataset {dataset!r}: found {n_fakes} fakes and {len(reals)} reals under {root}; "
                                 "DFDM needs both: its fakes (one folder per model) and reals in a folder named "
                                 "*original* or in options.reals (e.g. Celeb-DF-v2/Celeb-real)")
    for stem, path in reals.items():
        yield row(f"real/{stem}", path, REAL)


def fakeavceleb_protocol(options: dict) -> list[Protocol]:
    return [Protocol("FakeAVCeleb test", "test", real=500)]


@register("fakeavceleb", protocol=fakeavceleb_protocol)
def adapter_fakeavceleb(dataset: str, root: Path, options: dict) -> Iterator[dict]:
    """FakeAVCeleb: visual fakes (FakeVideo-*) against RealVideo-RealAudio; RealVideo-FakeAudio left out."""
    categories = options.get("fakes", ["FakeVideo-RealAudio", "FakeVideo-FakeAudio"])
    real_dir = find_dir(root, ("RealVideo-RealAudio",))
    if real_dir is None:
        raise DatasetLayoutError(f"dataset {dataset!r}: expected RealVideo-RealAudio/ and "
                                 f"{'/, '.join(categories)}/ at or below {root}; {listing(root)}")
    base = real_dir.parent
    for category in ["RealVideo-RealAudio", *categories]:
        label = REAL if category.startswith("RealVideo") else FAKE
        for rel, path in media(base / category, options, recursive=True).items():
            yield row(f"{category}/{rel}", path, label, None if label == REAL else category)


@register("folder")
def adapter_folder(dataset: str, root: Path, options: dict) -> Iterator[dict]:
    """Any dataset as ``<root>/<class>/.../<video>``: options.real names the real classes."""
    real = {n.lower() for n in options.get("real", ["real"])}
    classes = [p for p in sorted(root.iterdir()) if p.is_dir()]
    if not any(c.name.lower() in real for c in classes):
        raise DatasetLayoutError(f"dataset {dataset!r}: none of the folders in {root} is a real class "
                                 f"{sorted(real)} (set options.real to the names of the real folders); "
                                 f"{listing(root)}")
    for cls in classes:
        label = REAL if cls.name.lower() in real else FAKE
        for rel, path in media(cls, options, recursive=True).items():
            yield row(f"{cls.name}/{rel}", path, label, None if label == REAL else cls.name,
                      split=options.get("split", "test"))
