#!/usr/bin/env bash
# Installs the Debian packages hymoe builds with, only those that are missing.
# Idempotent: a second run installs nothing and takes about a second.
# The CUDA toolkit is not installed here: it is optional (HYMOE_CUDA=AUTO builds without it).
set -euo pipefail

packages=(
    build-essential cmake ninja-build pkg-config
    libfmt-dev libspdlog-dev nlohmann-json3-dev libcli11-dev
    libgtest-dev libgmock-dev libbenchmark-dev
    clang libclang-rt-dev
    libpcre2-dev libutf8proc-dev libedit-dev
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "setup: installing ${missing[*]}" >&2
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
    sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done" >&2
