#!/usr/bin/env bash
# Builds every board crate in release for its own target, one after another (each keeps its
# own target/ directory), checks it with rustfmt and clippy, and prints the flash and static
# RAM each image needs. Fails if a build fails or the NUCLEO-F429ZI app outgrows its footprint budget.
#
# Flash = every allocated section with contents (code, read-only data, the initial values of
# .data). Static RAM = every allocated writable section (.data, .bss, .uninit, heaps reserved
# at link time) plus code the image runs from RAM (ESP32-C3 IRAM). Stack is not counted.
#
# Credentials are dummies: these builds prove the crates compile and measure them; nothing is
# flashed. Sizes come from llvm-size/llvm-readobj of the rustup llvm-tools component.
set -euo pipefail
cd "$(dirname "$0")"

# Dummy settings that pass the build scripts' checks (see build_settings.rs).
export MIDGE_BROKER=192.0.2.10:1883 MIDGE_DEVICE_ID=ci-board
export MIDGE_WIFI_SSID=ci-network MIDGE_WIFI_PASSWORD=ci-passphrase
# Each board builds into its own target/ (gitignored), whatever the caller uses.
unset CARGO_TARGET_DIR

rustup component add llvm-tools >/dev/null
tools="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin"
if [[ ! -x $tools/llvm-readobj ]]; then
    echo "boards/ci.sh: llvm-readobj not found in $tools (rustup component add llvm-tools)" >&2
    exit 1
fi

# Prints "<flash bytes> <static RAM bytes>" for an ELF; RAM code is recognised by address.
# $2: space-separated "low-high" hex windows of the chip's RAM.
footprint() {
    local flash=0 ram=0 name type addr off size es flags window lo hi
    while read -r name type addr off size es flags _; do
        [[ $flags == *A* ]] || continue
        [[ $type == PROGBITS ]] && flash=$((flash + 16#$size))
        if [[ $flags == *W* ]]; then
            ram=$((ram + 16#$size))
        elif [[ $flags == *X* ]]; then
            for window in $2; do
                lo=${window%-*} hi=${window#*-}
                if ((16#$addr >= 16#$lo && 16#$addr < 16#$hi)); then
                    ram=$((ram + 16#$size))
                fi
            done
        fi
    done < <("$tools/llvm-readobj" --elf-output-style=GNU --sections "$1" | sed -n 's/^ *\[ *[0-9]*\] //p')
    echo "$flash $ram"
}

kib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1024 }'; }

# board directory | chip RAM windows | flash budget KiB | RAM budget KiB (0: none)
boards=(
    "nucleo-f429zi|20000000-20030000 10000000-10010000|80|24"
    "pico-w|20000000-20042000|0|0"
    "esp32c3|3fc80000-3fce0000 4037c000-403e0000|0|0"
)

# Included by every build.rs, so cargo fmt in the boards does not see it.
rustfmt --edition 2024 --check build_settings.rs

report=()
failed=0
for entry in "${boards[@]}"; do
    IFS='|' read -r board windows flash_budget ram_budget <<<"$entry"
    echo "--- boards/$board"
    start=$SECONDS
    (cd "$board" && cargo fmt --check && cargo build --release --locked --quiet &&
        cargo clippy --release --locked --quiet -- -D warnings)
    elapsed=$((SECONDS - start))
    target=$(sed -n 's/^target = "\(.*\)"/\1/p' "$board/.cargo/config.toml")
    elf="$board/target/$target/release/midge-board-$board"
    "$tools/llvm-size" "$elf"
    read -r flash ram < <(footprint "$elf" "$windows")
    line=$(printf '%-14s %-30s flash %7d B (%6s KiB)  static RAM %7d B (%6s KiB)  build+clippy %4ss' \
        "$board" "$target" "$flash" "$(kib "$flash")" "$ram" "$(kib "$ram")" "$elapsed")
    if ((flash_budget > 0 && flash > flash_budget * 1024)); then
        line+="  OVER the ${flash_budget} KiB flash budget"
        failed=1
    fi
    if ((ram_budget > 0 && ram > ram_budget * 1024)); then
        line+="  OVER the ${ram_budget} KiB RAM budget"
        failed=1
    fi
    report+=("$line")
done

echo
echo "board footprints (application image; budgets: NUCLEO-F429ZI <= 80 KiB flash, <= 24 KiB RAM)"
printf '%s\n' "${report[@]}"
exit "$failed"
