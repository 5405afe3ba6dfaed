#!/usr/bin/env bash
# CI SLURM stage, bulk scoring: run at the end of .ci/slurm.sh (`bash .ci/slurm_predict.sh`), on the
# cluster it started (SLURM_CONF exported) and in the folder where its demo ran through profiles/slurm
# ($CI_SLURM_STATE/slurm, with the executor plugin's venv $CI_SLURM_STATE/venv).
#
# A predict set (the demo_shift videos, one of them unreadable, by the demo's LNCLIP-DF) is scored through
# the unedited profiles/slurm; checks: each chunk went through sbatch (rule predict_chunk, the default
# partition, completed) and nothing else did, results/demo/predict/ci.parquet equals `python -m pipeline
# predict` run locally on the same files, and a second plan has nothing to do.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
STATE=${CI_SLURM_STATE:-/tmp/ci-slurm}
WORK=$STATE/slurm
SMK=("$STATE/venv/bin/python" -m snakemake)
SITE=(--slurm-status-command squeue)  # as slurm.sh: this cluster has no accounting database
CONFIGS=(config/demo.yaml slurm_demo.yaml predict_ci.yaml)
TARGET=results/demo/predict/ci.parquet
say() { echo "[slurm-ci predict] $*"; }

[ -n "${SLURM_CONF:-}" ] && [ -f "$WORK/results/demo/models/lnclip_df/adapter.safetensors" ] \
    || { say "run by .ci/slurm.sh after its demo on SLURM (no SLURM_CONF or no trained demo in $WORK)"; exit 1; }
cd "$WORK"
cat >predict_ci.yaml <<'EOF'
predict:
  ci: {folders: [resources/datasets/demo_shift], model: lnclip_df, chunk_size: 4}
EOF
last=$( (scontrol -o show job | grep -o 'JobId=[0-9]*' || true) | cut -d= -f2 | sort -n | tail -n1)  # earlier jobs
t=$SECONDS
"${SMK[@]}" --workflow-profile profiles/slurm "${SITE[@]}" "$TARGET" --configfile "${CONFIGS[@]}" \
    >"$STATE/log/snakemake-predict.log" 2>&1 || { tail -n 60 "$STATE/log/snakemake-predict.log"; say "FAILED"; exit 1; }
say "scored through SLURM in $((SECONDS - t)) s"

# predict itself, locally, with the run's config (the three files merged as Snakemake merges them)
python - "${CONFIGS[@]}" <<'EOF'
import sys, yaml
from pipeline.core.config import deep_merge, load
merged = {}
for path in sys.argv[1:]:
    merged = deep_merge(merged, load(path))
yaml.safe_dump(merged, open("predict_ci_merged.yaml", "w"))
EOF
python -m pipeline predict --model results/demo/models/lnclip_df --config predict_ci_merged.yaml \
    resources/datasets/demo_shift --out predict_ci_expected.csv >/dev/null 2>&1 || true  # 1: a file is unreadable

scontrol -o show job >"$STATE/log/jobs-predict.txt"
python - "${last:-0}" "$REPO" "$STATE/log/jobs-predict.txt" "$TARGET" <<'EOF'
import csv, sys
from pathlib import Path
import polars as pl
sys.path.insert(0, f"{sys.argv[2]}/.ci")
from slurm_check import parse_jobs

jobs = [j for j in parse_jobs(Path(sys.argv[3]).read_text()) if int(j["JobId"]) > int(sys.argv[1])]
table = pl.read_parquet(sys.argv[4])
with open("predict_ci_expected.csv", newline="") as fh:
    expected = {r["path"]: r for r in csv.DictReader(fh)}
errors = []
if not jobs or {j["rule"] for j in jobs} != {"predict_chunk"}:
    errors.append(f"submitted rules {sorted({str(j['rule']) for j in jobs})}, expected only predict_chunk")
for j in jobs:
    if j.get("JobState") != "COMPLETED" or j.get("Partition") != "main":
        errors.append(f"job {j['JobId']} ended {j.get('JobState')} in partition {j.get('Partition')}")
chunks = -(-len(expected) // 4)
if len(jobs) != chunks:
    errors.append(f"{len(jobs)} predict_chunk jobs for {len(expected)} files in chunks of 4, expected {chunks}")
got = {r["path"]: r for r in table.iter_rows(named=True)}
if got.keys() != expected.keys():
    errors.append(f"files differ: {sorted(got.keys() ^ expected.keys())}")
for path in sorted(got.keys() & expected.keys()):
    g, e = got[path], expected[path]
    same = (g["status"], g["message"], str(g["frames_scored"]), str(g["frames_sampled"])) == (
        e["status"], e["message"], e["frames_scored"], e["frames_sampled"])
    p = None if not e["p_fake"] else float(e["p_fake"])
    if not same or (p is None) != (g["p_fake"] is None) or (p is not None and abs(g["p_fake"] - p) > 1e-6):
        errors.append(f"{path}: {g} differs from predict's {e}")
if table.filter(pl.col("status") == "unreadable").height != 1:
    errors.append("the unreadable demo_shift video is not reported as unreadable")
print(f"[slurm-ci predict] {len(jobs)} jobs through sbatch; {len(got)} files compared with predict")
for e in errors:
    print("FAIL:", e)
sys.exit(1 if errors else 0)
EOF
out=$("${SMK[@]}" --workflow-profile profiles/slurm "${SITE[@]}" -n "$TARGET" --configfile "${CONFIGS[@]}" 2>&1)
grep -q "Nothing to be done" <<<"$out" || { echo "$out" | tail -n 30; say "a second run would redo work"; exit 1; }
say "passed"
