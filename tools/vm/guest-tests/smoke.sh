#!/bin/bash
# guest-tests/smoke.sh - Linux kernel initiator smoke test for an iSCSI target.
# Runs INSIDE the VM:   tools/vm/run.sh tools/vm/guest-tests/smoke.sh RESULT_DIR
#
# Steps: SendTargets discovery on $TARGET_HOST:$TARGET_PORT, portal fix-up, login, wait
# for the disk, SCSI pass-through checks with sg3_utils (INQUIRY, VPD pages, READ
# CAPACITY(16), REPORT TARGET PORT GROUPS), mkfs.ext4 + 64 MiB known-content file
# verified after umount / drop_caches / remount, a 10 s fio randrw job with crc32c
# verification, logout, login again (offering CRC32C header and data digests) and re-verify
# the file, logout.
#
# Env (from the host via run.sh):
#   TARGET_PORT  (3260)     TARGET_IQN   (default: first target discovered)
#   TARGET_LUN   (default: lowest LUN that is a disk)
#   TARGET_FIO_SECONDS (10) TARGET_FIO_SIZE (64M)
#   TARGET_DIGESTS_OPTIONAL (0): 1 makes a second login without CRC32C digests a WARN, not a FAIL
# Output in /results: summary.txt (PASS/WARN/FAIL lines, last line RESULT: ...),
#   ref.sha256 (sha256 of /ref.dat on the LUN), devid.txt (VPD 0x83 designators),
#   plus the raw output of every tool. Exit status 0 only if nothing FAILed.
# WARNING: destroys all data on the chosen LUN (mkfs).
set -uo pipefail

PORTAL=$TARGET_HOST:${TARGET_PORT:-3260}
OUT=/results
SUMMARY=$OUT/summary.txt
MNT=/mnt/lun
FIO_SECONDS=${TARGET_FIO_SECONDS:-10}
FIO_SIZE=${TARGET_FIO_SIZE:-64M}
: >"$SUMMARY"
npass=0 nwarn=0 nfail=0
IQN='' DEV='' SG=''

line() { echo "$*" | tee -a "$SUMMARY"; }
pass() { line "PASS $*"; npass=$((npass + 1)); }
warn() { line "WARN $*"; nwarn=$((nwarn + 1)); }
fail() { line "FAIL $*"; nfail=$((nfail + 1)); }
hdr() { printf '\n===== %s =====\n' "$*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }
first_line() { grep -m1 -v '^[[:space:]]*$' "$1" 2>/dev/null | cut -c1-160; }

finish() {      # always runs: leave no mount or session behind, write the verdict
  trap - EXIT
  mountpoint -q "$MNT" && umount "$MNT"
  if iscsiadm -m session >/dev/null 2>&1; then iscsiadm -m node -u >/dev/null 2>&1; fi
  local verdict=PASS
  ((nfail == 0)) || verdict=FAIL
  line "RESULT: $verdict ($npass passed, $nwarn warnings, $nfail failed)"
  [[ $verdict == PASS ]]
  exit $?
}
trap finish EXIT
abort() { fail "$*"; echo "smoke: aborting"; exit 1; }

# --- iSCSI helpers ----------------------------------------------------------------------
discover() {                       # sets IQN; the records are in $OUT/discovery.txt
  # Records only from stdout: iscsiadm's warnings on stderr (e.g. "Could not scan
  # /sys/class/iscsi_transport" before the transport module is up) are not records.
  iscsiadm -m discovery -t sendtargets -p "$PORTAL" >"$OUT/discovery.txt" 2>"$OUT/discovery.err" \
    || { cat "$OUT/discovery.txt" "$OUT/discovery.err"; return 1; }
  cat "$OUT/discovery.err" >&2
  cat "$OUT/discovery.txt"
  IQN=${TARGET_IQN:-$(awk 'NR == 1 {print $2}' "$OUT/discovery.txt")}
  [[ -n $IQN ]] && grep -qF " $IQN" "$OUT/discovery.txt"
}
fix_portals() {
  # Portal gotcha: a target listening on the host's 127.0.0.1 advertises 127.0.0.1:PORT,
  # which inside the guest is the guest itself. Replace each advertised portal of our
  # target with the one we can reach (the host, 10.0.2.2:PORT).
  local adv iqn
  while read -r adv iqn; do
    [[ $iqn == "$IQN" ]] || continue
    adv=${adv%,*}                    # drop ",TPGT"
    [[ $adv == "$PORTAL" ]] || iscsiadm -m node -T "$IQN" -p "$adv" -o delete
  done <"$OUT/discovery.txt"
  iscsiadm -m node -T "$IQN" -p "$PORTAL" >/dev/null 2>&1 \
    || iscsiadm -m node -T "$IQN" -p "$PORTAL" -o new >/dev/null
}
lun_disks() {                      # "LUN sdX" per attached disk of our session, by LUN
  iscsiadm -m session -P3 2>/dev/null | awk -v want="$IQN" '
    /^Target: / {mine = ($2 == want)}
    mine && /Channel .* Lun: / {lun = $NF}
    mine && /Attached scsi disk/ {print lun, $4}' | sort -n
}
wait_disk() {                      # sets DEV and SG; waits up to 30 s
  local lun name
  DEV='' SG=''
  for _ in $(seq 60); do
    while read -r lun name; do
      [[ -z ${TARGET_LUN:-} || $lun == "$TARGET_LUN" ]] || continue
      if [[ -b /dev/$name && $(cat "/sys/block/$name/size" 2>/dev/null || echo 0) -gt 0 ]]; then
        DEV=/dev/$name; break
      fi
    done < <(lun_disks)
    [[ -n $DEV ]] && break
    sleep 0.5
  done
  [[ -n $DEV ]] || return 1
  udevadm settle --timeout=10 || true
  SG=$(ls "/sys/block/${DEV#/dev/}/device/scsi_generic/" 2>/dev/null | head -n1)
  SG=${SG:+/dev/$SG}
}
login() {
  iscsiadm -m node -T "$IQN" -p "$PORTAL" --login
}
logout() {
  iscsiadm -m node -T "$IQN" -p "$PORTAL" --logout
}
devid() {                          # VPD 0x83 (Device Identification), as text
  sg_vpd -p di "$1" 2>/dev/null | sed '/^[[:space:]]*$/d'
}

# --- 1. discovery and login ---------------------------------------------------------------
hdr "discovery (SendTargets) on $PORTAL"
discover || abort "discovery on $PORTAL: no usable target (TARGET_IQN=${TARGET_IQN:-unset}): $(first_line "$OUT/discovery.txt")"
pass "discovery on $PORTAL: $(wc -l <"$OUT/discovery.txt") record(s); using $IQN;" \
     "advertised portal(s) $(awk '$2 == iqn {sub(/,.*/, "", $1); print $1}' iqn="$IQN" "$OUT/discovery.txt" | sort -u | paste -sd' ')"

hdr "login"
fix_portals || abort "could not set up node record $IQN @ $PORTAL"
t=$(now)
login >"$OUT/login.txt" 2>&1 || { cat "$OUT/login.txt"; abort "login to $IQN @ $PORTAL: $(first_line "$OUT/login.txt")"; }
cat "$OUT/login.txt"
pass "login to $IQN @ $PORTAL in $(since "$t") s as $(sed -n 's/^InitiatorName=//p' /etc/iscsi/initiatorname.iscsi)"
iscsiadm -m session -P3 >"$OUT/session-P3.txt" 2>&1
grep -E 'Iface Initiatorname|Current Portal|Persistent Portal|HeaderDigest|DataDigest|MaxRecvDataSegmentLength|FirstBurstLength|MaxBurstLength|ImmediateData|InitialR2T|MaxOutstandingR2T' "$OUT/session-P3.txt" | sed 's/^[[:space:]]*/  /'

hdr "waiting for the SCSI disk"
t=$(now)
wait_disk || { lsscsi -g; abort "no disk appeared within 30 s of login (LUNs: $(lun_disks | paste -sd' '))"; }
lsscsi -g | tee "$OUT/lsscsi.txt"
pass "disk $DEV (sg ${SG:-none}, $(($(blockdev --getsize64 "$DEV") / 1048576)) MiB," \
     "$(blockdev --getss "$DEV")-byte sectors) ready $(since "$t") s after login; LUNs: $(lun_disks | paste -sd' ')"

# --- 2. SCSI pass-through (SG_IO) ---------------------------------------------------------
hdr "sg3_utils"
if sg_inq "$DEV" >"$OUT/sg_inq.txt" 2>&1; then
  cat "$OUT/sg_inq.txt"
  field() { sed -n "s/^[[:space:]]*$1:[[:space:]]*//p" "$OUT/sg_inq.txt" | head -n1; }
  pass "sg_inq: '$(field 'Vendor identification')' '$(field 'Product identification')'" \
       "rev '$(field 'Product revision level')', $(grep -o 'version=0x[0-9a-f]*[^]]*\]' "$OUT/sg_inq.txt" | head -n1)"
else
  cat "$OUT/sg_inq.txt"; fail "sg_inq $DEV: $(first_line "$OUT/sg_inq.txt")"
fi
if [[ -n $SG ]]; then
  if sg_inq "$SG" >"$OUT/sg_inq_sgnode.txt" 2>&1; then pass "sg_inq via the sg node $SG"
  else fail "sg_inq $SG: $(first_line "$OUT/sg_inq_sgnode.txt")"; fi
fi
# sg_vpd's abbreviation for Supported VPD Pages (0x00) is "sv"; "sp" is SCSI Ports (0x88).
# Page 0x00 is mandatory (SPC-5 §7.7.17), so a failure fails the smoke test.
if sg_vpd -p sv "$DEV" >"$OUT/sg_vpd_sv.txt" 2>&1; then
  cat "$OUT/sg_vpd_sv.txt"
  pass "sg_vpd -p sv (0x00): supported VPD pages" \
       "$(grep -o '\[[a-z0-9]*\]' "$OUT/sg_vpd_sv.txt" | tr -d '[]' | paste -sd' ')"
else
  fail "sg_vpd -p sv (0x00, Supported VPD Pages) failed (exit $?): $(first_line "$OUT/sg_vpd_sv.txt")"
fi

# Device Identification (0x83) is mandatory (SPC-3+); the others are optional.
if sg_vpd -p di "$DEV" >"$OUT/sg_vpd_di.txt" 2>&1; then
  cat "$OUT/sg_vpd_di.txt"
  devid "$DEV" >"$OUT/devid.txt"
  pass "sg_vpd -p di (0x83): $(grep -ci 'designator type' "$OUT/sg_vpd_di.txt") designator(s)"
else
  cat "$OUT/sg_vpd_di.txt"; fail "sg_vpd -p di (0x83, mandatory): $(first_line "$OUT/sg_vpd_di.txt")"
fi
for page in 0x80 bl lbpv; do
  f=$OUT/sg_vpd_$page.txt
  if sg_vpd -p "$page" "$DEV" >"$f" 2>&1; then
    cat "$f"
    case $page in
      0x80) what="unit serial '$(sed -n 's/^[[:space:]]*Unit serial number:[[:space:]]*//p' "$f")'" ;;
      bl) what="$(grep -iE 'Maximum transfer length|Optimal transfer length|Maximum unmap LBA count' "$f" \
                 | sed 's/^[[:space:]]*//; s/ \[.*//' | paste -sd';')" ;;
      lbpv) what="$(grep -iE 'Unmap command supported|Write same \(1[06]\) with unmap' "$f" \
                 | sed 's/^[[:space:]]*//; s/ \[.*//' | paste -sd';')" ;;
    esac
    pass "sg_vpd -p $page: $what"
  else
    warn "sg_vpd -p $page (optional) failed (exit $?): $(first_line "$f")"
  fi
done
if sg_readcap -l "$DEV" >"$OUT/sg_readcap.txt" 2>&1; then
  cat "$OUT/sg_readcap.txt"
  pass "sg_readcap -l: $(grep -iE 'Last LBA|Logical block length|LBPME' "$OUT/sg_readcap.txt" \
        | sed 's/^[[:space:]]*//' | paste -sd';' | tr -s ' ')"
else
  cat "$OUT/sg_readcap.txt"; fail "sg_readcap -l (READ CAPACITY 16): $(first_line "$OUT/sg_readcap.txt")"
fi
if sg_rtpg -d "$DEV" >"$OUT/sg_rtpg.txt" 2>&1; then
  cat "$OUT/sg_rtpg.txt"
  pass "sg_rtpg: $(grep -ci 'target port group id' "$OUT/sg_rtpg.txt") target port group(s);" \
       "$(grep -i 'asymmetric access state' "$OUT/sg_rtpg.txt" | sed 's/^[[:space:]]*//' | paste -sd';')"
else
  rc=$?
  cat "$OUT/sg_rtpg.txt"
  warn "sg_rtpg (REPORT TARGET PORT GROUPS) failed (exit $rc: $(first_line "$OUT/sg_rtpg.txt")); no ALUA?"
fi

# --- 3. filesystem: known content across umount / drop_caches / remount -----------------
hdr "ext4 on $DEV"
t=$(now)
mkfs.ext4 -F -q -L arraysim-smoke "$DEV" >"$OUT/mkfs.txt" 2>&1 \
  || { cat "$OUT/mkfs.txt"; abort "mkfs.ext4 $DEV: $(first_line "$OUT/mkfs.txt")"; }
pass "mkfs.ext4 $DEV in $(since "$t") s"
mkdir -p "$MNT"
mount "$DEV" "$MNT" || abort "mount $DEV"
# 64 MiB of known content: 4 Mi 16-byte lines of a zero-padded counter, so every
# 4 KiB block differs from every other (misplaced blocks are detected, not just zeros).
seq -f '%015.0f' 0 4194303 >/tmp/ref.dat
want=$(sha256sum </tmp/ref.dat | cut -d' ' -f1)
echo "$want" >"$OUT/ref.sha256"
t=$(now)
cp /tmp/ref.dat "$MNT/ref.dat" && sync || abort "writing 64 MiB to $MNT/ref.dat"
wsecs=$(since "$t")
umount "$MNT" || abort "umount $MNT"
echo 3 >/proc/sys/vm/drop_caches
blockdev --flushbufs "$DEV"
mount "$DEV" "$MNT" || abort "remount $DEV"
t=$(now)
got=$(sha256sum <"$MNT/ref.dat" | cut -d' ' -f1)
rsecs=$(since "$t")
if [[ $got == "$want" ]]; then
  pass "64 MiB file intact after umount + drop_caches + remount (sha256 ${want:0:16}...;" \
       "write+sync ${wsecs} s, read ${rsecs} s)"
else
  fail "64 MiB file corrupted after remount: sha256 $got, expected $want;" \
       "first difference: $(cmp /tmp/ref.dat "$MNT/ref.dat" 2>&1 | head -n1)"
fi

# --- 4. fio with verification -----------------------------------------------------------
hdr "fio ${FIO_SECONDS} s 4k randrw, crc32c verify"
fio --name=smoke-randrw --filename="$MNT/fio.dat" --size="$FIO_SIZE" --rw=randrw --bs=4k \
    --ioengine=libaio --iodepth=8 --direct=1 --runtime="$FIO_SECONDS" --time_based \
    --verify=crc32c --verify_backlog=256 --verify_fatal=1 --do_verify=1 \
    --eta=never --output="$OUT/fio.txt"
rc=$?
cat "$OUT/fio.txt"
if ((rc == 0)) && grep -q 'err= 0' "$OUT/fio.txt" && ! grep -qi 'verify:.*bad\|crc32c.*mismatch' "$OUT/fio.txt"; then
  pass "fio randrw+verify: $(grep -E '^[[:space:]]*(read|write): IOPS' "$OUT/fio.txt" \
        | sed 's/^[[:space:]]*//; s/,.*//' | paste -sd' '), no errors"
else
  fail "fio randrw+verify (exit $rc): $(grep -iE 'err=|verify|mismatch' "$OUT/fio.txt" | head -n2 | paste -sd' ')"
fi
rm -f "$MNT/fio.dat"
umount "$MNT" || fail "umount after fio"

# --- 5. logout, login again, data still there ---------------------------------------------
hdr "logout / login / re-verify"
old_dev=$DEV
if logout >"$OUT/logout1.txt" 2>&1 && ! iscsiadm -m session >/dev/null 2>&1; then
  pass "logout: no sessions left"
else
  cat "$OUT/logout1.txt"; abort "logout: $(first_line "$OUT/logout1.txt"); sessions: $(iscsiadm -m session 2>&1 | head -n2)"
fi
for _ in $(seq 20); do [[ -b $old_dev ]] || break; sleep 0.5; done
[[ -b $old_dev ]] && warn "$old_dev still present after logout"
# The second session offers CRC32C header and data digests ("CRC32C,None": a target without
# them may still answer None), so the re-read of the file below runs through both digests.
for key in HeaderDigest DataDigest; do
  iscsiadm -m node -T "$IQN" -p "$PORTAL" -o update -n "node.conn[0].iscsi.$key" -v CRC32C,None >/dev/null 2>&1 \
    || warn "iscsiadm could not set node.conn[0].iscsi.$key"
done
login >"$OUT/login2.txt" 2>&1 || { cat "$OUT/login2.txt"; abort "second login: $(first_line "$OUT/login2.txt")"; }
wait_disk || abort "no disk after the second login"
iscsiadm -m session -P2 >"$OUT/session2-P2.txt" 2>&1
digests=$(awk '/HeaderDigest:|DataDigest:/ {printf "%s%s %s", sep, $1, $2; sep=", "}' "$OUT/session2-P2.txt")
if grep -q 'HeaderDigest: CRC32C' "$OUT/session2-P2.txt" && grep -q 'DataDigest: CRC32C' "$OUT/session2-P2.txt"; then
  pass "second login negotiated $digests"
elif [[ ${TARGET_DIGESTS_OPTIONAL:-0} == 1 ]]; then
  warn "second login: the target chose $digests (digests optional for this target)"
else
  fail "second login: CRC32C digests offered, negotiated $digests"
fi
if [[ -s $OUT/devid.txt ]]; then
  if [[ $(devid "$DEV") == "$(cat "$OUT/devid.txt")" ]]; then
    pass "second login: $DEV has the same VPD 0x83 identifiers"
  else
    fail "second login: $DEV reports different VPD 0x83 identifiers than before"
  fi
fi
mount "$DEV" "$MNT" || abort "mount after the second login"
got=$(sha256sum <"$MNT/ref.dat" | cut -d' ' -f1)
if [[ $got == "$want" ]]; then
  pass "data survives logout/login: /ref.dat sha256 matches"
else
  fail "after logout/login /ref.dat sha256 is $got, expected $want"
fi
umount "$MNT" || fail "final umount"
if logout >"$OUT/logout2.txt" 2>&1 && ! iscsiadm -m session >/dev/null 2>&1; then
  pass "final logout"
else
  fail "final logout: $(first_line "$OUT/logout2.txt")"
fi
exit 0      # the EXIT trap writes the verdict and sets the status
