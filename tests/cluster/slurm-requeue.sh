#!/usr/bin/env bash
# tests/cluster/slurm-requeue.sh: the time-limit path. Once a job has written a
# checkpoint, send USR1 to its batch shell only (scancel --signal=USR1 --batch,
# what --signal=B:USR1@T does before the limit); the script forwards it, the
# trainer exits 75, the job requeues itself, restarts, resumes and finishes.
# Env: DPTRAIN (binary), REQUEUE_SCRIPTS (default "train-mpirun.sbatch train.sbatch"),
#      EPOCHS (default 2), TEST_TIMEOUT (s, default 900), KEEP=1 keeps the work dir.
set -euo pipefail
NAME=slurm-requeue LIMIT=${TEST_TIMEOUT:-900}
. "$(dirname "$0")/harness.sh"
EPOCHS=${EPOCHS:-2}
SCRIPTS=${REQUEUE_SCRIPTS:-train-mpirun.sbatch train.sbatch}
export SLURM_SCRATCH_DIR=$WORK/cluster SLURMCTLD_PORT=6927 SLURMD_PORT=6928
export SLURM_CONF=$SLURM_SCRATCH_DIR/slurm.conf
teardown() { "$ROOT/scripts/slurm-cluster" down; }
start=$SECONDS
"$ROOT/scripts/slurm-cluster" up >"$WORK/up.log" 2>&1 || fail "cluster up failed: $(tail -1 "$WORK/up.log")"

job_gone() { # ID: the job has left the queue for good
  local q
  q=$(squeue -h -j "$1" -o %T 2>&1) || { [[ $q == *"Invalid job id"* ]]; return; }
  [ -z "$q" ]
}
job_field() { scontrol show job "$1" | grep -o " $2=[^ ]*" | head -1 | cut -d= -f2; }

[ -n "${DPTRAIN:-}" ] && export DPTRAIN
declare -A name signalled
ids=()
for s in $SCRIPTS; do
  n=${s%.sbatch}
  id=$( cd "$ROOT" && RUN_DIR=$WORK/run-$n EPOCHS=$EPOCHS DPTRAIN_ARGS="--checkpoint-every 20 --threads 1" \
        sbatch --parsable -n 2 --time=20 -J "$n" -o "$WORK/%x-%j.out" "slurm/$s" ) || fail "sbatch $s failed"
  ids+=("$id"); name[$id]=$n
  echo "submitted $id ($s)"
done

# signal each job once its first checkpoint exists; wait until all have left the queue
while :; do
  left=0
  for id in "${ids[@]}"; do
    job_gone "$id" && continue
    left=1
    [ -z "${signalled[$id]:-}" ] || continue
    if [ "$(squeue -h -j "$id" -o %T 2>/dev/null)" = RUNNING ] &&
       compgen -G "$WORK/run-${name[$id]}/checkpoints/*" >/dev/null; then
      scancel --signal=USR1 --batch "$id" || fail "scancel --signal=USR1 --batch $id failed"
      signalled[$id]=$SECONDS
      echo "job $id (${name[$id]}): checkpoint seen, USR1 sent to the batch shell at +$((SECONDS - start)) s"
    fi
  done
  [ $left -eq 1 ] || break
  sleep 0.5
done

for id in "${ids[@]}"; do
  n=${name[$id]} out=$WORK/${name[$id]}-$id.out rd=$WORK/run-${name[$id]}
  state=$(job_field "$id" JobState) restarts=$(job_field "$id" Restarts)
  echo "job $id ($n): $state, restarts $restarts"
  if [ "$state" != COMPLETED ]; then tail -n 15 "$out" >&2 2>/dev/null || true; fail "job $id ($n) ended $state (output $out)"; fi
  [ -n "${signalled[$id]:-}" ] || fail "job $id ($n) finished before any checkpoint appeared in $rd/checkpoints"
  [ "${restarts:-0}" -ge 1 ] || fail "job $id ($n) was not requeued (Restarts=$restarts)"
  grep -q 'trainer exited with status 75' "$out" || fail "job $id ($n): trainer did not exit 75 after USR1 (see $out)"
  grep -q 'restart 1 ' "$out" || fail "job $id ($n): no second run in $out (SLURM_RESTART_COUNT=1)"
  grep -q 'resumed from' "$out" || fail "job $id ($n): restarted run did not print 'resumed from' (see $out)"
  grep -m1 'resumed from' "$out"
  ep=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("epochs"))' "$rd/summary.json" 2>/dev/null || echo "?")
  [ "$ep" = "$EPOCHS" ] || fail "job $id ($n): summary.json epochs=$ep, expected $EPOCHS"
done
echo "PASS tests/cluster/slurm-requeue.sh in $((SECONDS - start)) s"
