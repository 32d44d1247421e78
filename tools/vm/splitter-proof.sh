#!/usr/bin/env bash
# tools/vm/splitter-proof.sh - issue 11's "Proof with the real initiator": the Linux kernel as the
# host, arraysim's write splitter in front of its LUNs, verify on the host.
#
#   1. start arraysim with targets/splitter.yaml: one target per case on 127.0.0.1:PORT, each
#      LUN in its own consistency group with a local copy; admin API on 127.0.0.1:ADMIN
#   2. guest (guest-tests/splitter.sh, phase discard): blkdiscard -z under writesame=reject and
#      =ignore, blkdiscard under unmap=reject and =ignore, with the kernel's log and sd's limits
#   3. `arraysim verify` per case: reject -> exit 0 (consistent), ignore -> exit 1 naming the
#      ignored WRITE SAME / UNMAP and its extent
#   full form only (without --short):
#   4. the same guest boot goes on: blkdiscard -z / blkdiscard under writesame=support / unmap=support
#      (phase discard-support: verify exit 0); sg_xcopy and sg_compare_and_write under
#      xcopy=P,ats=P for P = support, reject, ignore (phase xcopy: verify exit 0, 0, 1 naming both);
#      ext4 + a fio verify job under support (phase support-write); then an ext4 "datastore" on the
#      rp-fabric-2010 target (phase ext4-write)
#   5. host: `arraysim rp bookmark group=support name=fio-done`; `arraysim host zero` of one of fio's
#      files (production moves on, split); verify; `rp enable_image_access ... image=fio-done`.
#      `arraysim host clone` (EXTENDED COPY) copies vm1's extents onto vm2's and `arraysim host zero`
#      (WRITE SAME) zeroes vm3's on fabric, as ESXi's data mover would; verify (exit 1, both
#      attributed); `arraysim rp enable_image_access` on fabric's copy "local"
#   6. a second guest boot (phases support-inspect, ext4-inspect) mounts the bookmark's image
#      read-only through support-local and checks every file's sha256 against the bookmark's (and
#      fio --verify_only), then production and fabric's replica image, and compares the files
#   7. stop the target; RESULT_DIR/summary.txt; exit 0 only if every check passed
#
# Usage:  splitter-proof.sh [--short | --workaround | --seeding] [RESULT_DIR]  (default ./vm-results/splitter-<timestamp>)
#   --workaround  the full form with the 2010 post's host-wide workaround: the host runs with
#                 DataMover.HardwareAcceleratedMove=0 and HardwareAcceleratedInit=0, so it clones
#                 and zeroes with READ/WRITE; verify must find the copy consistent and the image's
#                 files equal production's (the control for the ext4 comparison)
#   --seeding     only the field notes' dd seeding (phase dd-seeding): group RPSyncGroup, copy
#                 DR_RPSyncGroup; the guest sends the notes' commands to rp-operator.mjs (port
#                 ADMIN + 1), dd is Linux's; verify exit 0. TARGET_SEED_SKIP_DD=1: the control
#                 without the reverse dd (the sweep must send more than the changed regions)
# Env:    ARRAYSIM_SPLITTER_PORT  portal port (default ARRAYSIM_PORT + 10, i.e. 3270)
#         ARRAYSIM_SPLITTER_ADMIN admin API port (default portal port + 1)
#         ARRAYSIM_VM_*           VM settings, see run.sh
# Both ports must be free: the script refuses to run against a target it did not start.
set -euo pipefail

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$VM_DIR/../.." && pwd)
full=1 workaround=0 seeding=0
case ${1:-} in
  --short) full=0; shift ;;
  --workaround) workaround=1; shift ;;
  --seeding) full=0 seeding=1; shift ;;
esac
if [[ $# -gt 1 || ${1:-} == -* ]]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
fi
PORT=${ARRAYSIM_SPLITTER_PORT:-$((${ARRAYSIM_PORT:-3260} + 10))}
ADMIN=${ARRAYSIM_SPLITTER_ADMIN:-$((PORT + 1))}
BASE=iqn.2026-12.dev.arraysim
OUT=${1:-vm-results/splitter-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
(cd "$REPO" && node tools/build.mjs --if-stale) || exit 1

say() { printf 'splitter-proof: %s\n' "$*" >&2; }
note() { echo "$*" >>"$SUMMARY"; say "$*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }
listening() { ss -Hltn "sport = :$1" | grep -q .; }
arraysim() { (cd "$REPO" && node bin/arraysim.js "$@"); }
nfail=0
check() {      # check DESCRIPTION TEST...: a PASS/FAIL line in the summary
  local what=$1; shift
  if "$@"; then note "PASS $what"; else note "FAIL $what"; nfail=$((nfail + 1)); fi
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/arraysim-splitter.XXXXXX")
target_pid= operator_pid=
cleanup() {
  # Only ever our own target (and operator): the process groups we created with setsid.
  local pid
  for pid in $operator_pid $target_pid; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM -- "-$pid" 2>/dev/null || true
      sleep 1
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t_all=$(now)
"$VM_DIR/build-image.sh"
for p in "$PORT" "$ADMIN"; do
  if listening "$p"; then note "FAIL target start: 127.0.0.1:$p is already in use (not by us)"; exit 1; fi
done
sed -e "s/@PORT@/$PORT/; s/@ADMIN@/$ADMIN/" "$VM_DIR/targets/splitter.yaml" >"$tmp/splitter.yaml"
t=$(now)
(cd "$REPO" && exec setsid node bin/arraysim.js serve --config "$tmp/splitter.yaml") >"$OUT/target.log" 2>&1 </dev/null &
target_pid=$!
for _ in $(seq 150); do
  kill -0 "$target_pid" 2>/dev/null || break
  listening "$PORT" && listening "$ADMIN" && break
  sleep 0.2
done
if ! { listening "$PORT" && listening "$ADMIN"; }; then
  note "FAIL target start: not listening on $PORT and $ADMIN (log: $OUT/target.log)"; tail -n 15 "$OUT/target.log" >&2; exit 1
fi
note "PASS target start: arraysim on 127.0.0.1:$PORT (admin $ADMIN), pid $target_pid, after $(since "$t") s"

guest() {      # guest NAME PHASES: guest-tests/splitter.sh in a VM, results in $OUT/NAME
  local name=$1 t rc
  t=$(now)
  TARGET_PORT=$PORT TARGET_IQN_BASE=$BASE TARGET_PHASE=$2 \
    "$VM_DIR/run.sh" "$VM_DIR/guest-tests/splitter.sh" "$OUT/$name" >"$OUT/$name.console.txt" 2>&1 && rc=0 || rc=$?
  sed 's/^/    /' "$OUT/$name/summary.txt" 2>/dev/null >>"$SUMMARY" || true
  if ((rc == 0)); then note "PASS guest $name ($2) in $(since "$t") s"
  else note "FAIL guest $name ($2): exit $rc after $(since "$t") s (see $OUT/$name/ and $OUT/$name.console.txt)"; nfail=$((nfail + 1)); fi
}

verify() {     # verify GROUP WANT_EXIT [PATTERN...]: arraysim verify, output in verify-GROUP.txt
  local group=$1 want=$2 rc; shift 2
  arraysim verify --admin "127.0.0.1:$ADMIN" --group "$group" >"$OUT/verify-$group.txt" 2>&1 && rc=0 || rc=$?
  sed 's/^/    /' "$OUT/verify-$group.txt" >&2
  local ok=true p
  [[ $rc == "$want" ]] || ok=false
  for p in "$@"; do grep -Eq "$p" "$OUT/verify-$group.txt" || ok=false; done
  check "verify $group: exit $rc (want $want): $(head -n1 "$OUT/verify-$group.txt" | sed 's/ (journal.*//')$(sed -n '2p' "$OUT/verify-$group.txt" | sed 's/^ */; /')" $ok
}

if ((seeding)); then
  # The field notes' dd seeding: the guest sends the notes' command lines to rp-operator.mjs
  # (port ADMIN + 1), which runs them with `arraysim rp` against our admin API.
  OPER=$((ADMIN + 1))
  if listening "$OPER"; then note "FAIL rp-operator: 127.0.0.1:$OPER is already in use (not by us)"; exit 1; fi
  (cd "$REPO" && exec setsid node tools/vm/rp-operator.mjs --listen "127.0.0.1:$OPER" --admin "127.0.0.1:$ADMIN") \
    >"$OUT/rp-operator.log" 2>&1 </dev/null &
  operator_pid=$!
  for _ in $(seq 50); do listening "$OPER" && break; sleep 0.2; done
  export TARGET_RP_OPERATOR_PORT=$OPER
  guest guest-seed dd-seeding
  sed 's/^/    /' "$OUT/rp-operator.log" >>"$SUMMARY"
  verify RPSyncGroup 0
fi

phases=discard
((full)) && phases="discard discard-support xcopy support-write ext4-write"
((full)) && export ARRAYSIM_VM_TIMEOUT=${ARRAYSIM_VM_TIMEOUT:-1500}   # guest 1 takes 5+ min under load
if ((!seeding)); then
guest guest1 "$phases"
verify ws-reject 0
verify ws-ignore 1 'LUN 0 LBA 0-4095, caused by [0-9]+ WRITE SAME\(1[06]\) \(ignored\) from iqn'
verify unmap-reject 0
verify unmap-ignore 1 'LUN 0 LBA 0-4095, caused by [0-9]+ UNMAP \(ignored\) from iqn'
fi

if ((full)); then
  verify ws-support 0
  verify unmap-support 0
  # sg_xcopy copies LBA 0-2047 to 16384-18431, sg_compare_and_write writes block 32768 (512-byte
  # blocks): support and reject leave the copy consistent, ignore names both commands.
  verify xc-support 0
  verify xc-reject 0
  verify xc-ignore 1 'LUN 0 LBA 16384-18431, caused by 1 EXTENDED COPY\(LID1\) \(ignored\) from iqn' \
    'LUN 0 LBA 32768-32768, caused by 1 COMPARE AND WRITE \(ignored\) from iqn'
  # ext4 + fio under support: bookmark, then production moves on (the host zeroes fio's second
  # file with WRITE SAME, split), then image access to the bookmark for the second guest.
  if [[ -s $OUT/guest1/support.sha256 && -s $OUT/guest1/support-actions.txt ]]; then
    verify support 0
    arraysim rp bookmark group=support name=fio-done --admin "127.0.0.1:$ADMIN" >"$OUT/bookmark.txt" 2>&1 && rc=0 || rc=$?
    check "rp bookmark group=support name=fio-done: exit $rc, $(head -n1 "$OUT/bookmark.txt")" test "$rc" = 0
    surl=iscsi://127.0.0.1:$PORT/$BASE:support/0
    : >"$OUT/host-support.txt"
    ok=true
    while read -r verb a b; do
      [[ $verb == zero ]] || continue
      echo "\$ npx arraysim host zero --to $surl --lba $a --blocks $b" >>"$OUT/host-support.txt"
      arraysim host zero --to "$surl" --lba "$a" --blocks "$b" >>"$OUT/host-support.txt" 2>&1 || ok=false
    done <"$OUT/guest1/support-actions.txt"
    check "after the bookmark, host zero of fio/fv.0.1 on $BASE:support: $(grep -c '^\$' "$OUT/host-support.txt") runs, $(awk '/^  offloaded:/ {s += $2} END {print s + 0}' "$OUT/host-support.txt") blocks offloaded" $ok
    verify support 0
    arraysim rp enable_image_access group=support copy=local image=fio-done --admin "127.0.0.1:$ADMIN" >"$OUT/image-access-support.txt" 2>&1 && rc=0 || rc=$?
    check "rp enable_image_access group=support copy=local image=fio-done: exit $rc" test "$rc" = 0
    export TARGET_SUPPORT_SHA
    TARGET_SUPPORT_SHA=$(cat "$OUT/guest1/support.sha256")
  else
    note "FAIL support: the guest wrote no support.sha256 / support-actions.txt"; nfail=$((nfail + 1))
  fi
fi

if ((full)); then
  url=iscsi://127.0.0.1:$PORT/$BASE:fabric/0
  actions=$OUT/guest1/host-actions.txt
  settings=()
  ((workaround)) && settings=(--set DataMover.HardwareAcceleratedMove=0 --set DataMover.HardwareAcceleratedInit=0)
  if [[ -s $actions ]]; then
    : >"$OUT/host.txt"
    ok=true
    while read -r verb a b c; do
      case $verb in
        clone) cmd=(host clone --from "$url" --to "$url" --lba "$a" --to-lba "$b" --blocks "$c" "${settings[@]}") ;;
        zero) cmd=(host zero --to "$url" --lba "$a" --blocks "$b" "${settings[@]}") ;;
        *) continue ;;
      esac
      echo "\$ npx arraysim ${cmd[*]}" >>"$OUT/host.txt"
      arraysim "${cmd[@]}" >>"$OUT/host.txt" 2>&1 || ok=false
    done <"$actions"
    cat "$OUT/host.txt" >&2
    check "host clone and zero on $BASE:fabric (rp-fabric-2010): $(grep -c '^\$' "$OUT/host.txt") runs, $(awk '/^  offloaded:/ {s += $2} END {print s + 0}' "$OUT/host.txt") blocks offloaded, $(awk '/by the host:/ {s += $NF == "blocks" ? $(NF - 1) : 0} END {print s + 0}' "$OUT/host.txt") by the host" \
      $ok
    if ((workaround)); then
      verify fabric 0
      export TARGET_EXPECT_REPLICA=consistent
    else
      verify fabric 1 'caused by [0-9]+ EXTENDED COPY\(LID1\) \(ignored\)' 'caused by [0-9]+ WRITE SAME\(16\) \(ignored\)'
    fi
    arraysim rp enable_image_access group=fabric copy=local image=latest --admin "127.0.0.1:$ADMIN" >"$OUT/image-access.txt" 2>&1 && rc=0 || rc=$?
    check "rp enable_image_access group=fabric copy=local image=latest: exit $rc" test "$rc" = 0
    export TARGET_BEFORE_SHA
    TARGET_BEFORE_SHA=$(cat "$OUT/guest1/files.sha256")
    phases2=ext4-inspect
    [[ -n ${TARGET_SUPPORT_SHA:-} ]] && phases2="support-inspect ext4-inspect"
    guest guest2 "$phases2"
  else
    note "FAIL ext4: the guest wrote no host-actions.txt"; nfail=$((nfail + 1))
  fi
fi

kill -TERM -- "-$target_pid" 2>/dev/null || true
for _ in $(seq 50); do kill -0 "$target_pid" 2>/dev/null || break; sleep 0.1; done
target_pid=
verdict=PASS
((nfail == 0)) || verdict=FAIL
form=short; ((full)) && form=full; ((workaround)) && form="full, host workaround Move=0 Init=0"
if ((seeding)); then
  form="dd seeding"
  if [[ ${TARGET_SEED_SKIP_DD:-0} == 1 ]]; then form+=", control: no reverse dd"; fi
fi
echo "SPLITTER-PROOF: $verdict in $(since "$t_all") s ($form)" >>"$SUMMARY"
echo
cat "$SUMMARY"
[[ $verdict == PASS ]]
