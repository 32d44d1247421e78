#!/bin/bash
# guest-tests/metro.sh - the metro pair (Active Peer Persistence) with the Linux kernel initiator
# and dm-multipath, through a replication link cut, a primary SIGKILL with the witness up, and the
# recovery. Runs INSIDE the VM:   tools/vm/metro-test.sh (host) starts the pair and runs this.
#
# The host side (tools/vm/metro-pair.ts) runs site A (primary, TARGET_PORT), site B (secondary,
# TARGET_PORT2) and the witness on 127.0.0.1, one volume with one WWN on both, and answers the
# control API on TARGET_CONTROL_PORT: this script asks it for each fault, so that the fault times
# and fio's completion times come from one clock (the guest's).
#
#  1. login to both arrays as host-a (TARGET_INITIATOR_NAME, proximity primary); one dm-multipath
#     map (TARGET_WWID) with a path to each array, path groups by ALUA priority; sg_rtpg through
#     each path: A's group active/optimized, B's active/non-optimized
#  2. fio (4k randrw, QD 8, crc32c verify of every write as it goes, verify_fatal) on the map
#     without a stop, with every completion logged (unix ms), while:
#     a. link cut (witness up): A keeps serving, B's paths go unavailable (the paper); restore, Synced
#     b. SIGKILL of the primary (witness up): automatic failover, B serves; A started again, resync, Synced
#  3. fio stopped: no I/O or verify error; the longest gap between completions in each fault window
#     (the I/O stall as the guest saw it)
#  4. the 32 MiB written before the faults read back and verified; a full write + verify pass over
#     the map, read back again; the map's sha256 equals both arrays' files, compared byte for byte
#     by the host (TARGET_METRO_CORRUPT=1: the host first flips a byte of B's file, and the read-back
#     and the comparison must FAIL: the negative control)
# Output: /results/summary.txt (PASS/WARN/FAIL lines, TIMING lines, last line RESULT: ...).
set -uo pipefail

PA=$TARGET_HOST:${TARGET_PORT:-3500}
PB=$TARGET_HOST:${TARGET_PORT2:-3501}
CTL_PORT=${TARGET_CONTROL_PORT:-3509}
WWID=${TARGET_WWID:-3502a7510000001ab}
OUT=/results
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
npass=0 nwarn=0 nfail=0

line() { echo "$*" | tee -a "$SUMMARY"; }
pass() { line "PASS $*"; npass=$((npass + 1)); }
warn() { line "WARN $*"; nwarn=$((nwarn + 1)); }
fail() { line "FAIL $*"; nfail=$((nfail + 1)); }
timing() { line "TIMING $*"; }
hdr() { printf '\n===== %s =====\n' "$*"; }
now_ms() { date +%s%3N; }
secs() { awk -v ms="$1" 'BEGIN {printf "%.1f", ms / 1000}'; }

finish() {
  trap - EXIT
  [[ -n ${FIO_PID:-} ]] && kill -INT "$FIO_PID" 2>/dev/null
  [[ -n ${TRACE_PID:-} ]] && kill "$TRACE_PID" 2>/dev/null
  multipath -F >/dev/null 2>&1
  iscsiadm -m node -u >/dev/null 2>&1
  local verdict=PASS
  ((nfail == 0)) || verdict=FAIL
  line "RESULT: $verdict ($npass passed, $nwarn warnings, $nfail failed)"
  [[ $verdict == PASS ]]
  exit $?
}
trap finish EXIT
abort() { fail "$*"; exit 1; }
[[ -n ${TARGET_MULTIPATH_DEVICE:-} ]] || abort "TARGET_MULTIPATH_DEVICE is not set (metro-test.sh sets it from tools/vm/multipath-device.mjs)"

# --- the host's control API, through bash's /dev/tcp (no curl in the guest) ---------------------
ctl() {        # ctl PATH -> JSON body on stdout; status 1 unless HTTP 200
  local resp
  exec 4<>"/dev/tcp/$TARGET_HOST/$CTL_PORT" || return 1
  printf 'POST %s HTTP/1.0\r\nHost: metro\r\nContent-Length: 0\r\n\r\n' "$1" >&4
  resp=$(cat <&4); exec 4<&-
  echo "$(date +%T.%3N) $1 -> ${resp##*$'\r\n\r\n'}" >>"$OUT/control.log"
  printf '%s\n' "${resp#*$'\r\n\r\n'}"
  printf '%s' "$resp" | head -n1 | grep -q ' 200 '
}
field() { grep -o "\"$1\":[^,}]*" | head -n1 | cut -d: -f2- | tr -d '"'; }   # field NAME < JSON

# --- 1. login to both arrays, one map -------------------------------------------------------------
hdr "discovery and login to both arrays"
for p in "$PA" "$PB"; do
  iscsiadm -m discovery -t sendtargets -p "$p" >"$OUT/discovery-${p##*:}.txt" 2>&1 || abort "discovery $p: $(head -n1 "$OUT/discovery-${p##*:}.txt")"
  cat "$OUT/discovery-${p##*:}.txt"
done
IQN=$(awk 'NR == 1 {print $2}' "$OUT/discovery-${PA##*:}.txt")
[[ $(awk 'NR == 1 {print $2}' "$OUT/discovery-${PB##*:}.txt") == "$IQN" ]] && pass "both arrays present target $IQN" || fail "the arrays present different targets"
# The arrays advertise 127.0.0.1 portals, which is the guest itself here (README "The portal gotcha").
iscsiadm -m node -T "$IQN" -o delete >/dev/null 2>&1
for p in "$PA" "$PB"; do
  iscsiadm -m node -T "$IQN" -p "$p" -o new >/dev/null
  iscsiadm -m node -T "$IQN" -p "$p" --login >"$OUT/login-${p##*:}.txt" 2>&1 || abort "login $p: $(head -n1 "$OUT/login-${p##*:}.txt")"
done
pass "logged in as $(sed -n 's/^InitiatorName=//p' /etc/iscsi/initiatorname.iscsi) to site A ($PA) and site B ($PB)"
declare -A DEV
for _ in $(seq 60); do
  DEV=()
  while read -r port dev; do DEV[$port]=$dev; done < <(
    iscsiadm -m session -P3 2>/dev/null | awk '
      /Current Portal:/ {split($3, a, ","); n = split(a[1], b, ":"); port = b[n]}
      /Attached scsi disk/ {print port, $4}')
  ((${#DEV[@]} == 2)) && break
  sleep 0.5
done
udevadm settle --timeout=10
SDA=${DEV[${PA##*:}]:-} SDB=${DEV[${PB##*:}]:-}
[[ -n $SDA && -n $SDB ]] || abort "want a disk through each array, have: ${!DEV[*]} -> ${DEV[*]}"
SGA=$(ls "/sys/block/$SDA/device/scsi_generic/") SGB=$(ls "/sys/block/$SDB/device/scsi_generic/")
pass "a disk through each array: site A $SDA ($SGA), site B $SDB ($SGB)"
for d in "$SDA" "$SDB"; do sg_vpd -p di "/dev/$d" >"$OUT/vpd-di-$d.txt" 2>&1; done
naa() { grep -io -m1 '0x[0-9a-f]\{16\}' "$1"; }
[[ -n $(naa "$OUT/vpd-di-$SDA.txt") && $(naa "$OUT/vpd-di-$SDA.txt") == "$(naa "$OUT/vpd-di-$SDB.txt")" ]] \
  && pass "the same NAA designator through both arrays: $(naa "$OUT/vpd-di-$SDA.txt")" \
  || fail "NAA designators differ: A $(naa "$OUT/vpd-di-$SDA.txt"), B $(naa "$OUT/vpd-di-$SDB.txt")"

hdr "dm-multipath"
# The device section is src/lab/snippets.ts's (what lab up prints); fast path checks, as in array.sh.
{
  printf 'defaults {\n  user_friendly_names yes\n  find_multipaths no\n  polling_interval 1\n  max_polling_interval 2\n}\n'
  printf '%s\n' "$TARGET_MULTIPATH_DEVICE"
} >/etc/multipath.conf
modprobe dm_multipath 2>/dev/null; modprobe scsi_dh_alua 2>/dev/null
systemctl start multipathd 2>/dev/null || multipathd
sleep 2; multipath -r >/dev/null 2>&1; sleep 2
multipath -ll >"$OUT/multipath-initial.txt" 2>&1; cat "$OUT/multipath-initial.txt"
nmaps=$(grep -c 'ARRAYSIM' "$OUT/multipath-initial.txt")
MAP=$(awk -v w="($WWID)" '$2 == w {print $1; exit}' "$OUT/multipath-initial.txt")
MP=/dev/mapper/$MAP
((nmaps == 1)) && [[ -n $MAP && -b $MP ]] && pass "one map $MAP (WWID $WWID) for the volume of both arrays" || abort "want one map with WWID $WWID, multipath -ll shows $nmaps"

# path DEV -> "prio dm_state checker_state" from multipathd
path() { multipathd show paths raw format '%d %p %t %T' 2>/dev/null | awk -v d="$1" '$1 == d {print $2, $3, $4; exit}'; }
# tpg SG N -> the access state of target port group N as REPORT TARGET PORT GROUPS through SG says
# (sg, not sd: a blocked session's SG_IO on the sg node can be interrupted by timeout)
tpg() {
  timeout 8 sg_rtpg -d "/dev/$1" 2>/dev/null | awk -v id="$(printf 'target port group id : 0x%x' "$2")" '
    index($0, id) {f = 1} f && /asymmetric access state/ {sub(/.*\(/, ""); sub(/\).*/, ""); gsub(/ /, "-"); print; exit}'
}
snapshot() {   # snapshot LABEL: multipath -ll, multipathd's paths and each path's RTPG, to paths-LABEL.txt
  { date +%T.%3N; multipath -ll; multipathd show paths 2>&1
    for sg in "$SGA" "$SGB"; do echo "--- sg_rtpg -d /dev/$sg"; timeout 8 sg_rtpg -d "/dev/$sg" 2>&1; done
  } >"$OUT/paths-$1.txt" 2>&1
  echo "A $SDA: $(path "$SDA") tpg1 $(tpg "$SGA" 1); B $SDB: $(path "$SDB") tpg2 $(tpg "$SGB" 2)"
}
wait_until() { # wait_until SECONDS CMD...: poll every 0.2 s; prints the ms it took; status 1 on timeout
  local limit=$1 t0; shift; t0=$(now_ms)
  while ! "$@" >/dev/null 2>&1; do
    (($(now_ms) - t0 > limit * 1000)) && { echo $(($(now_ms) - t0)); return 1; }
    sleep 0.2
  done
  echo $(($(now_ms) - t0))
}
is_tpg() { [[ $(tpg "$1" "$2") == "$3" ]]; }
is_path() { [[ $(path "$1" | awk '{print $2}') == "$2" ]]; }
is_active_tpg() { [[ $(tpg "$1" "$2") == active/* ]]; }

read -r prA dmA _ <<<"$(path "$SDA")"; read -r prB dmB _ <<<"$(path "$SDB")"
[[ $prA == 50 && $prB == 10 && $dmA == active && $dmB == active ]] \
  && pass "path groups by ALUA priority: site A $SDA prio 50 (optimized), site B $SDB prio 10 (non-optimized), both active" \
  || fail "path groups: A $SDA prio $prA $dmA, B $SDB prio $prB $dmB (want 50 and 10, both active)"
sA=$(tpg "$SGA" 1) sB=$(tpg "$SGB" 2)
[[ $sA == active/optimized && $sB == active/non-optimized ]] \
  && pass "sg_rtpg through each path: site A's group 1 $sA, site B's group 2 $sB (host-a, proximity primary)" \
  || fail "sg_rtpg: site A's group 1 '$sA', site B's group 2 '$sB' (want active/optimized, active/non-optimized)"
line "INFO initial: $(snapshot initial)"

# --- 2. fio on the map through the faults ----------------------------------------------------------
hdr "reference data, then fio through the faults"
REF=(--name=ref --filename="$MP" --offset=0 --size=32M --rw=write --bs=64k --ioengine=libaio --iodepth=4 --direct=1 --verify=crc32c --eta=never)
fio "${REF[@]}" --do_verify=1 --output="$OUT/fio-ref-write.txt" && grep -q 'err= 0' "$OUT/fio-ref-write.txt" \
  && pass "32 MiB of reference data written and verified through site A" || fail "reference write: $(grep -m1 -iE 'err=|verify' "$OUT/fio-ref-write.txt")"
rm -f /tmp/mp_*.log
fio --name=mp --filename="$MP" --offset=32M --size=128M --rw=randrw --bs=4k --ioengine=libaio --iodepth=8 --direct=1 \
    --time_based --runtime=3600 --verify=crc32c --verify_backlog=256 --verify_fatal=1 --do_verify=1 \
    --write_lat_log=/tmp/mp --log_avg_msec=0 --log_unix_epoch=1 --eta=never --output="$OUT/fio-mp.txt" &
FIO_PID=$!
FIO_T0=$(now_ms)
sleep 5
fio_alive() { kill -0 "$FIO_PID" 2>/dev/null; }
fio_alive && pass "fio runs on $MAP" || abort "fio ended at once: $(tail -n 5 "$OUT/fio-mp.txt")"
declare -A WIN_FROM WIN_TO   # fault windows for the stall analysis (guest ms)
WINDOWS=(cut restore kill restart)
# Every second: multipathd's paths, for the record of what the kernel and multipathd did when.
( while :; do echo "== $(date +%T.%3N)"; multipathd show paths raw format '%d %p %t %T %o' 2>&1; sleep 1; done >/tmp/paths-trace.txt ) &
TRACE_PID=$!
elapsed() { echo $(($(now_ms) - $1)); }

# a. replication link cut, the witness up
hdr "link cut"
t=$(now_ms); WIN_FROM[cut]=$t
ctl /link/cut >/dev/null || fail "control: link cut: $(tail -n1 "$OUT/control.log")"
if ms=$(wait_until 20 is_tpg "$SGB" 2 unavailable); then
  pass "link cut: site B's group 2 unavailable after $(secs "$ms") s (the paper: the secondary's paths go ALUA unavailable)"
else fail "link cut: site B's group 2 is '$(tpg "$SGB" 2)' 20 s after the cut (want unavailable)"; fi
sleep 3
during=$(snapshot link-cut); line "INFO link cut: $during"
sA=$(tpg "$SGA" 1)
[[ $sA == active/* ]] && is_path "$SDA" active && pass "link cut: site A keeps serving ($sA, path $SDA active)" || fail "link cut: site A: $during"
fio_alive || fail "link cut: fio ended: $(grep -m1 -iE 'err=|error' "$OUT/fio-mp.txt")"
t=$(now_ms); WIN_TO[cut]=$t; WIN_FROM[restore]=$t
ctl /link/restore >/dev/null || fail "control: link restore"
r=$(ctl '/wait/synced?timeout=120') && ok=1 || ok=0; el=$(elapsed "$t")
((ok)) && pass "link restored: both arrays Synced after $(secs "$el") s (resync $(echo "$r" | grep -o '"lastResyncBytes":[0-9]*' | head -n1 | cut -d: -f2) bytes)" \
  || fail "link restored: not Synced: $r"
timing "link restore to Synced: $el ms"
if ms=$(wait_until 30 is_tpg "$SGB" 2 active/non-optimized) && ms2=$(wait_until 30 is_path "$SDB" active); then
  pass "after the link: site B's group 2 active/non-optimized and its path active again ($(secs "$ms") s, $(secs "$ms2") s after Synced)"
else fail "after the link: $(snapshot link-after)"; fi
WIN_TO[restore]=$(now_ms)
line "INFO after link: $(snapshot link-after)"
sleep 3

# b. SIGKILL of the primary, the witness up
hdr "primary SIGKILL"
t=$(now_ms); WIN_FROM[kill]=$t
r=$(ctl /kill/primary) && killed=$(echo "$r" | field killed) || { killed=?; fail "control: kill primary: $r"; }
r=$(ctl '/wait/failover?timeout=60'); el=$(elapsed "$t")
if [[ $(echo "$r" | field ok) == true ]]; then
  pass "SIGKILL of site $killed: the witness let site $(echo "$r" | field primary) take over after $(secs "$el") s"
else fail "SIGKILL of site $killed: no failover within 60 s: $r"; fi
timing "primary SIGKILL to failover (arrays' view): $el ms"
if wait_until 60 is_active_tpg "$SGB" 2 >/dev/null && wait_until 60 is_path "$SDB" active >/dev/null; then
  el=$(elapsed "$t")
  pass "failover: site B's group 2 $(tpg "$SGB" 2), path $SDB active ($(secs "$el") s after the kill)"
  timing "primary SIGKILL to site B's path active in multipathd: $el ms"
else fail "failover: $(snapshot failover)"; fi
sleep 3
during=$(snapshot failover); line "INFO failed over: $during"
fio_alive || fail "failover: fio ended: $(grep -m1 -iE 'err=|error' "$OUT/fio-mp.txt")"
t=$(now_ms); WIN_TO[kill]=$t; WIN_FROM[restart]=$t
ctl "/start/$killed" >/dev/null || fail "control: start $killed again"
r=$(ctl '/wait/synced?timeout=300') && ok=1 || ok=0; el=$(elapsed "$t")
((ok)) && pass "site $killed started again: resync, both Synced after $(secs "$el") s ($(echo "$r" | grep -o '"role":"[^"]*","lastResyncBytes":[0-9]*,"lastResyncMs":[0-9]*' | paste -sd' '))" \
  || fail "site $killed started again: not Synced: $r"
timing "restart of site $killed to Synced: $el ms"
if ms=$(wait_until 90 is_path "$SDA" active) && wait_until 30 is_active_tpg "$SGA" 1 >/dev/null; then
  pass "recovery: site A's path $SDA active again, group 1 $(tpg "$SGA" 1) ($(secs "$ms") s after Synced)"
else fail "recovery: site A's path not back: $(snapshot recovered)"; fi
WIN_TO[restart]=$(now_ms)
line "INFO recovered: $(snapshot recovered)"
sleep 3
kill "$TRACE_PID" 2>/dev/null; cp /tmp/paths-trace.txt "$OUT/" 2>/dev/null

# --- 3. fio's verdict and the stalls -------------------------------------------------------------
hdr "fio verdict"
if fio_alive; then
  kill -INT "$FIO_PID"; wait "$FIO_PID"; rc=$?; FIO_PID=
  cat "$OUT/fio-mp.txt"
  if grep -q 'err= 0' "$OUT/fio-mp.txt" && ! grep -qiE 'verify.*(fail|bad)|bad magic|crc32c: verify' "$OUT/fio-mp.txt"; then
    pass "fio verify on $MAP through the link cut, the primary SIGKILL and the recovery: $(secs $(($(now_ms) - FIO_T0))) s, no I/O or verify error (exit $rc after SIGINT)"
  else fail "fio: $(grep -m2 -iE 'err=|verify' "$OUT/fio-mp.txt" | paste -sd' ')"; fi
else
  wait "$FIO_PID"; FIO_PID=; cat "$OUT/fio-mp.txt"
  fail "fio ended before it was stopped: $(grep -m2 -iE 'err=|verify|error' "$OUT/fio-mp.txt" | paste -sd' ')"
fi
grep -hE 'READ:|WRITE:' "$OUT/fio-mp.txt" | sed 's/^ */INFO fio /' | tee -a "$SUMMARY"
# The stall: the longest time without a completion inside each fault window (fio's per-I/O log, unix
# ms; columns time, latency ns, direction, size, offset), and the slowest single I/O in it.
stall() {      # stall FROM TO -> "gap_ms at_ms max_clat_ms n"
  awk -F', *' -v from="$1" -v to="$2" '
    BEGIN {last = from}
    $1 >= from && $1 <= to {n++; if ($1 - last > gap) {gap = $1 - last; at = last}; last = $1; if ($2 > lat) lat = $2}
    END {if (to - last > gap) {gap = to - last; at = last}; printf "%d %d %.0f %d\n", gap, at - from, lat / 1e6, n}' <(sort -t, -k1,1n /tmp/mp_clat.1.log)
}
if [[ -s /tmp/mp_clat.1.log ]]; then
  cp /tmp/mp_clat.1.log "$OUT/fio-clat.log" 2>/dev/null
  for w in "${WINDOWS[@]}"; do
    read -r gap at lat n <<<"$(stall "${WIN_FROM[$w]}" "${WIN_TO[$w]}")"
    timing "I/O stall, $w window ($(secs $((WIN_TO[$w] - WIN_FROM[$w]))) s, $n I/Os completed): longest gap without a completion $gap ms (from $(secs "$at") s into the window), slowest I/O $lat ms"
  done
  read -r gap at lat n <<<"$(stall "$FIO_T0" "${WIN_FROM[cut]}")"
  timing "before the faults ($n I/Os): longest gap $gap ms, slowest I/O $lat ms"
else warn "no fio completion log (/tmp/mp_clat.1.log): stalls not measured"; fi

# --- 4. read-back and the arrays compared ------------------------------------------------------------
hdr "read-back and comparison"
fio "${REF[@]}" --verify_only --output="$OUT/fio-ref-verify.txt" && grep -q 'err= 0' "$OUT/fio-ref-verify.txt" \
  && pass "the 32 MiB written through site A before the faults read back and verified after them" \
  || fail "reference read-back: $(grep -m1 -iE 'err=|verify' "$OUT/fio-ref-verify.txt")"
size=$(blockdev --getsize64 "$MP")
FULL=(--name=full --filename="$MP" --size="$size" --rw=write --bs=1M --ioengine=libaio --iodepth=4 --direct=1 --verify=crc32c --eta=never)
t=$(now_ms)
fio "${FULL[@]}" --do_verify=1 --output="$OUT/fio-full.txt" && grep -q 'err= 0' "$OUT/fio-full.txt" \
  && pass "full pass: $((size >> 20)) MiB written and verified through $MAP in $(secs $(($(now_ms) - t))) s" \
  || fail "full pass: $(grep -m1 -iE 'err=|verify' "$OUT/fio-full.txt")"
if [[ ${TARGET_METRO_CORRUPT:-0} == 1 ]]; then
  r=$(ctl '/corrupt?lba=4096') && line "INFO negative control: $r"
fi
fio "${FULL[@]}" --verify_only --output="$OUT/fio-full-verify.txt" && grep -q 'err= 0' "$OUT/fio-full-verify.txt" \
  && pass "full pass read back again and verified" || fail "full read-back: $(grep -m1 -iE 'err=|verify' "$OUT/fio-full-verify.txt")"
sha=$(dd if="$MP" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1)
r=$(ctl /compare); echo "$r" >"$OUT/compare.json"
if [[ $(echo "$r" | field identical) == true ]]; then
  pass "the arrays' volumes are identical, byte for byte ($(echo "$r" | field blocks) blocks)"
else fail "the arrays' volumes differ: $(echo "$r" | field differing) blocks, first at LBA $(echo "$r" | grep -o '"first":\[[^]]*\]') $(echo "$r" | field problem)"; fi
shaA=$(echo "$r" | grep -o '"A":"[0-9a-f]*"' | cut -d'"' -f4) shaB=$(echo "$r" | grep -o '"B":"[0-9a-f]*"' | cut -d'"' -f4)
[[ $sha == "$shaA" && $sha == "$shaB" ]] && pass "the map's sha256 (read by the guest) equals both arrays' files: ${sha:0:16}..." \
  || fail "sha256: guest ${sha:0:16}, site A ${shaA:0:16}, site B ${shaB:0:16}"
dmesg | grep -iE 'alua|I/O error|blk_update_request|multipath|connection.*error|session recovery' | tail -n 60 >"$OUT/dmesg-metro.txt"
grep -qE "I/O error.*dm-|dm-[0-9].*error" "$OUT/dmesg-metro.txt" && fail "the kernel logged I/O errors on the multipath map (dmesg-metro.txt)"
exit 0
