#!/usr/bin/env bash
# tests/cluster/multihost.sh: 2 ranks on 2 "hosts" (network namespaces h1, h2,
# MPI over TCP on 10.200.0.0/24 only, launched through scripts/netns-rsh) must
# train the same model as 1 process: every tensor of model.safetensors within
# 1e-5 of the tensor's max |w|.
# Env: DPTRAIN (binary), HOSTS (default 2), STEPS (default 50),
#      TEST_TIMEOUT (s, default 300), KEEP=1 keeps the work dir. Needs root.
set -euo pipefail
NAME=multihost LIMIT=${TEST_TIMEOUT:-300}
. "$(dirname "$0")/harness.sh"
HOSTS=${HOSTS:-2}
P=${NETNS_PREFIX:-h}  # host names (scripts/netns-hosts): h1..hN unless NETNS_PREFIX says otherwise
STEPS=${STEPS:-50}
RSH=$ROOT/scripts/netns-rsh
teardown() { "$ROOT/scripts/netns-hosts" down; }  # also ends processes left in h1..hN
start=$SECONDS
"$ROOT/scripts/netns-hosts" up "$HOSTS" >"$WORK/netns.log" 2>&1 || fail "netns-hosts up failed: $(tail -1 "$WORK/netns.log")"
for i in $(seq 1 "$HOSTS"); do echo "$P$i slots=1"; done >"$WORK/hostfile"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
train=("$BIN" train --max-steps "$STEPS" --seed 7 --threads 1 --data-dir "$ROOT/data/mnist")
# mpirun runs on h1 (the root namespace has no route to the hosts); each
# namespace host thinks it owns the machine, so binding would put every rank on
# core 0: --bind-to none, and one BLAS thread per rank.
# shellcheck disable=SC2054  # the commas are in mpirun's values
mpi=(mpirun -np "$HOSTS" --hostfile "$WORK/hostfile" --map-by node --bind-to none
     --mca plm_rsh_agent "$RSH"
     --mca btl tcp,self --mca btl_tcp_if_include 10.200.0.0/24 --mca oob_tcp_if_include 10.200.0.0/24
     --mca mpi_yield_when_idle 1
     "${train[@]}" --run-dir "$WORK/multi")
t0=$SECONDS
( cd "$ROOT" && timeout -k 5 $((LIMIT / 2)) "$RSH" "${P}1" "$(printf '%q ' "${mpi[@]}")" ) >"$WORK/multi.log" 2>&1 ||
  { tail -n 15 "$WORK/multi.log" >&2; fail "mpirun over $HOSTS namespace hosts failed (log $WORK/multi.log)"; }
echo "$HOSTS ranks on h1..h$HOSTS: $((SECONDS - t0)) s; $(grep 'test accuracy' "$WORK/multi.log" | tail -1)"
t0=$SECONDS
# the single process runs on h1 too, so its singleton MPI runtime only sees lo and 10.200.0.1;
# with one thread per host it cuts each batch as the ranks do (see README, "Same model on N ranks")
( cd "$ROOT" && timeout -k 5 $((LIMIT / 2)) "$RSH" "${P}1" "$(printf '%q ' "${train[@]}" --threads "$HOSTS" --run-dir "$WORK/single")" ) >"$WORK/single.log" 2>&1 ||
  { tail -n 15 "$WORK/single.log" >&2; fail "single-process run failed (log $WORK/single.log)"; }
echo "1 process: $((SECONDS - t0)) s; $(grep 'test accuracy' "$WORK/single.log" | tail -1)"

python3 - "$WORK/multi/model.safetensors" "$WORK/single/model.safetensors" <<'EOF' || fail "models differ between $HOSTS ranks and 1 process (see above)"
import json, struct, sys
def load(path):  # safetensors by hand: u64 LE header length, JSON header, F32 LE data
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", f"{path}: {name} is {t['dtype']}"
        b, e = t["data_offsets"]
        out[name] = (t["shape"], struct.unpack(f"<{(e - b) // 4}f", data[b:e]))
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
if sorted(a) != sorted(b):
    sys.exit(f"different tensors: {sorted(a)} vs {sorted(b)}")
worst, bad = 0.0, []
for name in sorted(a):
    (sa, va), (sb, vb) = a[name], b[name]
    if sa != sb:
        sys.exit(f"{name}: shape {sa} vs {sb}")
    scale = max(max(abs(x) for x in vb), 1e-30)
    rel = max(abs(x - y) for x, y in zip(va, vb)) / scale
    worst = max(worst, rel)
    if rel > 1e-5:
        bad.append(f"{name} {rel:.3g}")
print(f"{len(a)} tensors compared, max relative difference {worst:.3g}")
if bad:
    sys.exit("over 1e-5: " + ", ".join(bad))
EOF
echo "PASS tests/cluster/multihost.sh in $((SECONDS - start)) s"
