#!/usr/bin/env bash
# tools/vm/kernel-initiator-test.sh - end-to-end test of an iSCSI target with the real
# Linux initiator in a VM, including persistence across a target restart:
#
#   1. start the target (ARRAYSIM_CMD) on 127.0.0.1:ARRAYSIM_PORT with a file-backed LUN
#   2. guest-tests/smoke.sh in the VM (discovery, login, sg3_utils, ext4 + 64 MiB file,
#      fio verify, logout/login re-verify)
#   3. stop the target with SIGTERM (to its process group), start it again, same file
#   4. guest-tests/verify-persist.sh in a fresh VM: the 64 MiB file must be intact
#   5. stop the target
#   6. (arraysim only; ARRAYSIM_VM_ARRAY=0 skips) start arraysim with targets/array.yaml (two
#      portals PORT and PORT+1 in two ALUA groups, two LUNs, admin API on PORT+1000) and run
#      guest-tests/array.sh: ALUA commands, VAAI with sg3_utils, dm-multipath with state flips
#   7. (arraysim only; ARRAYSIM_VM_SPLITTER=0 skips) splitter-proof.sh --short: blkdiscard -z /
#      blkdiscard under a splitter that rejects or ignores WRITE SAME / UNMAP, then verify (ports
#      PORT+10 and PORT+11)
#   8. print the summary. Exit 0 only if every guest run PASSed.
#
# Usage:  kernel-initiator-test.sh [--tgtd] [RESULT_DIR]
#   RESULT_DIR default: ./vm-results/kit-YYYYmmdd-HHMMSS (smoke/, persist/, target-*.log,
#   summary.txt)
#   --tgtd  use Debian's tgtd through targets/tgtd.sh instead of arraysim (reference run)
#
# Env:
#   ARRAYSIM_CMD    target command, run with bash -c from the repository root, in its own
#                   process group. It sees ARRAYSIM_PORT and ARRAYSIM_LUN_FILE. Default:
#                   node bin/arraysim.js serve --listen 127.0.0.1:$ARRAYSIM_PORT --lun file:$ARRAYSIM_LUN_FILE,size=512MiB
#   ARRAYSIM_PORT   TCP port on 127.0.0.1 (3260). Must be free: the test refuses to run
#                   against a target it did not start.
#   ARRAYSIM_LUN_FILE  backing file (default: a fresh file in a temp dir, deleted after)
#   ARRAYSIM_READY_PATTERN  extended regex; if set, the target also counts as ready only
#                   once its log (stdout+stderr) matches it (besides listening on the port)
#   ARRAYSIM_START_TIMEOUT (30 s)  ARRAYSIM_STOP_TIMEOUT (15 s, then SIGKILL + WARN)
#   TARGET_*        passed to the guest scripts (TARGET_IQN, TARGET_LUN, ...)
#   ARRAYSIM_VM_*   VM settings, see run.sh
set -euo pipefail

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$VM_DIR/../.." && pwd)

array_phase=${ARRAYSIM_VM_ARRAY:-1}
splitter_phase=${ARRAYSIM_VM_SPLITTER:-1}
if [[ ${1:-} == --tgtd ]]; then
  shift
  array_phase=0
  splitter_phase=${ARRAYSIM_VM_SPLITTER:-0}   # the reference run: arraysim's splitter is not under test
  export ARRAYSIM_CMD=${ARRAYSIM_CMD:-$VM_DIR/targets/tgtd.sh}
  export ARRAYSIM_READY_PATTERN=${ARRAYSIM_READY_PATTERN:-'^tgtd.sh: ready:'}
  export ARRAYSIM_PORT=${ARRAYSIM_PORT:-3301}
  # The reference run records what tgtd negotiates; arraysim must do CRC32C.
  export TARGET_DIGESTS_OPTIONAL=${TARGET_DIGESTS_OPTIONAL:-1}
fi
if [[ $# -gt 1 || ${1:-} == -* ]]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
fi
export ARRAYSIM_PORT=${ARRAYSIM_PORT:-3260}
# shellcheck disable=SC2016   # expanded later by bash -c, from the exported variables
DEFAULT_CMD='node bin/arraysim.js serve --listen 127.0.0.1:$ARRAYSIM_PORT --lun file:$ARRAYSIM_LUN_FILE,size=512MiB'
CMD=${ARRAYSIM_CMD:-$DEFAULT_CMD}
# The target runs from dist/ (bin/arraysim.js): rebuild it when a source is newer.
(cd "$VM_DIR/../.." && node tools/build.mjs --if-stale) || exit 1
START_TIMEOUT=${ARRAYSIM_START_TIMEOUT:-30}
STOP_TIMEOUT=${ARRAYSIM_STOP_TIMEOUT:-15}
OUT=${1:-vm-results/kit-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"

say() { printf 'kit: %s\n' "$*" >&2; }
note() { echo "$*" >>"$SUMMARY"; say "$*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }
listening() { ss -Hltn "sport = :$ARRAYSIM_PORT" | grep -q .; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/arraysim-kit.XXXXXX")
if [[ -z ${ARRAYSIM_LUN_FILE:-} ]]; then
  export ARRAYSIM_LUN_FILE=$tmp/lun.img
fi
target_pid=
cleanup() {
  # Only ever our own target: the process group we created with setsid.
  if [[ -n $target_pid ]] && kill -0 "$target_pid" 2>/dev/null; then
    kill -TERM -- "-$target_pid" 2>/dev/null || true
    sleep 2
    kill -KILL -- "-$target_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_target() {          # start_target N: start, wait until ready; sets target_pid
  local n=$1 log=$OUT/target-$1.log t
  if listening; then
    note "FAIL target start $n: 127.0.0.1:$ARRAYSIM_PORT is already in use (not by us)"
    return 1
  fi
  t=$(now)
  (cd "$REPO" && exec setsid bash -c "$CMD") >"$log" 2>&1 </dev/null &
  target_pid=$!
  local deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$target_pid" 2>/dev/null; then
      wait "$target_pid"; local rc=$?
      target_pid=
      note "FAIL target start $n: exited with status $rc during start-up (log: $log)"
      tail -n 15 "$log" >&2
      return 1
    fi
    if listening && { [[ -z ${ARRAYSIM_READY_PATTERN:-} ]] || grep -Eq "$ARRAYSIM_READY_PATTERN" "$log"; }; then
      note "PASS target start $n: pid $target_pid ready on 127.0.0.1:$ARRAYSIM_PORT after $(since "$t") s"
      return 0
    fi
    sleep 0.2
  done
  note "FAIL target start $n: not ready within ${START_TIMEOUT}s (log: $log)"
  tail -n 15 "$log" >&2
  return 1
}

stop_target() {           # stop_target N: SIGTERM the process group, SIGKILL after STOP_TIMEOUT
  local n=$1 t rc
  [[ -n $target_pid ]] || return 0
  t=$(now)
  kill -TERM -- "-$target_pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$target_pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  if kill -0 "$target_pid" 2>/dev/null; then
    kill -KILL -- "-$target_pid" 2>/dev/null || true
    wait "$target_pid" 2>/dev/null || true
    note "WARN target stop $n: still running ${STOP_TIMEOUT}s after SIGTERM; killed with SIGKILL"
  else
    wait "$target_pid" 2>/dev/null && rc=0 || rc=$?
    note "PASS target stop $n: exited with status $rc $(since "$t") s after SIGTERM"
  fi
  target_pid=
  for _ in $(seq 50); do listening || break; sleep 0.1; done
  if listening; then note "WARN target stop $n: port $ARRAYSIM_PORT still in use after the target exited"; fi
}

guest() {                 # guest NAME SCRIPT: run SCRIPT in a VM, results in $OUT/NAME
  local name=$1 script=$2 t rc
  t=$(now)
  TARGET_PORT=$ARRAYSIM_PORT "$VM_DIR/run.sh" "$script" "$OUT/$name" >"$OUT/$name.console.txt" 2>&1 \
    && rc=0 || rc=$?
  sed 's/^/    /' "$OUT/$name/summary.txt" 2>/dev/null >&2 || true
  if ((rc == 0)); then
    note "PASS guest $name ($(basename "$script")) in $(since "$t") s"
  else
    note "FAIL guest $name ($(basename "$script")): exit $rc after $(since "$t") s" \
         "(see $OUT/$name/summary.txt and $OUT/$name.console.txt)"
  fi
  return "$rc"
}

t_all=$(now)
say "target command: $CMD"
say "port 127.0.0.1:$ARRAYSIM_PORT, LUN file $ARRAYSIM_LUN_FILE, results in $OUT"
"$VM_DIR/build-image.sh"
smoke_ok=false persist_ok=false

if start_target 1; then
  guest smoke "$VM_DIR/guest-tests/smoke.sh" && smoke_ok=true
  stop_target 1
fi
if [[ -s $OUT/smoke/ref.sha256 ]]; then
  if start_target 2; then
    export TARGET_EXPECT_SHA
    TARGET_EXPECT_SHA=$(<"$OUT/smoke/ref.sha256")
    if [[ -s $OUT/smoke/devid.txt ]]; then export TARGET_EXPECT_DEVID; TARGET_EXPECT_DEVID=$(<"$OUT/smoke/devid.txt"); fi
    guest persist "$VM_DIR/guest-tests/verify-persist.sh" && persist_ok=true
    stop_target 2
  fi
else
  note "FAIL persistence: smoke.sh did not write /ref.dat, nothing to verify after a restart"
fi

array_ok=true
if [[ $array_phase == 1 ]]; then
  array_ok=false
  cfg=$tmp/array.yaml
  sed -e "s/@PORT1@/$ARRAYSIM_PORT/; s/@PORT2@/$((ARRAYSIM_PORT + 1))/" "$VM_DIR/targets/array.yaml" >"$cfg"
  CMD="node bin/arraysim.js serve --config $cfg --admin 127.0.0.1:$((ARRAYSIM_PORT + 1000))"
  if start_target 3; then
    export TARGET_PORT2=$((ARRAYSIM_PORT + 1)) TARGET_ADMIN_PORT=$((ARRAYSIM_PORT + 1000)) TARGET_IQN=iqn.2026-11.dev.arraysim:vm-array
    # dm-multipath's device section: lab up's (src/lab/snippets.ts), not one of the guest script's own.
    export TARGET_MULTIPATH_DEVICE
    TARGET_MULTIPATH_DEVICE=$(cd "$REPO" && node tools/vm/multipath-device.mjs)
    unset TARGET_EXPECT_SHA TARGET_EXPECT_DEVID
    guest array "$VM_DIR/guest-tests/array.sh" && array_ok=true
    stop_target 3
  fi
fi

# One more guest boot: 47 s on an idle host, 167-211 s under load 13-15 (tools/vm/README.md).
splitter_ok=true
if [[ $splitter_phase == 1 ]]; then
  t=$(now)
  if ARRAYSIM_SPLITTER_PORT=$((ARRAYSIM_PORT + 10)) "$VM_DIR/splitter-proof.sh" --short "$OUT/splitter" >"$OUT/splitter.console.txt" 2>&1; then
    note "PASS splitter-proof --short in $(since "$t") s"
  else
    splitter_ok=false
    note "FAIL splitter-proof --short after $(since "$t") s (see $OUT/splitter/summary.txt)"
  fi
fi

verdict=FAIL
$smoke_ok && $persist_ok && $array_ok && $splitter_ok && verdict=PASS
{
  echo "---- smoke (guest) ----"; cat "$OUT/smoke/summary.txt" 2>/dev/null || echo "(none)"
  echo "---- persist after target restart (guest) ----"; cat "$OUT/persist/summary.txt" 2>/dev/null || echo "(none)"
  if [[ $array_phase == 1 ]]; then echo "---- array: ALUA, VAAI, multipath (guest) ----"; cat "$OUT/array/summary.txt" 2>/dev/null || echo "(none)"; fi
  if [[ $splitter_phase == 1 ]]; then echo "---- splitter: blkdiscard under reject/ignore, verify ----"; cat "$OUT/splitter/summary.txt" 2>/dev/null || echo "(none)"; fi
  echo "KERNEL-INITIATOR-TEST: $verdict in $(since "$t_all") s (target: $CMD)"
} >>"$SUMMARY"
echo
cat "$SUMMARY"
[[ $verdict == PASS ]]
