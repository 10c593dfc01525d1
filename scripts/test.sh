#!/usr/bin/env bash
# Builds hymoe and runs every test, twice:
#   build/       Release, CUDA when nvcc is present (GPU tests skip, saying why, without a GPU; the
#                CPU-side checks of the GPU code, such as the block decoders, still run)
#   build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer, CPU only: the file readers,
#                their bad-input and fuzz-corpus tests, the CPU ops, the forward pass, the
#                tokenizers, the chat templates (Jinja), the sampler and the CLI run under the
#                sanitizers
# Installs missing Debian packages first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
jobs=$(nproc)

# CUDA code is compiled for Ampere (sm_80, the oldest GPU hymoe supports) and Hopper (sm_90, which
# has code paths of its own): every device path compiles, at half the time of all four defaults.
cmake -S . -B build -G Ninja -DHYMOE_CUDA=AUTO -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CUDA_ARCHITECTURES=80;90" >/dev/null
cmake --build build -j"$jobs"

# -g1 (line tables only): the sanitizers' reports keep file:line, at a fraction of full debug
# info's compile time.
cmake -S . -B build-asan -G Ninja -DHYMOE_CUDA=OFF -DHYMOE_SANITIZE=ON -DHYMOE_BUILD_BENCH=OFF \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" >/dev/null
cmake --build build-asan -j"$jobs"

echo "== sanitizer build (ASan + UBSan): file formats, fuzz corpus, CPU ops, models, tokenizers, chat, sampling, CLI, offload =="
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs" -L 'format|fuzz|quant|cpu|model|tokenizer|sampling|cli|chat|offload'

echo "== release build: all tests =="
ctest --test-dir build --output-on-failure -j"$jobs"
