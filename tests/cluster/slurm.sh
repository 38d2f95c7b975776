#!/usr/bin/env bash
# tests/cluster/slurm.sh: train through slurm/train.sbatch (srun) and
# slurm/train-mpirun.sbatch (mpirun) on a private one-node Slurm cluster, and the MPICH
# build through slurm/train.sbatch with srun's PMI-2 (SRUN_MPI=pmi2): the same weights.
# Env: DPTRAIN (binary, default .build/release/dptrain), MPICH_DPTRAIN (default
#      .build-mpich/release/dptrain, made by scripts/setup --test), TEST_TIMEOUT (s, default 600),
#      KEEP=1 keeps the work dir. Needs root.
set -euo pipefail
NAME=slurm LIMIT=${TEST_TIMEOUT:-600}
. "$(dirname "$0")/harness.sh"
# a cluster of its own (own dir and ports), so a developer's cluster is left alone
export SLURM_SCRATCH_DIR=$WORK/cluster SLURMCTLD_PORT=6917 SLURMD_PORT=6918
export SLURM_CONF=$SLURM_SCRATCH_DIR/slurm.conf
teardown() { "$ROOT/scripts/slurm-cluster" down; }
start=$SECONDS
"$ROOT/scripts/slurm-cluster" up >"$WORK/up.log" 2>&1 || fail "cluster up failed: $(tail -1 "$WORK/up.log")"
echo "cluster up in $((SECONDS - start)) s"

submit() { # SBATCH-SCRIPT NAME [VAR=VALUE...] -> prints job id. Small settings through the environment.
  local script=$1 name=$2
  shift 2
  cd "$ROOT" && env "$@" RUN_DIR="$WORK/run-$name" EPOCHS=1 DPTRAIN_ARGS="--max-steps 30 --threads 1" \
    sbatch --parsable -n 2 --time=10 -J "$name" -o "$WORK/%x-%j.out" "slurm/$script"
}
job_gone() { # ID: the job has left the queue (squeue, not sbatch --wait: that polls too slowly)
  local q
  q=$(squeue -h -j "$1" -o %T 2>&1) || { [[ $q == *"Invalid job id"* ]]; return; }
  [ -z "$q" ]
}
[ -n "${DPTRAIN:-}" ] && export DPTRAIN  # else the scripts' default, $SLURM_SUBMIT_DIR/.build/release/dptrain
j1=$(submit train.sbatch srun) || fail "sbatch slurm/train.sbatch failed"
j2=$(submit train-mpirun.sbatch mpirun) || fail "sbatch slurm/train-mpirun.sbatch failed"
MPICH_DPTRAIN=${MPICH_DPTRAIN:-$ROOT/.build-mpich/release/dptrain}
[ -x "$MPICH_DPTRAIN" ] || fail "$MPICH_DPTRAIN missing: scripts/setup --test builds it"
j3=$(submit train.sbatch srun-mpich DPTRAIN="$MPICH_DPTRAIN" SRUN_MPI=pmi2) || fail "sbatch slurm/train.sbatch (MPICH, pmi2) failed"
echo "submitted $j1 (srun) and $j2 (mpirun) and $j3 (srun --mpi=pmi2, MPICH)"

for pair in "$j1 srun" "$j2 mpirun" "$j3 srun-mpich"; do
  read -r id name <<<"$pair"
  t0=$SECONDS
  until job_gone "$id"; do sleep 1; done
  out=$WORK/$name-$id.out
  state=$(scontrol show job "$id" | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
  ecode=$(scontrol show job "$id" | grep -o ' ExitCode=[0-9:]*' | cut -d= -f2)
  echo "job $id ($name): $state exit $ecode after $((SECONDS - t0)) s"
  if [ "$state" != COMPLETED ]; then
    tail -n 15 "$out" >&2 2>/dev/null || true
    fail "job $id ($name) ended $state exit $ecode (output $out)"
  fi
  [ -s "$WORK/run-$name/metrics.csv" ] || fail "job $id ($name): no metrics.csv in $WORK/run-$name"
  [ -s "$WORK/run-$name/model.safetensors" ] || fail "job $id ($name): no model.safetensors in $WORK/run-$name"
  grep -q 'test accuracy' "$out" || fail "job $id ($name): no 'test accuracy' line in $out"
  grep 'test accuracy' "$out" | tail -1
  ranks=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("ranks"))' "$WORK/run-$name/summary.json" 2>/dev/null || echo "?")
  [ "$ranks" = 2 ] || fail "job $id ($name): summary.json ranks=$ranks, expected 2"
done
cmp -s "$WORK/run-srun/model.safetensors" "$WORK/run-srun-mpich/model.safetensors" ||
  fail "the MPICH job's weights differ from the Open MPI job's (the exact reduction gives the same bits)"
echo "PASS tests/cluster/slurm.sh in $((SECONDS - start)) s"
