#!/usr/bin/env bash
# Adapter: speaks the arraysim `serve` CLI contract, runs Debian's tgtd (package tgt) underneath,
# so the conformance runner can be validated against a reference target:
#   tgt.sh serve [--listen HOST:PORT]... [--target IQN] [--lun SPEC]... [--admin X] [--log-level L]
# SPEC is SIZE[,removable][,readonly] (SIZE like 256MiB, 1GiB). tgt keeps LUN 0 for its controller,
# so the first --lun becomes LUN 1: run the conformance runner with --lun-number 1.
# tgtd uses a private control port (TGT_CONTROL_PORT, default 7302), never the default socket, so
# it does not disturb any other tgtd on the machine. tgtd ignores SIGTERM: this script traps
# TERM/INT, force-deletes the target and then the tgtd system through its own control port (kill -9 as fallback).
# Backing files live in /dev/shm and are removed on exit.
set -uo pipefail
ctl=${TGT_CONTROL_PORT:-7302}
[[ ${1:-} == serve ]] && shift
listens=(); iqn=iqn.2026-11.dev.arraysim:default; luns=()
while (($#)); do
  case $1 in
    --listen) listens+=("$2"); shift 2 ;;
    --listen=*) listens+=("${1#*=}"); shift ;;
    --target) iqn=$2; shift 2 ;;
    --target=*) iqn=${1#*=}; shift ;;
    --lun) luns+=("$2"); shift 2 ;;
    --lun=*) luns+=("${1#*=}"); shift ;;
    --admin|--log-level|--config) shift 2 ;;   # arraysim-only flags: accepted, ignored
    *) echo "tgt.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
((${#listens[@]})) || listens=(127.0.0.1:3260)
((${#luns[@]})) || luns=(1GiB)

files=(); tgtd_pid=
cleanup() {
  trap - TERM INT EXIT
  if [[ -n $tgtd_pid ]] && kill -0 "$tgtd_pid" 2>/dev/null; then
    # tgtd refuses to delete the system while targets exist: force-delete the target first.
    tgtadm -C "$ctl" --lld iscsi --op delete --mode target --tid 1 --force >/dev/null 2>&1
    tgtadm -C "$ctl" --op delete --mode system >/dev/null 2>&1
    for _ in $(seq 50); do kill -0 "$tgtd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$tgtd_pid" 2>/dev/null
    wait "$tgtd_pid" 2>/dev/null
  fi
  rm -f "${files[@]}"
}
trap 'cleanup; exit 0' TERM INT
trap cleanup EXIT

tgtd -f -C "$ctl" --iscsi "portal=${listens[0]}" &
tgtd_pid=$!
adm() { tgtadm -C "$ctl" --lld iscsi "$@"; }
for _ in $(seq 100); do adm --op show --mode sys >/dev/null 2>&1 && break; sleep 0.1; done
adm --op show --mode sys >/dev/null 2>&1 || { echo "tgt.sh: tgtd did not come up on control port $ctl" >&2; exit 1; }

for l in "${listens[@]:1}"; do adm --op new --mode portal --param "portal=$l" || exit 1; done
adm --op new --mode target --tid 1 -T "$iqn" || exit 1
n=0
for spec in "${luns[@]}"; do
  n=$((n + 1))
  IFS=, read -r size opts <<<"$spec"
  size=${size/iB/}                           # 256MiB -> 256M (truncate's binary units)
  f=/dev/shm/arraysim-conformance-tgt-$ctl-$n.img
  files+=("$f")
  truncate -s 0 "$f" && truncate -s "$size" "$f" || exit 1
  adm --op new --mode logicalunit --tid 1 --lun "$n" -b "$f" || exit 1
  params=()
  [[ ,$opts, == *,removable,* ]] && params+=(removable=1)
  [[ ,$opts, == *,readonly,* ]] && params+=(readonly=1)
  if ((${#params[@]})); then
    adm --op update --mode logicalunit --tid 1 --lun "$n" --params "$(IFS=,; echo "${params[*]}")" || exit 1
  fi
done
adm --op bind --mode target --tid 1 -I ALL || exit 1
for l in "${listens[@]}"; do printf '{"msg":"listening","portal":"%s","target":"%s","impl":"tgtd"}\n' "$l" "$iqn" >&2; done
wait "$tgtd_pid"
