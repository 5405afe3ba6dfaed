#!/usr/bin/env bash
# CI stage: the demo on a real single-host SLURM, through the unedited profiles/slurm.
#
# Installs (Debian: slurm-wlm, munge) and starts munged, slurmctld and slurmd with a default
# partition `main` and a `gpu` partition (two fake GPUs), one node declaring 16 GB. Runs the demo
# locally and through SLURM (the demo made smaller by .ci/slurm_demo.yaml), cancels one training job
# while it runs, then checks: every compute job
# went through sbatch (features, train, evaluate and robustness in `gpu` with a GPU, faces in the default partition), the
# tiny rules did not, the cancelled job was resubmitted and the run completed, metrics and robustness results equal the
# local run's, and a second run submits nothing; then a predict set is scored through the profile
# (.ci/slurm_predict.sh). Stops exactly the daemons it started, by PID.
# The SLURM executor plugin is installed into a venv of this stage only (CI_SLURM_STATE), layered
# on the test venv: with SLURM's client installed and no controller, importing it stalls every
# snakemake call by ~10 s, so the default environment never has it.
# Where the stage cannot run (no root, no apt-get, a SLURM of the machine's own) it skips with a note,
# except under CI=true, where that fails the run. Finished jobs stay in `scontrol` for 4 hours
# (MinJobAge), longer than any run, so the checks see every job.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
STATE=${CI_SLURM_STATE:-/tmp/ci-slurm}
HOST=$(hostname -s)
DEMO=(--configfile config/demo.yaml slurm_demo.yaml)  # after the target: --configfile takes several files
TARGET=results/demo/report.html
# This cluster has no accounting database: README "Running on a cluster" tells such sites to pass this.
SITE=(--slurm-status-command squeue)
T0=$SECONDS

say() { echo "[slurm-ci] $*"; }

# Where this stage cannot run: a note outside CI, a failure under CI=true (a green CI has run it).
cannot_run() {
    if [ "${CI:-}" = true ]; then say "FAILED: cannot run the SLURM stage under CI=true: $*"; exit 1; fi
    say "SKIPPED: $*"
    exit 0
}

# Daemons this script started (now or in an earlier, interrupted run): stop them by recorded PID.
stop_daemons() {
    local f pid name
    for name in slurmd slurmctld munged; do
        f=$STATE/pids/$name.pid
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        if [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$name" ]; then
            kill "$pid"
            for _ in $(seq 50); do [ -e "/proc/$pid" ] || break; sleep 0.2; done
            [ -e "/proc/$pid" ] && kill -9 "$pid"
            say "stopped $name (pid $pid)"
        fi
        rm -f "$f"
    done
}

show_logs() {
    say "---- slurmctld.log (tail) ----"; tail -n 40 "$STATE/log/slurmctld.log" 2>/dev/null || true
    say "---- slurmd.log (tail) ----"; tail -n 40 "$STATE/log/slurmd.log" 2>/dev/null || true
    say "---- jobs ----"; scontrol -o show job 2>/dev/null | cut -c1-400 || true
    say "---- snakemake on SLURM (tail) ----"; tail -n 60 "$STATE/log/snakemake-slurm.log" 2>/dev/null || true
    local f
    for f in $(find "$STATE/slurm/.snakemake/slurm_logs" -name '*.log' 2>/dev/null | head -n 20); do
        say "---- $f ----"; tail -n 30 "$f"
    done
}

finish() {
    local rc=$?
    set +e
    if [ -n "${SLURM_CONF:-}" ] && [ -f "$STATE/pids/slurmctld.pid" ]; then
        [ "$rc" != 0 ] && show_logs
        scancel --user "$(id -un)" 2>/dev/null  # jobs of this controller only
        for _ in $(seq 30); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 1; done
    fi
    stop_daemons
    [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$STATE/etc/slurm.conf" ] && rm -f /etc/slurm/slurm.conf
    if [ "$rc" = 0 ]; then rm -rf "$STATE"; say "passed in $((SECONDS - T0)) s"; else say "FAILED (state kept in $STATE)"; fi
    exit "$rc"
}

# ---- packages ----------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing slurm-wlm and munge"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
    else
        cannot_run "needs root and apt-get to install slurm-wlm and munge"
    fi
fi
[ "$(id -u)" = 0 ] || cannot_run "starting slurmd needs root"

stop_daemons  # left over from an interrupted run
rm -rf "$STATE"
mkdir -p "$STATE"/{pids,log,etc,ctld,spool,munge}
trap finish EXIT

# ---- munge (own socket, so an existing munged is left alone) ----------------------------------
KEY=/etc/munge/munge.key
[ -f "$KEY" ] || { mungekey --create --keyfile "$KEY"; chown munge: "$KEY"; chmod 600 "$KEY"; }
chown munge: "$STATE/munge"
SOCK=$STATE/munge/munge.socket
setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground --socket="$SOCK" \
    --key-file="$KEY" --pid-file="$STATE/munge/munged.pid" --seed-file="$STATE/munge/seed" \
    --log-file="$STATE/log/munged.log" >>"$STATE/log/munged.out" 2>&1 &
echo $! >"$STATE/pids/munged.pid"
for _ in $(seq 50); do munge -n --socket="$SOCK" 2>/dev/null | unmunge --socket="$SOCK" >/dev/null 2>&1 && break; sleep 0.2; done
munge -n --socket="$SOCK" | unmunge --socket="$SOCK" >/dev/null

# ---- slurm.conf: default partition `main`, partition `gpu`, 16 GB node with two fake GPUs ------
CPUS=$(( $(nproc) > 2 ? $(nproc) : 2 ))
export SLURM_CONF=$STATE/etc/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=ci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCK
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/ctld/slurmctld.pid
SlurmdPidFile=$STATE/spool/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
GresTypes=gpu
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
MinJobAge=14400
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=16000 Gres=gpu:fake:2 State=UNKNOWN
PartitionName=main Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$HOST MaxTime=INFINITE State=UP
EOF
# Job steps (srun inside a job) read the default path, not $SLURM_CONF: link it for this run only.
if [ -e /etc/slurm/slurm.conf ] && [ "$(readlink /etc/slurm/slurm.conf)" != "$SLURM_CONF" ]; then
    cannot_run "/etc/slurm/slurm.conf exists; this machine has a SLURM of its own"
fi
mkdir -p /etc/slurm && ln -sfn "$SLURM_CONF" /etc/slurm/slurm.conf
cat >"$STATE/etc/gres.conf" <<EOF
NodeName=$HOST Name=gpu Type=fake File=/dev/null
NodeName=$HOST Name=gpu Type=fake File=/dev/zero
EOF

/usr/sbin/slurmctld -D -i >>"$STATE/log/slurmctld.out" 2>&1 &
echo $! >"$STATE/pids/slurmctld.pid"
/usr/sbin/slurmd -D -N "$HOST" >>"$STATE/log/slurmd.out" 2>&1 &
echo $! >"$STATE/pids/slurmd.pid"
for _ in $(seq 60); do [ "$(sinfo -h -N -o %t 2>/dev/null | head -n1)" = idle ] && break; sleep 1; done
sinfo -N -o "%N %P %t %c %m %G"
[ "$(sinfo -h -N -o %t | head -n1)" = idle ] || { say "node did not come up"; exit 1; }
say "SLURM up after $((SECONDS - T0)) s"

# ---- the executor plugin, in this stage's own venv layered on the test venv --------------------
python3 -m venv "$STATE/venv"
SITE_PACKAGES=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "import site; site.addsitedir('$SITE_PACKAGES')" \
    >"$("$STATE/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/test_venv.pth"
PLUGIN=$(python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["slurm"])')
"$STATE/venv/bin/pip" install -q -c "$REPO/constraints.txt" "$PLUGIN" 2>"$STATE/log/pip.err" || { cat "$STATE/log/pip.err"; exit 1; }
SMK=("$STATE/venv/bin/python" -m snakemake)

# ---- the demo, locally and on SLURM ------------------------------------------------------------
copy() { mkdir -p "$1" && cp -r Snakefile config.yaml config workflow profiles envs pipeline .ci/slurm_demo.yaml "$1"/; }
copy "$STATE/local" && copy "$STATE/slurm"

t=$SECONDS
(cd "$STATE/local" && python -m snakemake "$TARGET" "${DEMO[@]}" --cores 2 >"$STATE/log/snakemake-local.log" 2>&1)
LOCAL_S=$((SECONDS - t))

t=$SECONDS
(cd "$STATE/slurm" && exec "${SMK[@]}" --workflow-profile profiles/slurm "${SITE[@]}" "$TARGET" "${DEMO[@]}" \
    >"$STATE/log/snakemake-slurm.log" 2>&1) &
RUN=$!
# Cancel the first training job a few seconds after it starts; the profile's retries resubmit it.
CANCELLED=
while kill -0 "$RUN" 2>/dev/null; do
    job=$(squeue -h -t RUNNING -o "%i %k %M" | awk '$2 ~ /^rule_train/ && $3 !~ /^0:0[0-2]$/ {print $1; exit}')
    if [ -n "$job" ]; then scancel "$job"; CANCELLED=$job; say "cancelled running train job $job"; break; fi
    sleep 0.5
done
wait "$RUN" || { say "snakemake on SLURM failed"; exit 1; }
SLURM_S=$((SECONDS - t))
[ -n "$CANCELLED" ] || { say "no train job was seen running, nothing was cancelled"; exit 1; }

# ---- checks ------------------------------------------------------------------------------------
scontrol -o show job | python .ci/slurm_check.py --cancelled "$CANCELLED" --local "$STATE/local" \
    --slurm "$STATE/slurm" --results results/demo
out=$(cd "$STATE/slurm" && "${SMK[@]}" --workflow-profile profiles/slurm "${SITE[@]}" -n "$TARGET" "${DEMO[@]}" 2>&1)
grep -q "Nothing to be done" <<<"$out" || { echo "$out" | tail -n 30; say "a second run would redo work"; exit 1; }
say "demo: local ${LOCAL_S} s, SLURM ${SLURM_S} s (with one cancelled and resubmitted job)"

# ---- bulk scoring (results/demo/predict/ci.parquet) through the same profile ---------------------
bash .ci/slurm_predict.sh
