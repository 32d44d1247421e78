#!/usr/bin/env bash
# Side-by-side iSCSI benchmark: arraysim vs Debian tgt, same clients (iscsi-perf, qemu-img bench).
# Usage: tools/bench/run.sh [--duration 10] [--write-seconds 4] [--no-tib] [--no-loopback] [--only tgt|arraysim]
# Env:   ARRAYSIM_CMD (template with {listen} and {lun}), ARRAYSIM_IQN, ARRAYSIM_LUN. See tools/bench/README.md.
# run.ts cleans up after itself; this trap is the backstop if node dies hard (tgtd ignores SIGTERM).
set -uo pipefail
cd "$(dirname "$0")/../.."
export BENCH_PIDFILE
BENCH_PIDFILE=$(mktemp /tmp/arraysim-bench-pids.XXXXXX)
export BENCH_ENTRY="tools/bench/run.sh"

cleanup() {
  local tag pid
  while read -r tag pid; do
    if [[ $tag == file ]]; then
      [[ $pid == /dev/shm/arraysim-bench-tgt-*.img ]] && rm -f -- "$pid"
      continue
    fi
    [[ -n ${pid:-} && -r /proc/$pid/cmdline ]] || continue
    case $tag in
      tgtd)
        # only our tgtd: the one with the private control port 7303
        if tr '\0' ' ' </proc/"$pid"/cmdline | grep -q -- '-C 7303'; then
          tgtadm -C 7303 --lld iscsi --mode target --op delete --force --tid 1 >/dev/null 2>&1
          tgtadm -C 7303 --mode system --op delete >/dev/null 2>&1
          sleep 0.5; [[ -e /proc/$pid ]] && kill -9 "$pid" 2>/dev/null
        fi ;;
      arraysim)
        kill -TERM "$pid" 2>/dev/null; sleep 1; [[ -e /proc/$pid ]] && kill -9 "$pid" 2>/dev/null ;;
    esac
  done <"$BENCH_PIDFILE"
  rm -f "$BENCH_PIDFILE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

node tools/build.mjs --if-stale || exit 1   # the targets run from dist/
# node directly (not npx): one process between this shell and the benchmark, so signals reach it.
node --import tsx tools/bench/run.ts "$@"
