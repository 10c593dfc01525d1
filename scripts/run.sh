#!/usr/bin/env bash
# The main job, on a model made here: builds hymoe, writes a small MoE model with random weights
# (hymoe synth), describes it (hymoe inspect) and runs it on the CPU over a few token ids
# (hymoe eval). Text in and text out arrive with the tokenizers; then this script generates.
# Pass a model path (GGUF or HF directory) to use that instead: scripts/run.sh path/to/model.gguf
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
echo
echo "== the model run on token ids 1..8 (random weights: the logits are noise) =="
./build/bin/hymoe eval -m "$model" --tokens 1,2,3,4,5,6,7,8 --top 4
