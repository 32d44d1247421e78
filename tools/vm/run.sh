#!/usr/bin/env bash
# tools/vm/run.sh - boot the arraysim initiator guest, run one test script in it as root,
# and collect what it wrote.
#
# Usage:  run.sh SCRIPT [RESULT_DIR]        (RESULT_DIR default: ./vm-results)
#
# Inside the guest:
#   - TARGET_HOST=10.0.2.2, which QEMU's user networking maps to the host's 127.0.0.1;
#   - every TARGET_* variable exported on the host is passed through (except TARGET_HOST);
#     TARGET_INITIATOR_NAME, if set, becomes the guest's iSCSI initiator name;
#   - files written under /results appear in RESULT_DIR.
# RESULT_DIR/_vm/ gets console.log (serial console: kernel + script output), dmesg.txt,
# journal.txt, uptime.txt, exit_status, and timing.txt (host-side wall time).
# Exit status: the script's; 124 = ARRAYSIM_VM_TIMEOUT hit; 125 = guest died without status.
#
# Env: ARRAYSIM_VM_TIMEOUT (900 s)  ARRAYSIM_VM_MEM (1024 MiB)  ARRAYSIM_VM_CPUS (2)
#      ARRAYSIM_VM_ACCEL (auto|kvm|tcg)  ARRAYSIM_VM_CPU (qemu -cpu model)
#      ARRAYSIM_VM_CACHE (/var/cache/arraysim-vm)  ARRAYSIM_VM_QUIET=1 (console to file only)
# The image is built on first use (build-image.sh; needs root once).
# shellcheck disable=SC2054   # commas inside qemu option values are intended
set -euo pipefail

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export ARRAYSIM_VM_CACHE=${ARRAYSIM_VM_CACHE:-/var/cache/arraysim-vm}
TIMEOUT=${ARRAYSIM_VM_TIMEOUT:-900}
MEM=${ARRAYSIM_VM_MEM:-1024}
CPUS=${ARRAYSIM_VM_CPUS:-2}
HOST_ALIAS=10.0.2.2            # slirp: the host's loopback as seen from the guest

say() { printf 'run.sh: %s\n' "$*" >&2; }
if [[ $# -lt 1 || $# -gt 2 || ! -f $1 ]]; then
  echo "usage: $0 SCRIPT [RESULT_DIR]    (SCRIPT: a file to run inside the guest)" >&2
  exit 2
fi
script=$1
results=${2:-vm-results}

"$VM_DIR/build-image.sh"       # returns at once when the cached image is current
image=$ARRAYSIM_VM_CACHE/image

work=$(mktemp -d "${TMPDIR:-/tmp}/arraysim-vm.XXXXXX")
share=$work/share              # becomes the guest's 9p share "arraysim"
mkdir -p "$share/job" "$share/results" "$share/status"
cleanup() {
  local pid
  pid=$(cat "$work/qemu.pid" 2>/dev/null || true)
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cp "$script" "$share/job/script"

# The script's environment.
[[ -z ${TARGET_HOST:-} || $TARGET_HOST == "$HOST_ALIAS" ]] \
  || say "note: TARGET_HOST=$TARGET_HOST becomes $HOST_ALIAS inside the guest"
{
  for name in $(compgen -e); do
    [[ $name == TARGET_* && $name != TARGET_HOST ]] && printf 'export %s=%q\n' "$name" "${!name}"
  done
  echo "export TARGET_HOST=$HOST_ALIAS"
} >"$share/job/env"

# Accelerator. KVM only helps with real VT-x/AMD-V (kvm_intel / kvm_amd). A /dev/kvm from
# kvm_pvm (paravirtual nested KVM) hangs a stock Debian kernel during decompression, so
# "auto" uses TCG unless kvm_intel or kvm_amd is loaded. ARRAYSIM_VM_ACCEL overrides.
accel=${ARRAYSIM_VM_ACCEL:-auto}
if [[ $accel == auto ]]; then
  if [[ -r /dev/kvm && -w /dev/kvm ]] && [[ -d /sys/module/kvm_intel || -d /sys/module/kvm_amd ]]; then
    accel=kvm
  else
    accel=tcg
    why="no usable /dev/kvm"
    [[ -e /dev/kvm ]] && why="/dev/kvm is not backed by kvm_intel/kvm_amd (loaded: $(cd /sys/module && echo kvm*))"
    say "WARNING: $why; using TCG emulation (slow: ~15-25 s boot, raise ARRAYSIM_VM_TIMEOUT if needed)"
  fi
fi
case $accel in
  # arch-capabilities=off: nested "-cpu host" can abort with "failed to set MSR 0x10a".
  kvm) accel_args=(-accel kvm -cpu "${ARRAYSIM_VM_CPU:-host,arch-capabilities=off}") ;;
  tcg) accel_args=(-accel tcg,thread=multi -cpu "${ARRAYSIM_VM_CPU:-max}") ;;
  *) say "ARRAYSIM_VM_ACCEL must be auto, kvm or tcg"; exit 2 ;;
esac

# q35 machine, direct kernel boot. The root disk is opened with snapshot=on, so the
# cached image is never written and parallel runs are safe. Network: slirp with no
# port forwards. Serial console on stdio.
qemu=(qemu-system-x86_64 -name arraysim-vm -M q35 "${accel_args[@]}" -smp "$CPUS" -m "$MEM"
  -nodefaults -no-user-config -display none -no-reboot -pidfile "$work/qemu.pid"
  -kernel "$image/vmlinuz" -initrd "$image/initrd.img"
  -append "root=/dev/vda rw console=ttyS0 quiet panic=1 net.ifnames=0 mitigations=off"
  -drive "file=$image/root.img,if=virtio,format=raw,snapshot=on,cache=unsafe"
  -netdev user,id=n0,ipv6=off -device virtio-net-pci,netdev=n0
  -fsdev "local,id=fs0,path=$share,security_model=none"
  -device virtio-9p-pci,fsdev=fs0,mount_tag=arraysim
  -device virtio-rng-pci
  -chardev stdio,id=ser0 -serial chardev:ser0)

say "booting guest: $accel, $CPUS vCPU, $MEM MiB, timeout ${TIMEOUT}s, script $script"
t0=$(date +%s.%N)
set +e
if [[ ${ARRAYSIM_VM_QUIET:-0} == 1 ]]; then
  timeout --foreground -k 10 "$TIMEOUT" "${qemu[@]}" </dev/null >"$work/console.raw" 2>&1
  qemu_rc=$?
else
  timeout --foreground -k 10 "$TIMEOUT" "${qemu[@]}" </dev/null 2>&1 | tee "$work/console.raw"
  qemu_rc=${PIPESTATUS[0]}
fi
set -e
secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')

# Collect results even after a timeout or crash.
mkdir -p "$results/_vm"
cp -r "$share/results/." "$results/"
cp -r "$share/status/." "$results/_vm/"
tr -d '\r' <"$work/console.raw" >"$results/_vm/console.log"
echo "wall_seconds=$secs accel=$accel cpus=$CPUS mem=$MEM guest_uptime=$(cat "$share/status/uptime.txt" 2>/dev/null || echo ?)" \
  >"$results/_vm/timing.txt"

if [[ $qemu_rc == 124 || $qemu_rc == 137 ]]; then
  say "ERROR: timeout after ${TIMEOUT}s; partial results in $results"
  exit 124
fi
if [[ ! -s $share/status/exit_status ]]; then
  say "ERROR: guest stopped without reporting a status (qemu exit $qemu_rc); see $results/_vm/console.log"
  exit 125
fi
rc=$(<"$share/status/exit_status")
say "done in ${secs}s: script exit status $rc, results in $results"
exit "$rc"
