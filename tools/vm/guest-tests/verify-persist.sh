#!/bin/bash
# guest-tests/verify-persist.sh - check that data written by an earlier run is still on
# the LUN (e.g. after the target process was restarted on the same backing file).
# Runs INSIDE the VM:  TARGET_EXPECT_SHA=... tools/vm/run.sh tools/vm/guest-tests/verify-persist.sh DIR
#
# Logs in (same discovery / portal fix-up as smoke.sh), runs e2fsck -fn on the LUN's
# ext4 (no changes), mounts it read-only, compares the sha256 of /ref.dat with
# TARGET_EXPECT_SHA, and logs out. It never writes to the LUN.
#
# Env: TARGET_PORT (3260), TARGET_IQN, TARGET_LUN as in smoke.sh;
#      TARGET_EXPECT_SHA   sha256 of /ref.dat (smoke.sh leaves it in ref.sha256). If unset,
#                          the sha256 of smoke.sh's generator output is used.
#      TARGET_EXPECT_DEVID  optional: the VPD 0x83 text seen before (smoke.sh's devid.txt);
#                          a difference is a WARN, or a FAIL with TARGET_STRICT_DEVID=1.
# Output: /results/summary.txt (PASS/WARN/FAIL lines + RESULT), exit 0 only without FAIL.
set -uo pipefail

PORTAL=$TARGET_HOST:${TARGET_PORT:-3260}
OUT=/results
SUMMARY=$OUT/summary.txt
MNT=/mnt/lun
: >"$SUMMARY"
npass=0 nwarn=0 nfail=0
IQN='' DEV=''

line() { echo "$*" | tee -a "$SUMMARY"; }
pass() { line "PASS $*"; npass=$((npass + 1)); }
warn() { line "WARN $*"; nwarn=$((nwarn + 1)); }
fail() { line "FAIL $*"; nfail=$((nfail + 1)); }
first_line() { grep -m1 -v '^[[:space:]]*$' "$1" 2>/dev/null | cut -c1-160; }
finish() {
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
abort() { fail "$*"; exit 1; }

if [[ -n ${TARGET_EXPECT_SHA:-} ]]; then
  want=$TARGET_EXPECT_SHA
else
  want=$(seq -f '%015.0f' 0 4194303 | sha256sum | cut -d' ' -f1)
  line "INFO TARGET_EXPECT_SHA not set; expecting smoke.sh's 64 MiB pattern ($want)"
fi

# Discovery and the portal gotcha (see smoke.sh): log in through the portal we can reach.
iscsiadm -m discovery -t sendtargets -p "$PORTAL" >"$OUT/discovery.txt" 2>"$OUT/discovery.err" \
  || abort "discovery on $PORTAL: $(first_line "$OUT/discovery.err")"
IQN=${TARGET_IQN:-$(awk 'NR == 1 {print $2}' "$OUT/discovery.txt")}
grep -qF " $IQN" "$OUT/discovery.txt" 2>/dev/null && [[ -n $IQN ]] \
  || abort "target ${IQN:-?} not in the SendTargets reply: $(first_line "$OUT/discovery.txt")"
while read -r adv iqn; do
  [[ $iqn == "$IQN" && ${adv%,*} != "$PORTAL" ]] && iscsiadm -m node -T "$IQN" -p "${adv%,*}" -o delete
done <"$OUT/discovery.txt"
iscsiadm -m node -T "$IQN" -p "$PORTAL" >/dev/null 2>&1 || iscsiadm -m node -T "$IQN" -p "$PORTAL" -o new >/dev/null
iscsiadm -m node -T "$IQN" -p "$PORTAL" --login >"$OUT/login.txt" 2>&1 \
  || abort "login to $IQN @ $PORTAL: $(first_line "$OUT/login.txt")"
pass "discovery + login to $IQN @ $PORTAL"

for _ in $(seq 60); do
  while read -r lun name; do
    [[ -z ${TARGET_LUN:-} || $lun == "$TARGET_LUN" ]] || continue
    [[ -b /dev/$name && $(cat "/sys/block/$name/size" 2>/dev/null || echo 0) -gt 0 ]] && { DEV=/dev/$name; break; }
  done < <(iscsiadm -m session -P3 2>/dev/null | awk -v want="$IQN" '
             /^Target: / {mine = ($2 == want)}
             mine && /Channel .* Lun: / {lun = $NF}
             mine && /Attached scsi disk/ {print lun, $4}' | sort -n)
  [[ -n $DEV ]] && break
  sleep 0.5
done
[[ -n $DEV ]] || abort "no disk appeared within 30 s of login"
udevadm settle --timeout=10 || true
lsscsi -g | tee "$OUT/lsscsi.txt"
pass "disk $DEV ($(($(blockdev --getsize64 "$DEV") / 1048576)) MiB)"

sg_vpd -p di "$DEV" 2>/dev/null | sed '/^[[:space:]]*$/d' >"$OUT/devid.txt"
if [[ -n ${TARGET_EXPECT_DEVID:-} ]]; then
  if [[ $(cat "$OUT/devid.txt") == "$TARGET_EXPECT_DEVID" ]]; then
    pass "VPD 0x83 identifiers unchanged"
  elif [[ ${TARGET_STRICT_DEVID:-0} == 1 ]]; then
    fail "VPD 0x83 identifiers changed (diff in $OUT/devid.diff)"
  else
    warn "VPD 0x83 identifiers changed (diff in devid.diff)"
  fi
  diff <(echo "$TARGET_EXPECT_DEVID") "$OUT/devid.txt" >"$OUT/devid.diff"
fi

e2fsck -fn "$DEV" >"$OUT/e2fsck.txt" 2>&1
rc=$?
if ((rc == 0)); then
  pass "e2fsck -fn: filesystem clean ($(tail -n1 "$OUT/e2fsck.txt"))"
else
  cat "$OUT/e2fsck.txt"
  fail "e2fsck -fn reports problems (exit $rc): $(grep -v '^Pass' "$OUT/e2fsck.txt" | head -n2 | paste -sd' ')"
fi
mkdir -p "$MNT"
echo 3 >/proc/sys/vm/drop_caches
mount -o ro "$DEV" "$MNT" || abort "mount -o ro $DEV"
if [[ ! -f $MNT/ref.dat ]]; then
  fail "/ref.dat missing on $DEV (files: $(ls "$MNT" | head -n5 | paste -sd' '))"
else
  got=$(sha256sum <"$MNT/ref.dat" | cut -d' ' -f1)
  if [[ $got == "$want" ]]; then
    pass "/ref.dat ($(stat -c %s "$MNT/ref.dat") bytes) has the expected sha256 ${want:0:16}..."
  else
    fail "/ref.dat sha256 is $got, expected $want"
  fi
fi
umount "$MNT" || fail "umount"
if iscsiadm -m node -T "$IQN" -p "$PORTAL" --logout >"$OUT/logout.txt" 2>&1 && ! iscsiadm -m session >/dev/null 2>&1; then
  pass "logout"
else
  fail "logout: $(first_line "$OUT/logout.txt")"
fi
exit 0
