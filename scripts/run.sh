#!/usr/bin/env bash
# The main job, on a model made here: builds hymoe, writes a small MoE model with random weights
# (hymoe synth), and describes it (hymoe inspect). Text generation arrives with the CPU
# inference work; then this script generates from the demo model instead.
# Pass a model path to inspect that instead: scripts/run.sh path/to/model.gguf
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cmake -S . -B build -G Ninja -DHYMOE_CUDA=AUTO -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target hymoe_cli

model="${1:-}"
if [ -z "$model" ]; then
    model=build/demo/tiny-qwen3moe.gguf
    mkdir -p build/demo
    ./build/bin/hymoe synth --shape tiny-qwen3moe --seed 1 -o "$model"
fi
./build/bin/hymoe inspect "$model"
