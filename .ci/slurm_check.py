"""Checks of the CI SLURM stage (.ci/slurm.sh), from `scontrol -o show job` on stdin.

Every compute job went through sbatch (features, train, evaluate and robustness in the `gpu` partition with a GPU, faces in
the cluster's default partition), no tiny or download rule did, the cancelled training job was
resubmitted with twice its memory and completed, and the metrics and robustness results equal the local run's byte for byte.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

DEFAULT_PARTITION = "main"
COMPUTE = {"faces", "features", "train", "evaluate", "robustness"}
GPU_RULES = {"features", "train", "evaluate", "robustness"}


def parse_jobs(text: str) -> list[dict]:
    jobs = []
    for line in text.splitlines():
        if line.strip():
            fields = dict(re.findall(r"(\w+)=(\S*)", line))
            rule = re.match(r"rule_([a-z_]+?)(?:_wildcards_|$)", fields.get("Comment", ""))
            fields["rule"] = rule.group(1) if rule else None
            jobs.append(fields)
    return jobs


def gpus(job: dict) -> int:
    m = re.search(r"gres/gpu(?::\w+)?=(\d+)", job.get("TRES", "")) or re.search(r"gpu(?::\w+)?:(\d+)", job.get("TresPerJob", ""))
    return int(m.group(1)) if m else 0


def mem_mb(job: dict) -> int:
    m = re.search(r"mem=(\d+)([MG])", job.get("TRES", ""))
    return int(m.group(1)) * (1024 if m.group(2) == "G" else 1) if m else 0


def check(jobs: list[dict], cancelled: str, local: Path, slurm: Path, results: str) -> list[str]:
    errors = []
    by_rule = defaultdict(list)
    for job in jobs:
        by_rule[job["rule"]].append(job)
    if set(by_rule) != COMPUTE:
        errors.append(f"submitted rules {sorted(map(str, by_rule))}, expected exactly {sorted(COMPUTE)}")
    for rule, group in by_rule.items():
        for job in group:
            want = "gpu" if rule in GPU_RULES else DEFAULT_PARTITION
            if job.get("Partition") != want:
                errors.append(f"job {job['JobId']} ({rule}) in partition {job.get('Partition')}, expected {want}")
            if (gpus(job) >= 1) != (rule in GPU_RULES):
                errors.append(f"job {job['JobId']} ({rule}) has {gpus(job)} GPUs")
            if job["JobId"] != cancelled and job.get("JobState") != "COMPLETED":
                errors.append(f"job {job['JobId']} ({rule}) ended {job.get('JobState')}")
    first = next((j for j in jobs if j["JobId"] == cancelled), None)
    if first is None or first.get("JobState") != "CANCELLED" or first["rule"] != "train":
        errors.append(f"cancelled train job {cancelled} not found as CANCELLED")
    else:
        retries = [j for j in jobs if j["Comment"] == first["Comment"] and int(j["JobId"]) > int(cancelled)]
        if [j.get("JobState") for j in retries] != ["COMPLETED"]:
            errors.append(f"cancelled job {cancelled} was not resubmitted once: {[j['JobId'] for j in retries]}")
        elif mem_mb(retries[0]) != 2 * mem_mb(first):
            errors.append(f"retry asked for {mem_mb(retries[0])} MB after {mem_mb(first)} MB, expected twice")
    completed = {r: sum(j.get("JobState") == "COMPLETED" for j in g) for r, g in by_rule.items()}
    print("jobs per rule (completed):", completed, "; cancelled and resubmitted:", cancelled)
    for name in ("metrics.json", "robustness.json"):
        compared = sorted((local / results).glob(f"eval/*/*/{name}"))
        for path in compared:
            other = slurm / path.relative_to(local)
            if not other.exists() or other.read_bytes() != path.read_bytes():
                errors.append(f"{path.relative_to(local)} differs between the local and the SLURM run")
        if not compared:
            errors.append(f"the local run wrote no {name}")
        print(f"{name} compared with the local run: {len(compared)} files")
    return errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cancelled", required=True, help="id of the job the stage cancelled")
    ap.add_argument("--local", type=Path, required=True)
    ap.add_argument("--slurm", type=Path, required=True)
    ap.add_argument("--results", required=True)
    a = ap.parse_args()
    errors = check(parse_jobs(sys.stdin.read()), a.cancelled, a.local, a.slurm, a.results)
    for e in errors:
        print("FAIL:", e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
