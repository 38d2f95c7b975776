# Sourced by the cluster tests. Before sourcing set NAME (the script's name without .sh) and
# LIMIT (seconds); define `teardown` (run on every exit, output discarded) any time before exit.
# Gives ROOT, BIN (the trainer), WORK (a fresh work dir, kept on failure), and `fail REASON`:
# on failure the last line printed is "FAIL tests/cluster/NAME.sh: reason (work dir ...)".
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${DPTRAIN:-$ROOT/.build/release/dptrain}
WORK=$(mktemp -d "/tmp/dptrain-test-$NAME.XXXXXX")

reason='' err='unexpected error'
fail() { reason=$*; exit 1; }
cleanup() {
  local rc=$?
  kill "$watchdog" 2>/dev/null || true
  teardown >/dev/null 2>&1 || true
  if [ $rc -eq 0 ]; then [ -n "${KEEP:-}" ] || rm -rf "$WORK"
  else echo "FAIL tests/cluster/$NAME.sh: ${reason:-$err} (work dir $WORK)" >&2; fi
}
# the time limit: a sleeper that TERMs this shell
( trap 'kill $s 2>/dev/null; exit 0' TERM; sleep "$LIMIT" & s=$!; wait $s; kill -TERM $$ ) 2>/dev/null & watchdog=$!
trap cleanup EXIT
trap 'err="line $LINENO: $BASH_COMMAND failed"' ERR
trap 'fail "timed out after ${LIMIT}s (or interrupted)"' TERM INT

[ -x "$BIN" ] || fail "no trainer binary at $BIN (build it, or set DPTRAIN)"
