#!/bin/bash
# guest-tests/splitter.sh - the VAAI corruption story with the Linux kernel initiator (issue 11).
# Runs INSIDE the VM:   tools/vm/run.sh tools/vm/guest-tests/splitter.sh RESULT_DIR
# The host side is tools/vm/splitter-proof.sh: arraysim with tools/vm/targets/splitter.yaml, one
# target per case, each LUN protected by its own consistency group with a local copy "local".
# TARGET_PHASE lists what to do, in order (default "discard"):
#
#  discard       four targets: ws-reject, ws-ignore (splitter writesame=reject / =ignore) get
#                `blkdiscard -z` (BLKZEROOUT: WRITE SAME, UNMAP=0), unmap-reject, unmap-ignore get
#                `blkdiscard` (BLKDISCARD: UNMAP) over the first 2 MiB, which hold random data.
#                SCSI mid-layer logging of failed commands is on around the call (sd disables
#                WRITE SAME quietly, see below). Records the sd/queue limits before and after, the
#                kernel log, whether the range reads zeros. The host runs verify afterwards.
#  discard-support  ws-support, unmap-support: the same under writesame=support / unmap=support.
#  xcopy         xc-support, xc-reject, xc-ignore (xcopy=P,ats=P): sg_xcopy within the LU and
#                sg_compare_and_write; what the host reads back afterwards.
#  support-write target support (every primitive supported): mkfs.ext4, a fio verify job, a copy of
#                /etc; /results/support.sha256 (every file), support-actions.txt (fio's 2nd file).
#  support-inspect  (after the host's bookmark, its zeroing of that file and image access to the
#                bookmark) the image through support-local, read-only: every sha256 as at the
#                bookmark (TARGET_SUPPORT_SHA), fio --verify_only; production differs in that file.
#  dd-seeding    the field notes' dd seeding on rpsync (splitter-proof.sh --seeding).
#  ext4-write    target fabric (rp-fabric-2010: every primitive ignored): mkfs.ext4, three 4 MiB
#                "virtual disks" and a small file; writes /results/host-actions.txt (which LBAs the
#                host clones and zeroes, from filefrag) and /results/files.sha256.
#  ext4-inspect  (after the host cloned and zeroed, and enabled image access on copy "local")
#                production (fabric) and the replica image (fabric-local) both mounted read-only;
#                which files differ and how. TARGET_BEFORE_SHA: files.sha256 of ext4-write;
#                TARGET_EXPECT_REPLICA=consistent (the --workaround control): every file equal.
#
# Output: /results/summary.txt (PASS/WARN/FAIL lines, last line RESULT: ...), one folder per case.
set -uo pipefail

P=$TARGET_HOST:${TARGET_PORT:-3260}
PHASES=${TARGET_PHASE:-discard}
BASE=${TARGET_IQN_BASE:-iqn.2026-12.dev.arraysim}
RANGE=$((2 * 1024 * 1024))                 # bytes zeroed / discarded in the discard phase
FILE_MIB=4                                 # size of each "virtual disk" in the ext4 phase
OUT=/results
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
npass=0 nwarn=0 nfail=0

line() { echo "$*" | tee -a "$SUMMARY"; }
pass() { line "PASS $*"; npass=$((npass + 1)); }
warn() { line "WARN $*"; nwarn=$((nwarn + 1)); }
fail() { line "FAIL $*"; nfail=$((nfail + 1)); }
expect() {     # expect DESCRIPTION TEST...: PASS when the test command succeeds
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
hdr() { printf '\n===== %s =====\n' "$*"; }
first_line() { grep -m1 -v '^[[:space:]]*$' "$1" 2>/dev/null | cut -c1-200; }

finish() {
  trap - EXIT
  for m in /mnt/ds /mnt/prod /mnt/image /mnt/s /mnt/sprod /mnt/simg; do mountpoint -q "$m" && umount "$m"; done
  iscsiadm -m node -u >/dev/null 2>&1
  local verdict=PASS
  ((nfail == 0)) || verdict=FAIL
  line "RESULT: $verdict ($npass passed, $nwarn warnings, $nfail failed)"
  [[ $verdict == PASS ]]
  exit $?
}
trap finish EXIT
abort() { fail "$*"; exit 1; }

hdr "discovery"
iscsiadm -m discovery -t sendtargets -p "$P" >"$OUT/discovery.txt" 2>"$OUT/discovery.err" \
  || abort "discovery: $(first_line "$OUT/discovery.err")"
cat "$OUT/discovery.txt"

login() {      # login IQN -> /dev/sdX of its LUN 0 on stdout
  local iqn=$1 dev=''
  # The portal gotcha (README): the target advertises 127.0.0.1, the guest reaches it as 10.0.2.2.
  iscsiadm -m node -T "$iqn" -o delete >/dev/null 2>&1
  iscsiadm -m node -T "$iqn" -p "$P" -o new >/dev/null || return 1
  iscsiadm -m node -T "$iqn" -p "$P" --login >"$OUT/login-${iqn##*:}.txt" 2>&1 || return 1
  for _ in $(seq 100); do
    dev=$(iscsiadm -m session -P3 2>/dev/null \
      | awk -v t="$iqn" '/^Target:/ {cur = $2} /Attached scsi disk/ && cur == t {print $4; exit}')
    [[ -n $dev && -b /dev/$dev ]] && break
    sleep 0.2
  done
  [[ -n $dev ]] || return 1
  udevadm settle --timeout=10
  echo "/dev/$dev"
}
logout() { iscsiadm -m node -T "$1" -p "$P" --logout >/dev/null 2>&1; }

# The kernel's view of the disk's offloads: sd's scsi_disk attributes and the block queue limits.
limits() {     # limits sdX -> one line of name=value
  local b=$1 sdk
  sdk=$(ls -d /sys/block/"$b"/device/scsi_disk/*)
  local f s=''
  for f in provisioning_mode zeroing_mode max_write_same_blocks; do s+="$f=$(cat "$sdk/$f") "; done
  for f in write_zeroes_max_bytes discard_max_bytes; do s+="$f=$(cat /sys/block/"$b"/queue/$f) "; done
  echo "${s% }"
}
field() { tr ' ' '\n' <"$1" | sed -n "s/^$2=//p"; }   # field FILE NAME
# SCSI mid-layer logging, MLCOMPLETE level 1: the kernel logs every command that completes with an
# error (result, CDB, sense). sg3_utils' scsi_logging_level knows the bit layout.
scsi_log() { scsi_logging_level -s --mlcomplete="$1" >/dev/null 2>&1 || warn "scsi_logging_level --mlcomplete=$1 failed"; }
kmark() { echo "splitter.sh: $*" >/dev/kmsg; }
dmesg_since() { dmesg | awk -v m="splitter.sh: $1" 'index($0, m) {f = 1} f'; }   # dmesg_since MARK-TEXT
reads_zero() { cmp -s -n "$RANGE" <(dd if="$1" bs=1M count=$((RANGE >> 20)) iflag=direct status=none) /dev/zero; }
sha_range() { dd if="$1" bs=1M count=$((RANGE >> 20)) iflag=direct status=none | sha256sum | cut -d' ' -f1; }

# --- discard: blkdiscard -z / blkdiscard under reject and ignore ----------------------------
discard_case() {   # discard_case NAME zeroout|discard reject|ignore
  local name=$1 op=$2 policy=$3 dir=$OUT/$1 d b rc rc2 sha
  local -a cmd=(blkdiscard -o 0 -l "$RANGE")
  [[ $op == zeroout ]] && cmd=(blkdiscard -z -o 0 -l "$RANGE")
  local prim=unmap; [[ $op == zeroout ]] && prim=writesame
  hdr "$name: ${cmd[*]} under splitter $prim=$policy"
  mkdir -p "$dir"
  d=$(login "$BASE:$name") || { fail "$name: login to $BASE:$name: $(first_line "$OUT/login-$name.txt")"; return; }
  b=${d#/dev/}
  head -c "$RANGE" /dev/urandom >/tmp/data
  dd if=/tmp/data of="$d" bs=1M oflag=direct status=none || { fail "$name: writing the data"; logout "$BASE:$name"; return; }
  sha=$(sha256sum </tmp/data | cut -d' ' -f1)
  limits "$b" >"$dir/limits-before.txt"
  kmark "$name: ${cmd[*]} $d"
  scsi_log 1
  "${cmd[@]}" "$d" >"$dir/blkdiscard.txt" 2>&1; rc=$?
  scsi_log 0
  limits "$b" >"$dir/limits-after.txt"
  # The same call again: what the kernel does now that it has (or has not) turned the offload off.
  "${cmd[@]}" "$d" >"$dir/blkdiscard-again.txt" 2>&1; rc2=$?
  dmesg_since "$name: ${cmd[*]} $d" >"$dir/dmesg.txt"
  {
    echo "device $d ($BASE:$name), ${cmd[*]} $d: exit $rc; again: exit $rc2"
    cat "$dir/blkdiscard.txt" "$dir/blkdiscard-again.txt"
    echo "before: $(<"$dir/limits-before.txt")"
    echo "after:  $(<"$dir/limits-after.txt")"
    echo "kernel log:"; sed 's/^/  /' "$dir/dmesg.txt"
  } | tee "$dir/report.txt"
  local zero=no; reads_zero "$d" && zero=yes
  echo "first $((RANGE >> 20)) MiB read as zeros: $zero" | tee -a "$dir/report.txt"
  local refused=no
  grep -q 'Illegal Request' "$dir/dmesg.txt" && grep -q 'Invalid command operation code' "$dir/dmesg.txt" && refused=yes

  case $op/$policy in
    zeroout/reject)
      expect "$name: blkdiscard -z succeeded (exit $rc) and the range reads zeros: the kernel wrote them itself" \
        test "$rc" = 0 -a "$zero" = yes
      expect "$name: the kernel logged the refused WRITE SAME: $(grep -m1 -o 'CDB: Write [Ss]ame.*' "$dir/dmesg.txt")" \
        grep -q 'CDB: Write [Ss]ame' "$dir/dmesg.txt"
      expect "$name: sd turned WRITE SAME off: max_write_same_blocks $(field "$dir/limits-before.txt" max_write_same_blocks) -> $(field "$dir/limits-after.txt" max_write_same_blocks), write_zeroes_max_bytes $(field "$dir/limits-before.txt" write_zeroes_max_bytes) -> $(field "$dir/limits-after.txt" write_zeroes_max_bytes)" \
        test "$refused/$(field "$dir/limits-after.txt" max_write_same_blocks)/$(field "$dir/limits-after.txt" write_zeroes_max_bytes)" = yes/0/0
      ;;
    zeroout/ignore|zeroout/support)
      # write_zeroes_max_bytes is what the block layer goes by. sd's max_write_same_blocks once read
      # 0 both before and after on a disk that took WRITE SAME (04:33 UTC run, ws-support: journal
      # seq 4, the two data writes and two WRITE SAME records), so it is only reported.
      expect "$name: blkdiscard -z succeeded (exit $rc), the range reads zeros, nothing refused, WRITE SAME still on (write_zeroes_max_bytes $(field "$dir/limits-after.txt" write_zeroes_max_bytes), max_write_same_blocks $(field "$dir/limits-after.txt" max_write_same_blocks))" \
        test "$rc/$zero/$refused" = 0/yes/no -a "$(field "$dir/limits-after.txt" write_zeroes_max_bytes)" != 0
      ;;
    discard/reject)
      expect "$name: blkdiscard failed ($(first_line "$dir/blkdiscard.txt")), the data is still there (sha256 unchanged): no fallback" \
        test "$rc" != 0 -a "$(sha_range "$d")" = "$sha"
      expect "$name: the kernel logged the refused UNMAP: $(grep -m1 -o 'CDB: Unmap.*' "$dir/dmesg.txt")" \
        test "$refused" = yes -a -n "$(grep -o 'CDB: Unmap' "$dir/dmesg.txt")"
      # sd_done() disables discard on this answer, but Linux 6.1 recomputes the discard mode from the
      # LBP VPD page whenever the disk is revalidated, so it can come back on by itself (seen here:
      # the second call sent UNMAP again). Not an error of the target: a WARN that says so.
      local what="sd turned discard off: provisioning_mode $(field "$dir/limits-before.txt" provisioning_mode) -> $(field "$dir/limits-after.txt" provisioning_mode), discard_max_bytes -> $(field "$dir/limits-after.txt" discard_max_bytes); again: $(first_line "$dir/blkdiscard-again.txt")"
      if [[ "$(field "$dir/limits-after.txt" provisioning_mode)/$(field "$dir/limits-after.txt" discard_max_bytes)" == disabled/0 ]]; then
        pass "$name: $what"
      else
        warn "$name: discard was on again right after the refusal ($what; $(grep -c 'CDB: Unmap' "$dir/dmesg.txt") UNMAPs refused)"
      fi
      ;;
    discard/ignore)
      expect "$name: blkdiscard succeeded (exit $rc), nothing refused, the range reads zeros (the LU reads unmapped blocks as zeros)" \
        test "$rc/$refused/$zero" = 0/no/yes
      ;;
    discard/support)
      expect "$name: blkdiscard succeeded (exit $rc), nothing refused, the range reads zeros, discard still on (provisioning_mode $(field "$dir/limits-after.txt" provisioning_mode))" \
        test "$rc/$refused/$zero/$(field "$dir/limits-after.txt" provisioning_mode)" = 0/no/yes/unmap
      ;;
  esac
  logout "$BASE:$name"
}

# --- xcopy: sg_xcopy and sg_compare_and_write under support / reject / ignore -----------------
# One target per policy (splitter xcopy=P,ats=P). 1 MiB of random data at LBA 0 is copied within
# the LU by sg_xcopy (EXTENDED COPY(LID1), sg3_utils builds the copy from VPD 0x83) to the 8 MiB
# offset; a block holding A at the 16 MiB offset gets COMPARE AND WRITE A -> B. The data writes
# are plain WRITEs (split under every policy); the host runs verify afterwards.
xc_case() {        # xc_case NAME support|reject|ignore
  local name=$1 policy=$2 dir=$OUT/$1 d b sg bs n dst caw rcx rcc
  hdr "$name: sg_xcopy and sg_compare_and_write under splitter xcopy=$policy,ats=$policy"
  mkdir -p "$dir"
  d=$(login "$BASE:$name") || { fail "$name: login to $BASE:$name: $(first_line "$OUT/login-$name.txt")"; return; }
  b=${d#/dev/}
  sg=$(ls /sys/block/"$b"/device/scsi_generic/ 2>/dev/null | head -n1)
  [[ -n $sg ]] || { fail "$name: no sg node for $d"; logout "$BASE:$name"; return; }
  bs=$(blockdev --getss "$d"); n=$((1048576 / bs)); dst=$((8 * 1048576 / bs)); caw=$((16 * 1048576 / bs))
  head -c 1048576 /dev/urandom >/tmp/src
  head -c "$bs" /dev/urandom >/tmp/a; head -c "$bs" /dev/urandom >/tmp/b; cat /tmp/a /tmp/b >/tmp/ab
  dd if=/tmp/src of="$d" bs=1M oflag=direct status=none \
    && dd if=/tmp/a of="$d" bs="$bs" seek="$caw" count=1 oflag=direct status=none \
    || { fail "$name: writing the data"; logout "$BASE:$name"; return; }
  sg_xcopy -v if=/dev/"$sg" of=/dev/"$sg" bs="$bs" count="$n" skip=0 seek="$dst" >"$dir/sg_xcopy.txt" 2>&1; rcx=$?
  sg_compare_and_write -v --in=/tmp/ab --lba="$caw" --num=1 "$d" >"$dir/sg_compare_and_write.txt" 2>&1; rcc=$?
  local xdst=other cblk=other
  if dd if="$d" bs=1M skip=8 count=1 iflag=direct status=none | cmp -s - /tmp/src; then xdst=copied
  elif dd if="$d" bs=1M skip=8 count=1 iflag=direct status=none | cmp -s - <(head -c 1048576 /dev/zero); then xdst=zeros; fi
  if dd if="$d" bs="$bs" skip="$caw" count=1 iflag=direct status=none | cmp -s - /tmp/b; then cblk=B
  elif dd if="$d" bs="$bs" skip="$caw" count=1 iflag=direct status=none | cmp -s - /tmp/a; then cblk=A; fi
  local xsense csense
  sense_of() { { grep -m1 -iE 'invalid (command )?op' "$1" || grep -m1 -iE 'illegal request|sense key' "$1"; } | sed 's/^ *//' | cut -c1-90; }
  xsense=$(sense_of "$dir/sg_xcopy.txt"); csense=$(sense_of "$dir/sg_compare_and_write.txt")
  {
    echo "device $d /dev/$sg ($BASE:$name), block size $bs"
    echo "sg_xcopy if=/dev/$sg of=/dev/$sg bs=$bs count=$n skip=0 seek=$dst: exit $rcx; LBA $dst.. now: $xdst"
    sed 's/^/  /' "$dir/sg_xcopy.txt"
    echo "sg_compare_and_write --lba=$caw --num=1 (A -> B): exit $rcc; block $caw now: $cblk"
    sed 's/^/  /' "$dir/sg_compare_and_write.txt"
  } | tee "$dir/report.txt" >/dev/null
  echo "xcopy $dst $n" >"$dir/extents.txt"; echo "caw $caw 1" >>"$dir/extents.txt"
  case $policy in
    support|ignore)
      expect "$name: sg_xcopy exit $rcx, LBA $dst-$((dst + n - 1)) holds the copy ($xdst)" test "$rcx/$xdst" = 0/copied
      expect "$name: sg_compare_and_write exit $rcc, block $caw holds B ($cblk)" test "$rcc/$cblk" = 0/B
      ;;
    reject)
      expect "$name: sg_xcopy refused (exit $rcx: ${xsense:-no sense line}), LBA $dst.. unchanged ($xdst)" \
        test "$rcx" != 0 -a "$xdst" = zeros
      expect "$name: sg_compare_and_write refused (exit $rcc: ${csense:-no sense line}), block $caw still A ($cblk)" \
        test "$rcc" != 0 -a "$cblk" = A
      ;;
  esac
  logout "$BASE:$name"
}

# --- support-write: ext4 and a fio verify job on a LUN whose splitter supports everything ----
# mkfs.ext4 with its default discard (UNMAP, split), a fio job (randwrite, libaio, O_DIRECT,
# verify=crc32c, read back and checked) and a copy of /etc; /results/support.sha256 has every
# file's sha256 (the host then takes the bookmark), support-actions.txt the LBAs of fio's second
# file (the host zeroes them after the bookmark, so production moves on from the bookmark).
FIO_JOB=(--name=fv --directory=/mnt/s/fio --nrfiles=2 --size=16M --bs=4k --rw=randwrite --ioengine=libaio
  --iodepth=8 --direct=1 --verify=crc32c --verify_fatal=1)
support_write() {
  local iqn=$BASE:support d bs ss spb rc nf
  hdr "support-write: mkfs.ext4 + fio verify on $iqn"
  d=$(login "$iqn") || abort "login to $iqn: $(first_line "$OUT/login-support.txt")"
  mkfs.ext4 -q -F -b 4096 -L support -E lazy_itable_init=0,lazy_journal_init=0 "$d" >"$OUT/mkfs-support.txt" 2>&1 \
    || abort "mkfs.ext4 on $iqn: $(first_line "$OUT/mkfs-support.txt")"
  mkdir -p /mnt/s && mount "$d" /mnt/s || abort "mount $d"
  mkdir -p /mnt/s/fio
  fio "${FIO_JOB[@]}" --do_verify=1 --output="$OUT/fio-write.txt" >"$OUT/fio-write.err" 2>&1; rc=$?
  cp -a /etc /mnt/s/etc 2>/dev/null
  sync
  (cd /mnt/s && find . -path ./lost+found -prune -o -type f -print0 | sort -z | xargs -0 sha256sum) >"$OUT/support.sha256"
  nf=$(wc -l <"$OUT/support.sha256")
  bs=$(stat -f -c %S /mnt/s); ss=$(blockdev --getss "$d"); spb=$((bs / ss))
  extents /mnt/s/fio/fv.0.1 | awk -v k="$spb" '{print "zero", $2 * k, $3 * k}' >"$OUT/support-actions.txt"
  umount /mnt/s
  logout "$iqn"
  expect "fio verify job on ext4 over $iqn: exit $rc, $(grep -m1 -o 'err= *[0-9]*' "$OUT/fio-write.txt"), $(grep -m1 -oE 'WRITE: bw=[^ ]+' "$OUT/fio-write.txt"); $nf files checksummed; fio/fv.0.1 in $(wc -l <"$OUT/support-actions.txt") extents" \
    test "$rc" = 0 -a "$nf" -gt 100 -a -s "$OUT/support-actions.txt"
}

# --- support-inspect: the bookmark's image through the copy's target ------------------------
# (after the host bookmarked, zeroed fio/fv.0.1 on production with WRITE SAME, and enabled image
# access to the bookmark.) TARGET_SUPPORT_SHA: support.sha256 of support-write.
support_inspect() {
  local iqn=$BASE:support prod img rc nf bad pbad
  hdr "support-inspect: the bookmark's image ($iqn-local) against the checksums taken at the bookmark"
  printf '%s\n' "${TARGET_SUPPORT_SHA:-}" >"$OUT/support-bookmark.sha256"
  nf=$(grep -c . "$OUT/support-bookmark.sha256")
  ((nf > 100)) || abort "TARGET_SUPPORT_SHA holds $nf checksums"
  prod=$(login "$iqn") || abort "login to $iqn"
  img=$(login "$iqn-local") || abort "login to $iqn-local (image access enabled?): $(first_line "$OUT/login-support-local.txt")"
  e2fsck -fn "$img" >"$OUT/fsck-support-image.txt" 2>&1; rc=$?
  expect "the bookmark's image checks clean (e2fsck -fn exit $rc)" test "$rc" = 0
  mkdir -p /mnt/sprod /mnt/simg
  mount -o ro "$prod" /mnt/sprod || abort "mount production $prod"
  mount -o ro,noload "$img" /mnt/simg || abort "mount the image $img"
  (cd /mnt/simg && sha256sum -c --quiet "$OUT/support-bookmark.sha256") >"$OUT/support-image-check.txt" 2>/dev/null
  bad=$(grep -c . "$OUT/support-image-check.txt")
  local extra
  extra=$(cd /mnt/simg && find . -path ./lost+found -prune -o -type f -print | wc -l)
  expect "image at the bookmark, mounted read-only: $((nf - bad)) of $nf files match the bookmark's sha256 ($extra files on the image)$( ((bad)) && echo "; first: $(first_line "$OUT/support-image-check.txt")")" \
    test "$bad/$extra" = "0/$nf"
  (cd /mnt/sprod && sha256sum -c --quiet "$OUT/support-bookmark.sha256") >"$OUT/support-production-check.txt" 2>/dev/null
  pbad=$(grep -c . "$OUT/support-production-check.txt")
  expect "control: production has moved on (the host zeroed fio/fv.0.1 after the bookmark): $pbad file differs from the bookmark's sha256 ($(first_line "$OUT/support-production-check.txt")), and it reads zeros" \
    test "$pbad" = 1 -a -n "$(grep '^./fio/fv.0.1: FAILED' "$OUT/support-production-check.txt")" -a "$(all_zero /mnt/sprod/fio/fv.0.1 && echo z)" = z
  # fio's own check of its job's data (each 4 KiB block's crc32c header): --verify_only replays the
  # job's offsets and reads. fio opens a write job's files read-write, which a read-only mount
  # refuses, so it runs on copies in tmpfs (buffered: tmpfs has no O_DIRECT). Control: production's
  # files, where the host zeroed fv.0.1.
  fio_verify_copy() {  # fio_verify_copy MOUNT NAME -> fio's exit status; output in $OUT/fio-verify-NAME.*
    rm -rf /tmp/fv && mkdir -p /tmp/fv && cp "$1"/fio/fv.0.* /tmp/fv/ || return 99
    local -a job=("${FIO_JOB[@]/#--directory=*/--directory=/tmp/fv}")
    job=("${job[@]/#--direct=*/--direct=0}"); job=("${job[@]/#--ioengine=*/--ioengine=psync}")
    fio "${job[@]}" --verify_only --output="$OUT/fio-verify-$2.txt" >"$OUT/fio-verify-$2.err" 2>&1
  }
  fio_verify_copy /mnt/simg image; rc=$?
  local rcp
  fio_verify_copy /mnt/sprod production; rcp=$?
  expect "fio --verify_only of the job's files from the image: exit $rc ($(grep -m1 -o 'err= *[0-9]*' "$OUT/fio-verify-image.txt"), $(grep -m1 'READ:' "$OUT/fio-verify-image.txt" | grep -oE 'io=[^ ]+') read); control, production's (fv.0.1 zeroed): exit $rcp, $(cat "$OUT/fio-verify-production.err" "$OUT/fio-verify-production.txt" | grep -m1 -oiE 'verify: bad[^,]*|bad magic[^,]*|verify failed[^,]*')" \
    test "$rc" = 0 -a "$rcp" != 0 -a "$rcp" != 99
  rm -rf /tmp/fv
  umount /mnt/sprod /mnt/simg
  logout "$iqn"; logout "$iqn-local"
}

# --- dd-seeding: the field notes' "RecoverPoint Initial Synchronization with DD" --------------
# Group RPSyncGroup (copy DR_RPSyncGroup, transfer not started) on target rpsync, 32 MiB. The
# notes' commands go verbatim to the host's rp-operator (tools/vm/rp-operator.mjs), which runs them
# with `arraysim rp`, as the notes' plink runs them on the RPA; dd is Linux's, with the notes' bs=512k.
# TARGET_SEED_SKIP_DD=1 (the control): no reverse dd, so the sweep must send far more.
plink() {      # plink "VERB key=value ...": prints the answer, returns arraysim rp's exit status
  python3 - "$1" <<'PY'
import os, sys, urllib.request
url = 'http://%s:%s/rp' % (os.environ['TARGET_HOST'], os.environ['TARGET_RP_OPERATOR_PORT'])
r = urllib.request.urlopen(urllib.request.Request(url, data=sys.argv[1].encode(), method='POST'), timeout=150)
sys.stdout.write(r.read().decode())
sys.exit(int(r.headers['x-exit']))
PY
}
dd_seeding() {
  local iqn=$BASE:rpsync dr_iqn=$BASE:rpsync-dr-rpsyncgroup d dr rc st dir=$OUT/seeding
  mkdir -p "$dir"; local tr=$dir/transcript.txt; : >"$tr"
  step() {     # step "COMMAND LINE": plink it, log it, FAIL on a non-zero exit
    echo "\$ plink \"$1\"" >>"$tr"; plink "$1" >"$dir/out.txt" 2>&1; local rc=$?
    sed 's/^/  /' "$dir/out.txt" >>"$tr"; cat "$dir/out.txt"
    expect "plink \"$1\": exit $rc$( ((rc)) && echo ": $(first_line "$dir/out.txt")")" test "$rc" = 0
  }
  ddlog() { echo "\$ $*" >>"$tr"; "$@" 2>>"$tr"; }
  hdr "dd-seeding on $iqn (group RPSyncGroup, copy DR_RPSyncGroup)"
  [[ -n ${TARGET_RP_OPERATOR_PORT:-} ]] || abort "TARGET_RP_OPERATOR_PORT is not set (splitter-proof.sh --seeding)"
  d=$(login "$iqn") || abort "login to $iqn: $(first_line "$OUT/login-rpsync.txt")"
  # "confirm that all the data has first been migrated": 24 MiB of the 32 MiB volume.
  dd if=/dev/urandom of="$d" bs=1M count=24 oflag=direct status=none || abort "writing the data"
  step "enable_group group=RPSyncGroup start_transfer=no"
  step "clear_markers group=RPSyncGroup"
  ddlog dd if="$d" of=/root/rpsync.img bs=512k || fail "dd of production into /root/rpsync.img"
  # "roughly two days elapsed": production changes in regions 2, 9 and 12/13 (1 MiB regions).
  echo "# the two days: 4 writes in regions 2, 2, 9, 12-13" >>"$tr"
  for w in "$((2 * 2048 + 8)) 16" "$((2 * 2048 + 800)) 8" "$((9 * 2048)) 128" "$((13 * 2048 - 4)) 8"; do
    set -- $w
    dd if=/dev/urandom of="$d" bs=512 seek="$1" count="$2" oflag=direct conv=notrunc status=none || fail "write at LBA $1"
  done
  step "enable_image_access group=RPSyncGroup copy=DR_RPSyncGroup image=latest"
  step "set_image_access_mode group=RPSyncGroup copy=DR_RPSyncGroup mode=direct"
  if [[ ${TARGET_SEED_SKIP_DD:-0} == 1 ]]; then
    echo "# control: no reverse dd" >>"$tr"
  else
    dr=$(login "$dr_iqn") || abort "login to the copy's target $dr_iqn: $(first_line "$OUT/login-rpsync-dr-rpsyncgroup.txt")"
    ddlog dd if=/root/rpsync.img of="$dr" bs=512k || fail "reverse dd onto $dr ($dr_iqn)"
    sync
    logout "$dr_iqn"
  fi
  step "disable_image_access group=RPSyncGroup copy=DR_RPSyncGroup start_transfer=no"
  step "start_transfer group=RPSyncGroup"
  # "Monitor the consistency group."
  for _ in $(seq 90); do
    plink "get_group_state group=RPSyncGroup" >"$dir/state.txt" 2>&1
    grep -q 'transfer active' "$dir/state.txt" && grep -q 'initialization.*done' "$dir/state.txt" && break
    sleep 2
  done
  echo '$ plink "get_group_state group=RPSyncGroup"' >>"$tr"; sed 's/^/  /' "$dir/state.txt" >>"$tr"
  cat "$tr"
  st=$(grep -m1 -o 'initialization (full-sweep): .*' "$dir/state.txt")
  if [[ ${TARGET_SEED_SKIP_DD:-0} == 1 ]]; then
    expect "control (no reverse dd): the sweep sent more than the 4 changed regions: ${st:-no initialization line}" \
      test -n "$st" -a -z "$(echo "$st" | grep 'full-sweep): 4\.0 MiB of 32\.0 MiB sent')"
  else
    expect "seeded by dd: transfer active, the sweep sent only the 4 regions changed after the dd: ${st:-no initialization line}" \
      grep -q 'initialization (full-sweep): 4\.0 MiB of 32\.0 MiB sent (12\.50%).*done' "$dir/state.txt"
  fi
  logout "$iqn"
}

# --- ext4-write: a small "datastore" on the fabric-split LUN --------------------------------
extents() {    # extents FILE -> "logical physical length" per extent, in filesystem blocks
  filefrag -v "$1" | awk -F'[ .:]+' '/^ *[0-9]+:/ {print $3, $5, $7}'
}
ext4_write() {
  local iqn=$BASE:fabric d bs ss spb
  hdr "ext4-write: mkfs.ext4 on $iqn, files"
  d=$(login "$iqn") || abort "login to $iqn: $(first_line "$OUT/login-fabric.txt")"
  # nodiscard, no lazy init: mkfs sends no UNMAP and ext4lazyinit no background WRITE SAME, so
  # the only offloads in this story are the host's clone and zero.
  mkfs.ext4 -q -F -b 4096 -L datastore1 -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 "$d" \
    >"$OUT/mkfs.txt" 2>&1 || abort "mkfs.ext4: $(first_line "$OUT/mkfs.txt")"
  mkdir -p /mnt/ds && mount "$d" /mnt/ds || abort "mount $d"
  mkdir -p /mnt/ds/vm1 /mnt/ds/vm2 /mnt/ds/vm3
  printf 'displayName = "vm1"\nscsi0:0.fileName = "vm1-flat.vmdk"\n' >/mnt/ds/vm1/vm1.vmx
  head -c "${FILE_MIB}M" /dev/urandom >/mnt/ds/vm1/vm1-flat.vmdk          # the template: cloned below
  dd if=/dev/zero of=/mnt/ds/vm2/vm2-flat.vmdk bs=1M count="$FILE_MIB" status=none   # the clone's disk, thick
  head -c "${FILE_MIB}M" /dev/urandom >/mnt/ds/vm3/vm3-flat.vmdk          # an old disk: eager-zeroed below
  sync
  (cd /mnt/ds && sha256sum vm1/vm1.vmx vm1/vm1-flat.vmdk vm2/vm2-flat.vmdk vm3/vm3-flat.vmdk) | tee "$OUT/files.sha256"
  bs=$(stat -f -c %S /mnt/ds); ss=$(blockdev --getss "$d"); spb=$((bs / ss))
  extents /mnt/ds/vm1/vm1-flat.vmdk >"$OUT/extents-vm1.txt"
  extents /mnt/ds/vm2/vm2-flat.vmdk >"$OUT/extents-vm2.txt"
  extents /mnt/ds/vm3/vm3-flat.vmdk >"$OUT/extents-vm3.txt"
  # host-actions.txt, in logical blocks of the LUN: "clone SRC_LBA DST_LBA BLOCKS" pairs the
  # extents of vm1 and vm2 by file offset (VMFS's clone of vm1 into vm2); "zero LBA BLOCKS" covers
  # vm3 (an eager-zeroed disk created on the blocks of a deleted one).
  {
    awk -v k="$spb" 'BEGIN {n = 0; m = 0}
      NR == FNR {sl[n] = $1; sp[n] = $2; sn[n] = $3; n++; next}
      {dl[m] = $1; dp[m] = $2; dn[m] = $3; m++}
      END {
        i = 0; j = 0
        while (i < n && j < m) {
          a = sl[i] > dl[j] ? sl[i] : dl[j]; e1 = sl[i] + sn[i]; e2 = dl[j] + dn[j]; b = e1 < e2 ? e1 : e2
          if (b > a) print "clone", (sp[i] + a - sl[i]) * k, (dp[j] + a - dl[j]) * k, (b - a) * k
          if (e1 < e2) i++; else j++
        }
      }' "$OUT/extents-vm1.txt" "$OUT/extents-vm2.txt"
    awk -v k="$spb" '{print "zero", $2 * k, $3 * k}' "$OUT/extents-vm3.txt"
  } | tee "$OUT/host-actions.txt"
  umount /mnt/ds
  logout "$iqn"
  local cloned zeroed want=$((FILE_MIB * 1024 * 1024 / ss))
  cloned=$(awk '$1 == "clone" {s += $4} END {print s + 0}' "$OUT/host-actions.txt")
  zeroed=$(awk '$1 == "zero" {s += $3} END {print s + 0}' "$OUT/host-actions.txt")
  expect "ext4 on $iqn: 4 files written; the host is to clone $cloned blocks (vm1 -> vm2) and zero $zeroed (vm3)" \
    test "$cloned/$zeroed" = "$want/$want"
}

# --- ext4-inspect: production against the replica image -------------------------------------
blocks_differ() {  # blocks_differ A B -> number of 4 KiB blocks that differ (python3 is in the image)
  python3 -c 'import sys
a, b = (open(f, "rb").read() for f in sys.argv[1:3])
print(sum(a[i:i + 4096] != b[i:i + 4096] for i in range(0, max(len(a), len(b)), 4096)))' "$1" "$2" 2>/dev/null || echo '?'
}
all_zero() { cmp -s -n "$(stat -c %s "$1")" "$1" /dev/zero; }
ext4_inspect() {
  local prod img iqn=$BASE:fabric
  hdr "ext4-inspect: production ($iqn) against the replica image ($iqn-local)"
  prod=$(login "$iqn") || abort "login to $iqn"
  img=$(login "$iqn-local") || abort "login to $BASE:fabric-local (image access enabled?): $(first_line "$OUT/login-fabric-local.txt")"
  e2fsck -fn "$img" >"$OUT/fsck-image.txt" 2>&1
  local rc=$?; cat "$OUT/fsck-image.txt"
  expect "the replica image's ext4 checks clean (e2fsck -fn exit $rc): the metadata was replicated" test "$rc" = 0
  mkdir -p /mnt/prod /mnt/image
  mount -o ro "$prod" /mnt/prod || abort "mount production $prod"
  mount -o ro,noload "$img" /mnt/image || abort "mount the replica image $img"
  local f before p i n
  : >"$OUT/files-compared.txt"
  for f in vm1/vm1.vmx vm1/vm1-flat.vmdk vm2/vm2-flat.vmdk vm3/vm3-flat.vmdk; do
    before=$(printf '%s\n' "${TARGET_BEFORE_SHA:-}" | awk -v f="$f" '$2 == f {print $1}')
    p=$(sha256sum <"/mnt/prod/$f" | cut -d' ' -f1); i=$(sha256sum <"/mnt/image/$f" | cut -d' ' -f1)
    n=0; [[ $p == "$i" ]] || n=$(blocks_differ "/mnt/prod/$f" "/mnt/image/$f")
    local pz=no iz=no; all_zero "/mnt/prod/$f" && pz=yes; all_zero "/mnt/image/$f" && iz=yes
    printf '%-18s production %.16s  image %.16s  before clone/zero %.16s  blocks differing %s  all zeros: production %s, image %s\n' \
      "$f" "$p" "$i" "${before:--}" "$n" "$pz" "$iz" | tee -a "$OUT/files-compared.txt"
    eval "P_${f//[^a-z0-9]/_}=$p I_${f//[^a-z0-9]/_}=$i B_${f//[^a-z0-9]/_}=${before:-none} Z_${f//[^a-z0-9]/_}=$pz/$iz N_${f//[^a-z0-9]/_}=$n"
  done
  if [[ ${TARGET_EXPECT_REPLICA:-corrupt} == consistent ]]; then
    # The control (splitter-proof.sh --workaround): the host cloned and zeroed with READ/WRITE.
    expect "control: every file identical on the image, the clone vm2 = vm1 and vm3 all zeros on both" \
      test "$P_vm1_vm1_vmx/$P_vm1_vm1_flat_vmdk/$P_vm2_vm2_flat_vmdk/$P_vm3_vm3_flat_vmdk/$Z_vm3_vm3_flat_vmdk" \
        = "$I_vm1_vm1_vmx/$I_vm1_vm1_flat_vmdk/$I_vm2_vm2_flat_vmdk/$I_vm3_vm3_flat_vmdk/yes/yes" -a "$P_vm2_vm2_flat_vmdk" = "$P_vm1_vm1_flat_vmdk"
  else
    expect "vm1/vm1.vmx and vm1/vm1-flat.vmdk (written by Linux, split): identical on the image" \
      test "$P_vm1_vm1_vmx/$P_vm1_vm1_flat_vmdk" = "$I_vm1_vm1_vmx/$I_vm1_vm1_flat_vmdk"
    expect "vm2/vm2-flat.vmdk (the clone, EXTENDED COPY ignored): production holds vm1's data, the image holds zeros ($N_vm2_vm2_flat_vmdk 4 KiB blocks differ)" \
      test "$P_vm2_vm2_flat_vmdk/$Z_vm2_vm2_flat_vmdk" = "$P_vm1_vm1_flat_vmdk/no/yes"
    expect "vm3/vm3-flat.vmdk (eager-zeroed, WRITE SAME ignored): production reads zeros, the image still holds the old disk's data ($N_vm3_vm3_flat_vmdk 4 KiB blocks differ; sha256 as before: $([[ $I_vm3_vm3_flat_vmdk == "$B_vm3_vm3_flat_vmdk" ]] && echo yes || echo no))" \
      test "$Z_vm3_vm3_flat_vmdk/$I_vm3_vm3_flat_vmdk" = "yes/no/$B_vm3_vm3_flat_vmdk"
  fi
  umount /mnt/prod /mnt/image
  logout "$iqn"; logout "$iqn-local"
}

for phase in $PHASES; do
  case $phase in
    discard)
      discard_case ws-reject zeroout reject
      discard_case ws-ignore zeroout ignore
      discard_case unmap-reject discard reject
      discard_case unmap-ignore discard ignore
      ;;
    discard-support)
      discard_case ws-support zeroout support
      discard_case unmap-support discard support
      ;;
    xcopy)
      xc_case xc-support support
      xc_case xc-reject reject
      xc_case xc-ignore ignore
      ;;
    dd-seeding) dd_seeding ;;
    support-write) support_write ;;
    support-inspect) support_inspect ;;
    ext4-write) ext4_write ;;
    ext4-inspect) ext4_inspect ;;
    *) fail "unknown phase '$phase' (TARGET_PHASE: discard, discard-support, xcopy, support-write, support-inspect, ext4-write, ext4-inspect, dd-seeding)" ;;
  esac
done
