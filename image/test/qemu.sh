# Helpers for booting the appliance image in QEMU (sourced by image/test/*.sh).
#   vm_start NAME DISK HOSTFWD...  boots DISK (raw) with OVMF, user-mode networking; each HOSTFWD is
#                                  "HOSTPORT:GUESTPORT", forwarded from 127.0.0.1 only; serial to $W/NAME.serial
#   vm_stop NAME                   powers it off at once (a power cut)
#   vm_wait_serial NAME REGEX SECS waits for a line on the serial console
# KVM is used where it runs OVMF (some nested hosts refuse it), TCG otherwise; $TIMEOUT_SCALE (1 with KVM,
# 4 with TCG) stretches every wait.
OVMF_CODE=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
OVMF_VARS=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}
declare -A VM_PID

qemu_accel() {
  if [ -n "${EDGE_QEMU_ACCEL:-}" ]; then echo "$EDGE_QEMU_ACCEL"; return; fi
  if [ -w /dev/kvm ]; then
    # A short boot of the firmware alone: a host whose KVM cannot run it fails within a second or two.
    local vars log
    vars=$(mktemp) log=$(mktemp)
    cp "$OVMF_VARS" "$vars"
    timeout 6 qemu-system-x86_64 -machine q35,accel=kvm -cpu host -m 256 -display none -monitor none \
      -serial none -drive "if=pflash,format=raw,readonly=on,file=$OVMF_CODE" \
      -drive "if=pflash,format=raw,file=$vars" -net none >"$log" 2>&1
    local rc=$?
    if [ "$rc" = 124 ] && ! grep -q "internal error" "$log"; then echo kvm; rm -f "$vars" "$log"; return; fi
    rm -f "$vars" "$log"
  fi
  echo tcg
}

ACCEL=$(qemu_accel)
if [ "$ACCEL" = kvm ]; then TIMEOUT_SCALE=1; CPU=host; else TIMEOUT_SCALE=4; CPU=max; fi

vm_start() {
  local name=$1 disk=$2; shift 2
  local fwd="" f
  for f in "$@"; do fwd+=",hostfwd=tcp:127.0.0.1:${f%%:*}-:${f##*:}"; done
  [ -f "$W/$name.vars" ] || cp "$OVMF_VARS" "$W/$name.vars"
  qemu-system-x86_64 -machine "q35,accel=$ACCEL" -cpu "$CPU" -m 2048 -smp 2 \
    -drive "if=pflash,format=raw,readonly=on,file=$OVMF_CODE" -drive "if=pflash,format=raw,file=$W/$name.vars" \
    -drive "file=$disk,format=raw,if=virtio,cache=unsafe" \
    -netdev "user,id=n0$fwd" -device virtio-net-pci,netdev=n0 \
    -chardev "file,id=serial0,path=$W/$name.serial,append=on" -serial chardev:serial0 \
    -display none -monitor none >>"$W/$name.qemu.log" 2>&1 &
  VM_PID[$name]=$!
}

vm_stop() {
  local p=${VM_PID[$1]:-}
  [ -n "$p" ] || return 0
  kill -9 "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  unset "VM_PID[$1]"
}

vm_stop_all() { local n; for n in "${!VM_PID[@]}"; do vm_stop "$n"; done; }

# vm_wait_serial NAME REGEX SECS [FROM_LINE]: true once the serial log (from line FROM_LINE on) matches.
vm_wait_serial() {
  local name=$1 re=$2 secs=$(( $3 * TIMEOUT_SCALE )) from=${4:-1} t=0
  while [ "$t" -lt "$secs" ]; do
    # grep -c reads to the end: with -q it would stop early and fail the pipeline on tail's SIGPIPE.
    tail -n "+$from" "$W/$name.serial" 2>/dev/null | tr -d '\r' | grep -acE "$re" >/dev/null && return 0
    kill -0 "${VM_PID[$name]}" 2>/dev/null || { echo "qemu $name exited" >&2; return 1; }
    sleep 1; t=$((t + 1))
  done
  return 1
}

serial_lines() { wc -l <"$W/$1.serial" 2>/dev/null || echo 0; }
