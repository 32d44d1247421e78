#!/bin/bash
# guest-tests/array.sh - VAAI primitives and ALUA/multipath with the Linux kernel initiator.
# Runs INSIDE the VM:   tools/vm/run.sh tools/vm/guest-tests/array.sh RESULT_DIR
# The host side (kernel-initiator-test.sh, phase "array") starts arraysim with
# tools/vm/targets/array.yaml: two portals (TARGET_PORT in target port group 1, TARGET_PORT2
# in group 2), LUN 0 (implicit ALUA, used by dm-multipath) and LUN 1 (explicit+implicit ALUA,
# product EXPLICIT-DISK, kept out of multipath), and the admin API on TARGET_ADMIN_PORT.
#
#  1. discovery; both portals logged in; 2 LUNs x 2 paths
#  2. ALUA commands: sg_inq TPGS, sg_vpd -p di (relative port + port group designators), sg_vpd -p sp,
#     sg_rtpg (both formats), sg_stpg on LUN 1
#  3. VAAI: sg_vpd -p 0x8f / bl / lbpv, sg_compare_and_write (match; miscompare with the
#     INFORMATION offset), sg_write_same (data; --unmap), sg_unmap, sg_get_lba_status,
#     sg_xcopy LUN 0 -> LUN 1 verified, blkdiscard, fstrim on a mounted ext4
#  4. dm-multipath on LUN 0: one map, ALUA priorities; ext4 + fio verify while the admin API
#     flips the states (swap, standby, unavailable, back); per-portal I/O counters show I/O on
#     the optimized path each time; fio ends without an I/O or verify error
# Output: /results/summary.txt (PASS/WARN/FAIL lines, last line RESULT: ...).
set -uo pipefail

P1=$TARGET_HOST:${TARGET_PORT:-3260}
P2=$TARGET_HOST:${TARGET_PORT2:-3261}
ADMIN_PORT=${TARGET_ADMIN_PORT:-4260}
OUT=/results
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
npass=0 nwarn=0 nfail=0
IQN=''

line() { echo "$*" | tee -a "$SUMMARY"; }
pass() { line "PASS $*"; npass=$((npass + 1)); }
warn() { line "WARN $*"; nwarn=$((nwarn + 1)); }
fail() { line "FAIL $*"; nfail=$((nfail + 1)); }
hdr() { printf '\n===== %s =====\n' "$*"; }
first_line() { grep -m1 -v '^[[:space:]]*$' "$1" 2>/dev/null | cut -c1-200; }
check() {      # check DESCRIPTION CMD...: PASS/FAIL on the exit status, output in $OUT/<n>.txt
  local what=$1; shift
  local f; f=$OUT/cmd-$((npass + nfail + nwarn)).txt
  if "$@" >"$f" 2>&1; then pass "$what"; cat "$f"; return 0; fi
  local rc=$?
  cat "$f"; fail "$what (exit $rc): $(first_line "$f")"; return 1
}

finish() {
  trap - EXIT
  [[ -n ${FIO_PID:-} ]] && kill "$FIO_PID" 2>/dev/null
  mountpoint -q /mnt/mp && umount /mnt/mp
  mountpoint -q /mnt/trim && umount /mnt/trim
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
# dm-multipath's device section (step 4), from the harness: see multipath_conf below.
[[ -n ${TARGET_MULTIPATH_DEVICE:-} ]] \
  || abort "TARGET_MULTIPATH_DEVICE is not set (kernel-initiator-test.sh sets it: TARGET_MULTIPATH_DEVICE=\"\$(node tools/vm/multipath-device.mjs)\")"

# --- admin API on the host, through bash's /dev/tcp (no curl in the guest) ----------------
admin() {      # admin METHOD PATH [JSON] -> body on stdout
  local method=$1 path=$2 body=${3:-}
  exec 3<>"/dev/tcp/$TARGET_HOST/$ADMIN_PORT" || return 1
  printf '%s %s HTTP/1.0\r\nHost: arraysim\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
    "$method" "$path" "${#body}" "$body" >&3
  local resp; resp=$(cat <&3); exec 3<&-
  printf '%s' "$resp" | head -n1 | grep -q ' 200 ' || { printf '%s\n' "$resp" >&2; return 1; }
  printf '%s\n' "${resp#*$'\r\n\r\n'}"
}
set_state() {  # set_state TPG STATE
  admin POST /v1/alua "{\"tpg\":$1,\"state\":\"$2\",\"reason\":\"guest array.sh\",\"wait\":true}" >/dev/null
}
portal_writes() {  # "N1 N2": reads + writes served (GOOD) per portal so far
  admin GET /v1/status | tr -d ' \n' | grep -o '"stats":{"commands":[0-9]*,"reads":[0-9]*,"writes":[0-9]*' \
    | sed 's/.*"reads":\([0-9]*\),"writes":\([0-9]*\)/\1 \2/' | awk '{print $1 + $2}' | paste -sd' '
}

# --- 1. discovery and login on both portals ---------------------------------------------
hdr "discovery and login"
iscsiadm -m discovery -t sendtargets -p "$P1" >"$OUT/discovery.txt" 2>"$OUT/discovery.err" || abort "discovery: $(first_line "$OUT/discovery.err")"
cat "$OUT/discovery.txt"
IQN=${TARGET_IQN:-$(awk 'NR == 1 {print $2}' "$OUT/discovery.txt")}
nportals=$(grep -c " $IQN\$" "$OUT/discovery.txt")
((nportals == 2)) && pass "SendTargets lists both portals of $IQN" || fail "SendTargets lists $nportals portal(s), want 2"
# Portal gotcha: the target advertises 127.0.0.1:PORT, which is the guest itself here.
iscsiadm -m node -T "$IQN" -o delete >/dev/null 2>&1
for p in "$P1" "$P2"; do
  iscsiadm -m node -T "$IQN" -p "$p" -o new >/dev/null
  iscsiadm -m node -T "$IQN" -p "$p" --login >"$OUT/login-${p##*:}.txt" 2>&1 || abort "login $p: $(first_line "$OUT/login-${p##*:}.txt")"
done
pass "logged in through $P1 and $P2"
declare -A DEV   # DEV[portal:lun]=sdX
for _ in $(seq 60); do
  DEV=()
  while read -r portal lun dev; do DEV[$portal:$lun]=$dev; done < <(
    iscsiadm -m session -P3 2>/dev/null | awk '
      /Current Portal:/ {split($3, a, ","); split(a[1], b, ":"); port = b[2]}
      /Channel .* Lun: / {lun = $NF}
      /Attached scsi disk/ {print port, lun, $4}')
  ((${#DEV[@]} == 4)) && break
  sleep 0.5
done
udevadm settle --timeout=10
((${#DEV[@]} == 4)) || abort "want 2 LUNs x 2 paths, have: ${!DEV[*]} -> ${DEV[*]}"
port1=${P1##*:} port2=${P2##*:}
L0=/dev/${DEV[$port1:0]} L1=/dev/${DEV[$port1:1]} L1B=/dev/${DEV[$port2:1]}
pass "4 paths: LUN 0 ${DEV[$port1:0]}+${DEV[$port2:0]}, LUN 1 ${DEV[$port1:1]}+${DEV[$port2:1]}"
sg0=$(ls /sys/block/${L0#/dev/}/device/scsi_generic/); sg1=$(ls /sys/block/${L1#/dev/}/device/scsi_generic/)

# --- 2. ALUA commands -------------------------------------------------------------------
hdr "ALUA commands"
sg_inq "$L0" >"$OUT/inq0.txt" 2>&1 && grep -q 'TPGS=1' "$OUT/inq0.txt" && pass "sg_inq LUN 0: TPGS=1 (implicit)" || fail "sg_inq LUN 0 TPGS: $(grep -o 'TPGS=[0-9]' "$OUT/inq0.txt")"
sg_inq "$L1" >"$OUT/inq1.txt" 2>&1 && grep -q 'TPGS=3' "$OUT/inq1.txt" && pass "sg_inq LUN 1: TPGS=3 (implicit and explicit)" || fail "sg_inq LUN 1 TPGS: $(grep -o 'TPGS=[0-9]' "$OUT/inq1.txt")"
sg_vpd -p di "$L1B" >"$OUT/di.txt" 2>&1; cat "$OUT/di.txt"
if grep -qi 'Relative target port: 0x2' "$OUT/di.txt" && grep -qi 'Target port group: 0x2' "$OUT/di.txt"; then
  pass "sg_vpd -p di via portal 2: relative target port 0x2, target port group 0x2"
else fail "sg_vpd -p di via portal 2 lacks relative port / port group 2 designators"; fi
sg_vpd -p sp "$L1B" >"$OUT/sp.txt" 2>&1; cat "$OUT/sp.txt"
if grep -q 'Relative port=1' "$OUT/sp.txt" && grep -q 'Relative port=2' "$OUT/sp.txt"; then
  pass "sg_vpd -p sp (SCSI Ports, 0x88): relative ports 1 and 2"
else fail "sg_vpd -p sp: want relative ports 1 and 2: $(grep -i 'relative port' "$OUT/sp.txt" | paste -sd';')"; fi
check "sg_rtpg (length-only header)" sg_rtpg "$L0"
check "sg_rtpg -e (extended header)" sg_rtpg -e -d "$L0"
check "sg_stpg on LUN 1: group 2 to standby" sg_stpg --tp=2 --standby "$L1"
sg_rtpg -d "$L1" >"$OUT/rtpg-after-stpg.txt" 2>&1
awk '/target port group id : 0x2/ {f=1} f && /asymmetric access state/ {print; exit}' "$OUT/rtpg-after-stpg.txt" | grep -qi 'standby' \
  && pass "sg_rtpg after STPG: group 2 standby, status 'altered by SET TARGET PORT GROUPS'" \
  || fail "sg_rtpg after STPG: $(grep -i 'access state' "$OUT/rtpg-after-stpg.txt" | paste -sd';')"
grep -qi 'status code : 0x01' "$OUT/rtpg-after-stpg.txt" || fail "RTPG status code is not 01h (altered by SET TARGET PORT GROUPS)"
check "sg_stpg on LUN 1: group 2 back to active/non-optimized" sg_stpg --tp=2 --active "$L1"
sg_turs "$L0" >/dev/null 2>&1; sg_turs "$L1" >/dev/null 2>&1   # consume UAs

# --- 3. VAAI -------------------------------------------------------------------------------
hdr "VAAI: VPD pages"
check "sg_vpd -p 0x8f (third-party copy)" sg_vpd -p 0x8f "$L1"
check "sg_vpd -p bl (block limits)" sg_vpd -p bl "$L1"
check "sg_vpd -p lbpv (logical block provisioning)" sg_vpd -p lbpv "$L1"
bs=$(blockdev --getss "$L1")

hdr "COMPARE AND WRITE"
head -c "$bs" /dev/urandom >/tmp/a; head -c "$bs" /dev/urandom >/tmp/b
dd if=/tmp/a of="$L1" bs="$bs" seek=100 count=1 oflag=direct status=none
cat /tmp/a /tmp/b >/tmp/ab
check "sg_compare_and_write: compare matches, data written" sg_compare_and_write --in=/tmp/ab --lba=100 --num=1 "$L1"
dd if="$L1" bs="$bs" skip=100 count=1 iflag=direct status=none | cmp -s - /tmp/b && pass "block 100 now holds the write data" || fail "block 100 does not hold the write data"
# Miscompare: expected data differs from block 100 (= b) first at byte 37.
cp /tmp/b /tmp/c; printf '\xa5' | dd of=/tmp/c bs=1 seek=37 conv=notrunc status=none
cmp -s /tmp/b /tmp/c && printf '\x5a' | dd of=/tmp/c bs=1 seek=37 conv=notrunc status=none
cat /tmp/c /tmp/a >/tmp/ca
sg_compare_and_write -v --in=/tmp/ca --lba=100 --num=1 "$L1" >"$OUT/caw-miscompare.txt" 2>&1; rc=$?
cat "$OUT/caw-miscompare.txt"
if ((rc == 14)) && grep -qiE 'info(rmation)? fld=0x25|Info fld=0x25|information.*0x25|\[37\]' "$OUT/caw-miscompare.txt"; then
  pass "sg_compare_and_write miscompare: exit 14 (MISCOMPARE), INFORMATION = 37 (first differing byte)"
else fail "sg_compare_and_write miscompare: exit $rc, $(grep -iE 'miscompare|info' "$OUT/caw-miscompare.txt" | head -n2 | paste -sd' ')"; fi
dd if="$L1" bs="$bs" skip=100 count=1 iflag=direct status=none | cmp -s - /tmp/b && pass "miscompare wrote nothing" || fail "miscompare changed block 100"

hdr "WRITE SAME, UNMAP, GET LBA STATUS"
head -c "$bs" /dev/urandom >/tmp/pat
check "sg_write_same (64 blocks from one block of data)" sg_write_same --in=/tmp/pat --lba=1000 --num=64 "$L1"
ok=1; for i in 0 31 63; do dd if="$L1" bs="$bs" skip=$((1000 + i)) count=1 iflag=direct status=none | cmp -s - /tmp/pat || ok=0; done
((ok)) && pass "write same: blocks 1000..1063 hold the pattern" || fail "write same: pattern not found"
check "sg_write_same --unmap (2048 blocks)" sg_write_same --unmap --lba=2048 --num=2048 "$L1"
check "sg_unmap (4096 blocks)" sg_unmap --lba=8192 --num=4096 "$L1"
sg_get_lba_status --lba=1000 "$L1" >"$OUT/lbas-1000.txt" 2>&1; cat "$OUT/lbas-1000.txt"
sg_get_lba_status --lba=8192 "$L1" >"$OUT/lbas-8192.txt" 2>&1; cat "$OUT/lbas-8192.txt"
grep -qiE 'mapped|0x0' "$OUT/lbas-1000.txt" && grep -qiE 'deallocated|unmapped|0x1' "$OUT/lbas-8192.txt" \
  && pass "sg_get_lba_status: LBA 1000 mapped, LBA 8192 deallocated" \
  || fail "sg_get_lba_status: $(first_line "$OUT/lbas-1000.txt") / $(first_line "$OUT/lbas-8192.txt")"
dd if="$L1" bs="$bs" skip=8192 count=1 iflag=direct status=none | cmp -s - <(head -c "$bs" /dev/zero) && pass "unmapped blocks read as zeros (LBPRZ)" || fail "unmapped block not zero"

hdr "EXTENDED COPY LUN 0 -> LUN 1"
head -c $((8 * 1024 * 1024)) /dev/urandom >/tmp/xsrc
dd if=/tmp/xsrc of="$L0" bs=1M oflag=direct status=none
check "sg_xcopy 8 MiB from LUN 0 to LUN 1 at 64 MiB" sg_xcopy if=/dev/$sg0 of=/dev/$sg1 bs="$bs" count=$((8 * 1024 * 1024 / bs)) seek=$((64 * 1024 * 1024 / bs))
dd if="$L1" bs=1M skip=64 count=8 iflag=direct status=none | cmp -s - /tmp/xsrc && pass "xcopy destination matches the source" || fail "xcopy destination differs from the source"

hdr "blkdiscard and fstrim"
mkfs.ext4 -F -q "$L1" >/dev/null 2>&1 || fail "mkfs.ext4 on LUN 1"
mkdir -p /mnt/trim && mount -o nodiscard "$L1" /mnt/trim || abort "mount LUN 1"
dd if=/dev/urandom of=/mnt/trim/big bs=1M count=32 status=none && sync && rm /mnt/trim/big && sync
check "fstrim -v on ext4 over LUN 1" fstrim -v /mnt/trim
umount /mnt/trim
check "blkdiscard the whole of LUN 1" blkdiscard "$L1"
sg_get_lba_status --lba=0 "$L1" >"$OUT/lbas-after-discard.txt" 2>&1; cat "$OUT/lbas-after-discard.txt"

# --- 4. dm-multipath on LUN 0 --------------------------------------------------------------
hdr "dm-multipath"
# The device section is src/lab/snippets.ts's MULTIPATH_CONF (the one lab up prints), handed in by
# the harness as TARGET_MULTIPATH_DEVICE (tools/vm/multipath-device.mjs); the defaults (fast path
# checks for the measurements below) and the blacklist are this test's own.
multipath_conf() {
  cat <<'CONF'
defaults {
  user_friendly_names yes
  find_multipaths no
  polling_interval 1
  max_polling_interval 2
}
blacklist {
  device {
    vendor "ARRAYSIM"
    product "EXPLICIT-DISK"
  }
}
CONF
  printf '%s\n' "$TARGET_MULTIPATH_DEVICE"
}
multipath_conf >/etc/multipath.conf
modprobe dm_multipath 2>/dev/null; modprobe scsi_dh_alua 2>/dev/null
systemctl start multipathd 2>/dev/null || multipathd
sleep 2; multipath -r >/dev/null 2>&1; sleep 2
multipath -ll >"$OUT/multipath-ll.txt" 2>&1; cat "$OUT/multipath-ll.txt"
MP=/dev/mapper/$(awk '/ARRAYSIM/ {print $1; exit}' "$OUT/multipath-ll.txt")
# udev makes the /dev/mapper node after the map exists; on a loaded host (TCG) that can take
# seconds (a CI run at load 24 listed the map with both priorities but had no node yet).
udevadm settle -t 20 2>/dev/null || true
for _ in $(seq 1 40); do [[ -b $MP ]] && break; sleep 0.5; done
if [[ -b $MP ]] && grep -q 'prio=50' "$OUT/multipath-ll.txt" && grep -q 'prio=10' "$OUT/multipath-ll.txt"; then
  pass "multipath -ll: one map $MP, path groups prio=50 (optimized) and prio=10 (non-optimized)"
else abort "multipath map with ALUA priorities not found"; fi
mkfs.ext4 -F -q "$MP" >/dev/null 2>&1 || abort "mkfs on $MP"
mkdir -p /mnt/mp && mount "$MP" /mnt/mp || abort "mount $MP"
# fio with crc32c verification in 10 s rounds until the state flips are done (a round that
# fails stops the loop and is reported).
rm -f /tmp/fio-stop /tmp/fio-failed
(
  n=0
  while [[ ! -e /tmp/fio-stop ]]; do
    n=$((n + 1))
    fio --name=mp --filename=/mnt/mp/fio.dat --size=64M --rw=randrw --bs=4k --ioengine=libaio --iodepth=8 \
        --direct=1 --runtime=10 --time_based --verify=crc32c --verify_backlog=256 --verify_fatal=1 \
        --do_verify=1 --eta=never --output="$OUT/fio-mp-$n.txt" \
      && grep -q 'err= 0' "$OUT/fio-mp-$n.txt" || { echo "$n" >/tmp/fio-failed; break; }
  done
  echo "$n" >/tmp/fio-rounds
) &
FIO_PID=$!
measure() {    # measure LABEL OPT_PORTAL(1|2): within 45 s, a 2 s window where the optimized portal carries the I/O
  local label=$1 want=$2 a b d1 d2 on off t0=$SECONDS
  while ((SECONDS - t0 < 45)); do
    a=($(portal_writes)); sleep 2; b=($(portal_writes))
    d1=$((b[0] - a[0])); d2=$((b[1] - a[1]))
    on=$d1 off=$d2; ((want == 2)) && on=$d2 off=$d1
    if ((on > 0 && on >= 9 * off)); then
      pass "$label: I/O moved to portal $want within $((SECONDS - t0)) s ($d1 / $d2 I/Os on portal 1 / 2 in 2 s)"
      multipath -ll >>"$OUT/multipath-steps.txt" 2>&1
      return 0
    fi
  done
  multipath -ll >>"$OUT/multipath-steps.txt" 2>&1
  fail "$label: I/O not on portal $want after 45 s (last 2 s: $d1 / $d2 I/Os on portal 1 / 2)"
}
measure "initial (group 1 optimized)" 1
set_state 1 active/non-optimized && set_state 2 active/optimized && measure "swap: group 2 optimized" 2
set_state 2 active/non-optimized && set_state 1 active/optimized && measure "swap back: group 1 optimized" 1
set_state 2 active/optimized && set_state 1 standby && measure "group 1 standby" 2
set_state 1 unavailable && measure "group 1 unavailable" 2
set_state 1 active/optimized && set_state 2 active/non-optimized && measure "back: group 1 optimized" 1
touch /tmp/fio-stop
wait "$FIO_PID"; FIO_PID=
rounds=$(cat /tmp/fio-rounds 2>/dev/null || echo 0)
if [[ -e /tmp/fio-failed ]]; then
  r=$(cat /tmp/fio-failed); cat "$OUT/fio-mp-$r.txt"
  fail "fio over multipath: round $r of $rounds failed: $(grep -iE 'err=|verify' "$OUT/fio-mp-$r.txt" | head -n2 | paste -sd' ')"
elif ((rounds > 0)); then
  pass "fio verify over multipath through all state changes: $rounds rounds of 10 s, no I/O or verify error"
else fail "fio over multipath did not run"; fi
dmesg | grep -iE 'alua|I/O error|blk_update_request' | tail -n 20 >"$OUT/dmesg-alua.txt"
grep -qi 'I/O error' "$OUT/dmesg-alua.txt" && warn "kernel logged I/O errors on a path (see dmesg-alua.txt)"
umount /mnt/mp
exit 0
