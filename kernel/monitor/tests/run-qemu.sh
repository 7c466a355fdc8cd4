#!/usr/bin/env bash
# Boots the monitor in QEMU with the throwaway RMM and NS stubs of
# fixtures/, over a real atoll-hes, and checks the console.
#   kernel/monitor/tests/run-qemu.sh [--no-build]
# Needs: Debian's rustc-web/cargo-web/rust-web-src, gcc-aarch64-linux-gnu,
# qemu-system-aarch64 >= 10 with RME, python3; atoll-hes is built with the
# host toolchain (`cargo build -p atoll-hes` in the root workspace).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CRATE=$(dirname "$HERE")
ROOT=$(cd "$CRATE/../.." && pwd)
OUT=${OUT:-$CRATE/target/qemu-test}
PORT=${PORT:-$((20000 + RANDOM % 20000))}
TIMEOUT=${TIMEOUT:-60}
mkdir -p "$OUT"

if [[ "${1:-}" != "--no-build" ]]; then
    (cd "$CRATE" && RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo build --release \
        --target aarch64-unknown-none-softfloat \
        -Zbuild-std=core,alloc,compiler_builtins -Zbuild-std-features=compiler-builtins-mem)
    (cd "$ROOT" && cargo build -q -p atoll-hes)
fi
ELF=$CRATE/target/aarch64-unknown-none-softfloat/release/atoll-monitor
aarch64-linux-gnu-objcopy -O binary "$ELF" "$OUT/monitor.bin"

stub() { # name load
    aarch64-linux-gnu-gcc -nostdlib -static -Wl,--build-id=none -Wl,-Ttext="$2" \
        -I"$HERE/fixtures" -o "$OUT/$1.elf" "$HERE/fixtures/$1.S"
    aarch64-linux-gnu-objcopy -O binary "$OUT/$1.elf" "$OUT/$1.bin"
}
stub rmm-stub 0x40100000
stub ns-stub 0x60000000

python3 "$HERE/pack.py" "$OUT/atoll-fw.bin" "$OUT/monitor.bin" \
    1:0x40100000:"$OUT/rmm-stub.bin" 2:0x60000000:"$OUT/ns-stub.bin"

HES_STATE=$OUT/hes-state
mkdir -p "$HES_STATE"
"$ROOT/target/debug/atoll-hes" --provision "$HES_STATE/provision.bin" \
    --socket "$HES_STATE/hes.sock" --tcp "$PORT" >"$OUT/hes.log" 2>&1 &
HES_PID=$!
trap 'kill $HES_PID 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
    sleep 0.2
done

set +e
timeout "$TIMEOUT" qemu-system-aarch64 \
    -M virt,secure=on,virtualization=on,gic-version=3,acpi=off \
    -cpu max,x-rme=on,sme=off,sve=off,pauth-impdef=on -smp 1 -m 2G -nographic \
    -bios "$OUT/atoll-fw.bin" \
    -serial file:"$OUT/console.log" \
    -chardev socket,id=hes,host=127.0.0.1,port=$PORT \
    -serial chardev:hes -monitor none
RC=$?
set -e
tr -d '\r' <"$OUT/console.log" >"$OUT/console.txt"
cat "$OUT/console.txt"
echo "--- qemu exit $RC"

fail=0
expect() {
    if grep -qF -- "$1" "$OUT/console.txt"; then echo "ok: $1"; else echo "MISSING: $1"; fail=1; fi
}
expect "el3: Atoll EL3 monitor"
expect "el3: measured BL2"
expect "el3: loaded RMM at 0x40100000"
expect "el3: loaded NS-HOST at 0x60000000"
expect "el3: HES boot complete"
expect "el3: GPC enabled, GPCCR_EL3 0x13502"
expect "rmm: stub up x0..x3 0x0000000000000000 0x0000000000000004 0x0000000000000001 0x00000000418ff000"
expect "rmm: manifest version/banks/base/size 0x0000000000000003 0x0000000000000001 0x0000000040000000 0x0000000080000000"
expect "rmm: EL3_FEATURES 0x0000000000000000"
expect "rmm: GET_REALM_KEY 0x0000000000000000 0x0000000000000030"
expect "rmm: GET_PLAT_TOKEN 0x0000000000000000 0x0000000000000100"
expect "rmm: token bytes 0x"
expect "rmm: GET_PLAT_TOKEN idle 0xfffffffffffffffb"
expect "rmm: VHUK_A 0x0000000000000000"
expect "rmm: unknown 0xffffffffffffffff"
expect "el3: RMM booted; entering NS host at 0x60000000 (NS-EL2)"
expect "ns: stub up x0 0x0000000040000000"
expect "ns: PSCI_VERSION 0x0000000000010001"
expect "ns: PSCI_FEATURES(CPU_ON) 0xffffffffffffffff"
expect "ns: CPU_ON 0xffffffffffffffff"
expect "ns: RMI_VERSION 0x0000000000000000 0x0000000000010000 0x0000000000010000"
expect "ns: DELEGATE 0x41900000 0x0000000000000000 0x0000000000000000"
expect "ns: DELEGATE again 0x0000000000000001 0xfffffffffffffffd"
expect "ns: UNDELEGATE 0x41900000 0x0000000000000000 0x0000000000000000"
expect "ns: DELEGATE realm 0x40100000 0x0000000000000001 0xfffffffffffffffd"
expect "ns: DELEGATE 0x100000000 0x0000000000000001 0xfffffffffffffffe"
expect "ns: GTSI_DELEGATE from NS 0xffffffffffffffff"
expect "ns: unknown 0xffffffffffffffff"
expect "el3: system off"
[[ $RC == 0 ]] || { echo "QEMU did not power off cleanly (rc $RC)"; fail=1; }
exit $fail
