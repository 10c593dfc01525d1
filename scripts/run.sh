#!/usr/bin/env bash
# The main job, on a model made here: builds hymoe, writes a small Mixtral-shaped MoE model with
# random weights and Llama's real 32000-token vocabulary (hymoe synth --vocab), describes it
# (hymoe inspect), and generates from a prompt on the CPU, streaming the text (hymoe run).
# The weights are random, so the text is noise; pass a real model to get real text:
#   scripts/run.sh path/to/model.gguf ["your prompt"]
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cmake -S . -B build -G Ninja -DHYMOE_CUDA=AUTO -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target hymoe_cli

model="${1:-}"
prompt="${2:-Once upon a time, in a land far away,}"
if [ -z "$model" ]; then
    model=build/demo/tiny-mixtral-llama-vocab.gguf
    mkdir -p build/demo
    ./build/bin/hymoe synth --shape tiny-mixtral --vocab tools/hymoe/demo/ggml-vocab-llama-spm.gguf --seed 1 -o "$model"
fi
./build/bin/hymoe inspect "$model"
echo
echo "== hymoe run -m $model -p \"$prompt\" -n 48 =="
./build/bin/hymoe run -m "$model" -p "$prompt" -n 48 --seed 1
