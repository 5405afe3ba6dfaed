"""Face-extraction throughput: one chunk with 1 worker vs N workers, in the same run.

    python benchmarks/faces_workers.py [--videos 16] [--frames 8] [--workers 2] [--repeats 2]

Generates demo videos (offline), runs ``pipeline.faces.extract_chunk`` on them with 1 and with N
worker processes, alternating the two variants, checks that both write byte-identical shards, and
prints a small table: seconds per variant (best of the repeats), frames per second, and the
speed-up ratio, with the CPU it ran on. Absolute times on shared machines are noisy; the ratio of
the two variants measured side by side is the number to compare.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import tempfile
import time
from pathlib import Path

import polars as pl


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=16, help="videos in the chunk (half real, half fake)")
    ap.add_argument("--frames", type=int, default=8, help="frames sampled per video")
    ap.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 2))
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args(argv)

    from pipeline.fetch.demo import make_demo_dataset
    from pipeline.faces import extract_chunk
    from pipeline.datasets.index import list_videos, probe_videos

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_demo_dataset(tmp / "data", seed=0, counts={"test": a.videos // 2}, frames=24)
        videos = list_videos("bench", "csv", tmp / "data", {})
        videos = videos.with_columns(pl.DataFrame(probe_videos(videos["path"].to_list())))
        times: dict[int, list[float]] = {1: [], a.workers: []}
        digests = {}
        for _ in range(a.repeats):
            for workers in times:
                tar, table = tmp / f"w{workers}.tar", tmp / f"w{workers}.parquet"
                t0 = time.perf_counter()
                stats = extract_chunk(videos, tar, table, num_frames=a.frames, threads=workers)
                times[workers].append(time.perf_counter() - t0)
                digests[workers] = hashlib.sha256(tar.read_bytes()).hexdigest()
        assert len(set(digests.values())) == 1, "1 and N workers wrote different shards"

    frames = stats["frames_sampled"]
    best = {w: min(t) for w, t in times.items()}
    print(f"device: {cpu_name()}, {os.cpu_count()} logical CPUs")
    print(f"chunk: {a.videos} videos x {a.frames} frames = {frames} frames ({stats['crops']} crops), "
          f"dlib, default detection passes, 256-px frames; best of {a.repeats}")
    print(f"{'workers':>8} {'seconds':>9} {'frames/s':>9}")
    for w, s in best.items():
        print(f"{w:>8} {s:>9.2f} {frames / s:>9.1f}")
    print(f"speed-up {a.workers} vs 1 worker: {best[1] / best[a.workers]:.2f}x (identical shards)")


if __name__ == "__main__":
    main()
