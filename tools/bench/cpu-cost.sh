#!/usr/bin/env bash
# Target CPU cost per workload, arraysim vs tgt: CPU seconds (utime+stime of the whole target
# process, all threads) that each target spends on the same client work, runs interleaved.
# On the shared 2-core machine run.sh's wall-clock ratios swing by 3x between consecutive runs;
# CPU spent per request does not depend much on who else is running. See README.md.
#
#   tools/bench/cpu-cost.sh [ROUNDS]        # default 2
#
# Ports 3325 (tgt, private control port 7305) and 3326 (arraysim); backing file in /dev/shm.
set -uo pipefail
cd "$(dirname "$0")/../.."
node tools/build.mjs --if-stale || exit 1   # the target runs from dist/
ROUNDS=${1:-2}
CTL=7305
TGT_PORT=3325
AS_PORT=3326
TGT_IQN=iqn.2026-11.dev.arraysim:tgt-cpu
IMG=/dev/shm/arraysim-cpu-cost-$$.img
TGT_PID=
AS_PID=

cleanup() {
  if [[ -n $TGT_PID && -e /proc/$TGT_PID ]]; then
    # tgtd ignores SIGTERM and refuses "delete system" while a target exists.
    tgtadm -C $CTL --lld iscsi --mode target --op delete --force --tid 1 >/dev/null 2>&1
    tgtadm -C $CTL --mode system --op delete >/dev/null 2>&1
    sleep 0.5
    [[ -e /proc/$TGT_PID ]] && kill -9 "$TGT_PID" 2>/dev/null
  fi
  if [[ -n $AS_PID && -e /proc/$AS_PID ]]; then
    kill -TERM "$AS_PID" 2>/dev/null; sleep 1; [[ -e /proc/$AS_PID ]] && kill -9 "$AS_PID" 2>/dev/null
  fi
  rm -f -- "$IMG"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if tgtadm -C $CTL --mode system --op show >/dev/null 2>&1; then
  echo "a tgtd already answers on control port $CTL; not touching it" >&2; exit 1
fi
for p in $TGT_PORT $AS_PORT; do
  if ss -ltn "sport = :$p" | grep -q LISTEN; then echo "port $p is in use" >&2; exit 1; fi
done

truncate -s 1G "$IMG"
tgtd -f -C $CTL --iscsi portal=127.0.0.1:$TGT_PORT >/dev/null 2>&1 &
TGT_PID=$!
for _ in $(seq 50); do tgtadm -C $CTL --mode system --op show >/dev/null 2>&1 && break; sleep 0.1; done
t() { tgtadm -C $CTL --lld iscsi "$@" || { echo "tgtadm $*: failed" >&2; exit 1; }; }
t --mode target --op new --tid 1 --targetname $TGT_IQN
t --mode logicalunit --op new --tid 1 --lun 1 --backing-store "$IMG"
# The keys arraysim offers (as run.sh gives tgt by default).
for kv in MaxRecvDataSegmentLength=262144 MaxXmitDataSegmentLength=262144 FirstBurstLength=262144 \
          MaxBurstLength=1048576 InitialR2T=No ImmediateData=Yes; do
  t --mode target --op update --tid 1 --name "${kv%=*}" --value "${kv#*=}"
done
t --mode target --op bind --tid 1 -I ALL

node bin/arraysim.js serve --listen 127.0.0.1:$AS_PORT --lun 1GiB --log-level warn --admin none >/dev/null 2>&1 &
AS_PID=$!
for _ in $(seq 100); do ss -ltn "sport = :$AS_PORT" | grep -q LISTEN && break; sleep 0.2; done

TGT_URL=iscsi://127.0.0.1:$TGT_PORT/$TGT_IQN/1
AS_URL=iscsi://127.0.0.1:$AS_PORT/iqn.2026-11.dev.arraysim:default/0
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# workload name, client command (URL appended), bytes moved
WORKLOADS=(
  "4 KiB random read QD32 (5 s)|iscsi-perf -m 32 -b 8 -r -t 5|iops"
  "128 KiB read QD32 (5 s)|iscsi-perf -m 32 -b 256 -t 5|iops"
  "4 KiB write QD32 (65536)|qemu-img bench -w --pattern=165 -d 32 -s 4096 -c 65536 -t none -f raw|65536"
  "128 KiB write QD32 (8192)|qemu-img bench -w --pattern=165 -d 32 -s 131072 -c 8192 -t none -f raw|8192"
)

echo "| Workload | round | tgt CPU ms / 1000 I/Os | arraysim CPU ms / 1000 I/Os | ratio (tgt/arraysim) |"
echo "|---|---|---|---|---|"
for r in $(seq "$ROUNDS"); do
  for w in "${WORKLOADS[@]}"; do
    IFS='|' read -r name cmd count <<<"$w"
    declare -A cost=()
    for side in tgt arraysim; do
      if [[ $side == tgt ]]; then pid=$TGT_PID; url=$TGT_URL; else pid=$AS_PID; url=$AS_URL; fi
      c0=$(ticks "$pid")
      out=$($cmd "$url" 2>&1)
      c1=$(ticks "$pid")
      if [[ $count == iops ]]; then
        # iscsi-perf prints a running line; the last "iops average N" over 5 s gives the I/O count.
        n=$(grep -o 'iops average [0-9]*' <<<"$out" | tail -1 | awk '{print $3 * 5}')
      else
        n=$count
      fi
      cost[$side]=$(awk -v d=$((c1 - c0)) -v hz="$HZ" -v n="${n:-0}" 'BEGIN { if (n > 0) printf "%.2f", d * 1000 / hz / n * 1000; else print "n/a" }')
    done
    ratio=$(awk -v a="${cost[tgt]}" -v b="${cost[arraysim]}" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }')
    echo "| $name | $r | ${cost[tgt]} | ${cost[arraysim]} | $ratio |"
  done
done
