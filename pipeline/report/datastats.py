"""Data statistics per dataset (from each manifest's ``stats.json``), laid out so the totals add up.

A video that could not be decoded at all has one manifest row without a frame index (``decode_error``
or ``video_error``): it is counted as a video, never as a sampled frame. Every sampled frame either
has a face crop or a frame-level reason, so ``frames sampled = faces found + frames without a face``;
a stats file where that does not hold is shown with the difference.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.core.tables import STATUS_DECODE_ERROR, STATUS_VIDEO_ERROR
from .util import DASH, finite, inline_counts, num, read_json

VIDEO_LEVEL = (STATUS_DECODE_ERROR, STATUS_VIDEO_ERROR)
STD_FAILURES = ("no_face", "read_failed")
MAX_CHECKSUM_ROWS = 500  # per dataset or weights entry


def _load(ds: dict) -> tuple[dict, str | None]:
    path = ds.get("stats_path")
    if path is None:
        return {}, None
    try:
        stats = read_json(path, "stats.json")
    except FileNotFoundError:
        return {}, str(path)
    return (stats if isinstance(stats, dict) else {}), None


def _dict(st: dict, key: str) -> dict:
    return st.get(key) if isinstance(st.get(key), dict) else {}


def _reasons(all_stats: list[dict]) -> list[str]:
    reasons = list(STD_FAILURES)
    for st in all_stats:
        reasons += [r for r in _dict(st, "failures") if r not in reasons and r not in VIDEO_LEVEL]
    return reasons


def _balance(frames, faces, frame_fails: dict) -> str | None:
    """None when faces + frame-level failures = frames sampled, else the mismatch in words."""
    if not (finite(frames) and finite(faces)):
        return None
    total = faces + sum(v for v in frame_fails.values() if finite(v))
    return None if total == frames else f"faces + frames without a face = {num(total)}, not {num(frames)}"


def _row(ds: dict, st: dict, missing: str | None, reasons: list[str]) -> dict:
    fails = _dict(st, "failures")
    frame_fails = {r: v for r, v in fails.items() if r not in VIDEO_LEVEL}
    frames, faces = st.get("frames_sampled"), st.get("faces")
    by_label = _dict(st, "videos_by_label")
    return {
        "name": str(ds.get("name") or st.get("dataset") or "?"), "missing": missing,
        "videos": num(st.get("videos")), "real": num(by_label.get("real")), "fake": num(by_label.get("fake")),
        "by_split": inline_counts(st.get("videos_by_split")), "by_method": inline_counts(st.get("videos_by_method")),
        "unreadable": num(st.get("unreadable_videos")),
        "not_decoded": num(sum(fails.get(r, 0) for r in VIDEO_LEVEL)) if "failures" in st else DASH,
        "frames": num(frames), "faces": num(faces),
        "face_rate": f"{100.0 * faces / frames:.1f} %" if finite(frames) and finite(faces) and frames else DASH,
        "failures": [num(frame_fails.get(r)) if r in frame_fails else DASH for r in reasons],
        "without_crops": num(st.get("videos_without_crops")), "mismatch": _balance(frames, faces, frame_fails),
        "incomplete": [c["message"] for c in st.get("completeness") or [] if not c.get("complete")],
        "problems": _problems(st), "problems_total": st.get("problem_videos_total") or 0,
    }


def _problems(st: dict) -> list[dict]:
    """The listed videos with frames (or the whole video) without a crop, each with its reasons."""
    out = []
    for p in st.get("problem_videos") or []:
        if isinstance(p, dict) and isinstance(p.get("reasons"), dict):
            reasons = ", ".join(f"{r} ({num(n)})" for r, n in p["reasons"].items())
            out.append({"video_id": str(p.get("video_id")), "crops": num(p.get("crops")), "reasons": reasons,
                        "error": p.get("error") or ""})
    return out


def dataset_rows(datasets: list[dict]) -> tuple[list[dict], list[str]]:
    """Table rows (one per dataset) and the frame-level failure reasons that are its columns."""
    loaded = [(ds, *_load(ds)) for ds in datasets]
    reasons = _reasons([st for _, st, _ in loaded])
    return [_row(ds, st, missing, reasons) for ds, st, missing in loaded], reasons


def _sums_file(p: Path) -> list[tuple[str, str]]:
    rows = []
    for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2:
            rows.append((parts[1].lstrip("*"), parts[0]))
        elif parts:
            rows.append((parts[0], ""))
    return rows


def _walk(obj, prefix: str, rows: list) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _walk(v, f"{prefix}/{k}" if prefix else str(k), rows)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _walk(v, f"{prefix}[{i}]", rows)
    else:
        rows.append((prefix or "(value)", str(obj)))


def checksum_rows(checksums) -> tuple[list[tuple[str, str]], int]:
    """(item, checksum) rows from a dict or a file (JSON, or ``sha256sum``-style text), and how many
    more there are beyond :data:`MAX_CHECKSUM_ROWS`."""
    rows: list[tuple[str, str]] = []
    if isinstance(checksums, (str, Path)):
        p = Path(checksums)
        if not p.exists():
            return [("(file missing)", str(p))], 0
        try:
            checksums = json.loads(p.read_text(encoding="utf-8", errors="replace"))
        except json.JSONDecodeError:
            rows = _sums_file(p)
            checksums = None
    if checksums is not None:
        _walk(checksums, "", rows)
    return rows[:MAX_CHECKSUM_ROWS], max(0, len(rows) - MAX_CHECKSUM_ROWS)
