"""How long Snakemake takes to plan the real protocol (config.yaml) at the real data's shape.

The downloads are faked as present and every job marked done, as in ``tests/test_reruns.py`` (FF++ c23's
5000 official videos, FaceShifter, Celeb-DF v2's 518 test videos, dealt into the config's chunks: about
100 faces jobs); the script times ``snakemake -n`` there, wall-clock and CPU (the planner's own process),
over a few runs, and prints one line with the machine's CPU.

    python benchmarks/plan.py [--runs 3]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from pipeline.core.provenance import cpu_model  # noqa: E402
from test_reruns import TARGET, fake_protocol  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = fake_protocol(REPO, Path(tmp))
        walls, cpus = [], []
        for _ in range(a.runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "2", TARGET], cwd=work,
                                 capture_output=True, text=True, check=True)
            walls.append(time.perf_counter() - t0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            assert "Nothing to be done" in out.stdout + out.stderr
    print(f"real protocol dry run ({cpu_model()}): wall {min(walls):.1f}-{max(walls):.1f} s, "
          f"CPU {min(cpus):.1f}-{max(cpus):.1f} s over {a.runs} runs")


if __name__ == "__main__":
    main()
