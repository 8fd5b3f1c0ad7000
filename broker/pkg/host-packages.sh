#!/usr/bin/env bash
# Installs the Debian packages the Pi scripts use on the x86-64 build machine, when missing:
# qemu-user and the arm64/armhf glibc (for running ARM binaries), Mosquitto's clients (smoke
# test), python3-venv (zig and cargo-zigbuild come from PyPI), binutils (readelf) and lintian.
set -euo pipefail

packages=(qemu-user libc6-arm64-cross libc6-armhf-cross mosquitto-clients python3-venv binutils lintian)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
