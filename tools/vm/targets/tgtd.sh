#!/usr/bin/env bash
# tools/vm/targets/tgtd.sh - run Debian's tgtd (package "tgt") as a reference target
# that behaves like `arraysim serve` towards kernel-initiator-test.sh: it serves one
# file-backed LUN on 127.0.0.1:$ARRAYSIM_PORT, stays in the foreground, and exits
# cleanly on SIGTERM/SIGINT (tgtd itself ignores SIGTERM, so this wrapper shuts it down
# through tgtadm, with SIGKILL as the last resort).
#
# Usage (normally through kernel-initiator-test.sh):
#   ARRAYSIM_CMD=tools/vm/targets/tgtd.sh tools/vm/kernel-initiator-test.sh
# Env: ARRAYSIM_PORT (3301)  ARRAYSIM_LUN_FILE (created sparse, 512 MiB, if missing)
#      TGTD_CONTROL_PORT (7301): private tgtd control port, so tgtadm never reaches the
#        tgtd behind the default socket (other people's targets)
#      TARGET_IQN (iqn.2001-04.com.example:arraysim-vmtest)  TGTD_LUN_SIZE (512M)
set -euo pipefail

port=${ARRAYSIM_PORT:-3301}
ctl=${TGTD_CONTROL_PORT:-7301}
file=${ARRAYSIM_LUN_FILE:?set ARRAYSIM_LUN_FILE to the LUN backing file}
iqn=${TARGET_IQN:-iqn.2001-04.com.example:arraysim-vmtest}
say() { printf 'tgtd.sh: %s\n' "$*" >&2; }

command -v tgtd >/dev/null || { say "tgtd not installed (apt-get install tgt)"; exit 1; }
[[ -e $file ]] || truncate -s "${TGTD_LUN_SIZE:-512M}" "$file"

tgtd -f -C "$ctl" --iscsi "portal=127.0.0.1:$port" &
tgtd_pid=$!
mine=false        # true once we know the control port $ctl belongs to our tgtd

shutdown() {           # shutdown EXIT_STATUS
  local rc=$1
  trap - TERM INT EXIT
  if $mine; then
    tgtadm -C "$ctl" --op delete --mode target --tid 1 --force >/dev/null 2>&1 || true
    tgtadm -C "$ctl" --op delete --mode system >/dev/null 2>&1 || true
  fi
  for _ in $(seq 50); do kill -0 "$tgtd_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$tgtd_pid" 2>/dev/null; then
    say "tgtd $tgtd_pid did not exit; SIGKILL"
    kill -9 "$tgtd_pid" 2>/dev/null || true
  fi
  wait "$tgtd_pid" 2>/dev/null || true
  # tgtd leaves its control socket files behind; they are ours to remove.
  if $mine; then rm -f "/var/run/tgtd/socket.$ctl" "/var/run/tgtd/socket.$ctl.lock"; fi
  say "tgtd $tgtd_pid stopped"
  exit "$rc"
}
trap 'shutdown 0' TERM INT
trap 'shutdown $?' EXIT

# tgtd exits at once if the control port is taken; otherwise it listens on our portal.
for _ in $(seq 100); do
  kill -0 "$tgtd_pid" 2>/dev/null || { say "tgtd exited during start-up (control port $ctl or portal busy?)"; exit 1; }
  ss -Hltnp "sport = :$port" | grep -q "pid=$tgtd_pid," && break
  sleep 0.1
done
ss -Hltnp "sport = :$port" | grep -q "pid=$tgtd_pid," || { say "tgtd is not listening on :$port"; exit 1; }
mine=true

tgtadm -C "$ctl" --lld iscsi --op new --mode target --tid 1 -T "$iqn"
tgtadm -C "$ctl" --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$file"
tgtadm -C "$ctl" --lld iscsi --op bind --mode target --tid 1 -I ALL
say "ready: tgtd pid $tgtd_pid: $iqn LUN 1 = $file on 127.0.0.1:$port (control port $ctl)"

# Stay in the foreground like a normal server; "wait" returns early on a trapped signal.
while kill -0 "$tgtd_pid" 2>/dev/null; do wait "$tgtd_pid" || true; done
say "tgtd exited on its own"
exit 1
