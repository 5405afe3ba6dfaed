"""DFDM (``dfdm``): the fakes, one folder per model, against the reals of another dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from .base import FAKE, REAL, DatasetLayoutError, Protocol, media, register, row


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
