#!/usr/bin/env bash
# The main job, on a model made here: builds hymoe, writes a small Mixtral-shaped MoE model with
# random weights and Llama's real 32000-token vocabulary (hymoe synth --vocab), describes it
# (hymoe inspect), and generates from a prompt on the CPU, streaming the text (hymoe run), once
# with every expert in memory and once with most of them read from the file as needed.
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
echo
# The same run with the experts offloaded: 0.3 MiB of RAM for them (half of this tiny model's
# experts), the rest read from the file when a token needs them (docs/offload.md). The text is
# the same; the last line says what the expert cache did.
echo "== hymoe run -m $model -p \"$prompt\" -n 48 --ram-experts-gb 0.0003 =="
./build/bin/hymoe run -m "$model" -p "$prompt" -n 48 --seed 1 --ram-experts-gb 0.0003
