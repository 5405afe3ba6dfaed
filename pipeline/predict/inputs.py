"""The files behind the paths given to ``predict``: videos, images, and folders of either."""

from __future__ import annotations

from pathlib import Path

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv",
                              ".3gp", ".ts"})
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})


def kind_of(path: Path) -> str | None:
    """``video``, ``image`` or None (by extension, case-insensitive)."""
    ext = path.suffix.lower()
    return "video" if ext in VIDEO_EXTENSIONS else "image" if ext in IMAGE_EXTENSIONS else None


def expand_inputs(paths: list[str | Path]) -> tuple[list[tuple[Path, str]], list[tuple[Path, str]]]:
    """``(inputs, problems)``: ``inputs`` are ``(file, kind)`` in the given order, each folder replaced by
    the videos and images under it (recursively, sorted, hidden files skipped); ``problems`` are
    ``(path, message)`` for a path that does not exist, a file of another type, or a folder holding
    no video or image. A file named twice is kept once."""
    inputs: list[tuple[Path, str]] = []
    problems: list[tuple[Path, str]] = []
    seen: set[Path] = set()

    def add(path: Path, kind: str) -> None:
        if path.resolve() not in seen:
            seen.add(path.resolve())
            inputs.append((path, kind))

    for given in map(Path, paths):
        if given.is_dir():
            found = [p for p in sorted(given.rglob("*")) if p.is_file() and kind_of(p)
                     and not any(part.startswith(".") for part in p.relative_to(given).parts)]
            if not found:
                problems.append((given, "folder holds no video or image file "
                                        f"({', '.join(sorted(VIDEO_EXTENSIONS | IMAGE_EXTENSIONS))})"))
            for p in found:
                add(p, kind_of(p))
        elif given.is_file():
            kind = kind_of(given)
            if kind is None:
                problems.append((given, f"not a video or image file (extension {given.suffix or 'none'!r})"))
            else:
                add(given, kind)
        else:
            problems.append((given, "no such file or folder"))
    return inputs, problems
