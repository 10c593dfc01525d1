#!/usr/bin/env bash
# The CPU benchmarks of docs/performance.md: OLMoE-1B-7B- and Qwen3-30B-A3B-shaped models with
# random weights (hymoe synth) in Q8_0 and Q4_K_M, prefill 128 and decode 32 tokens, on the
# given thread count. Writes one JSON per model to bench/results/cpu-<shape>-<type>.json.
#
#   scripts/bench-cpu.sh [THREADS] [MODEL_DIR]       (HYMOE=path/to/hymoe to skip the build)
#
# Qwen3-30B-A3B is cut to QWEN_LAYERS layers (default 16 of 48) so the Q8_0 file fits in the
# page cache of a 24 GiB machine; the limits hymoe bench prints are computed from the file it
# runs, so the fractions stay comparable. Needs about 20 GB of disk in MODEL_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-2}"
models="${2:-build/bench-models}"
qwen_layers="${QWEN_LAYERS:-16}"
reps="${REPS:-3}"

hymoe="${HYMOE:-}"  # a hymoe binary to use instead of building build/bin/hymoe
if [ -z "$hymoe" ]; then
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build build --target hymoe_cli
    hymoe=./build/bin/hymoe
fi
mkdir -p "$models" bench/results

for spec in olmoe-1b-7b:0 "qwen3-30b-a3b:$qwen_layers"; do
    shape="${spec%%:*}"
    layers="${spec##*:}"
    for type in q8_0 q4_k; do
        file="$models/$shape-$type.gguf"
        layer_flag=()
        [ "$layers" != 0 ] && layer_flag=(--layers "$layers")
        if [ ! -f "$file" ]; then
            "$hymoe" synth --shape "$shape" --type "$type" "${layer_flag[@]}" --seed 1 -o "$file"
        fi
        out="bench/results/cpu-$shape-$type.json"
        # Read the file once so no repetition waits on the disk for an expert not yet in the page cache.
        cat "$file" > /dev/null
        "$hymoe" bench -m "$file" -p 128 -n 32 -t "$threads" -r "$reps" -o json > "$out"
        echo "wrote $out"
    done
done
