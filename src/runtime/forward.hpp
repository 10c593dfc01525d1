// The one forward pass of every architecture, on the CPU. It reads ModelConfig's fields and
// never asks which architecture it runs.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cpu/thread_pool.hpp"
#include "format/model_file.hpp"
#include "hymoe/engine.hpp"
#include "model/config.hpp"
#include "model/weights.hpp"

namespace hymoe {

struct Model::Impl {
    ModelFile file;
    ModelConfig config;
    ModelWeights weights;
    int64_t n_ctx = 0;
    std::string arch_name;
    mutable cpu::ThreadPool pool;

    Impl(ModelFile f, ModelConfig c, ModelWeights w, int64_t ctx, int n_threads);
};

// One session's keys and values, per layer.
//   ordinary attention: k [n_ctx, n_kv_heads*head_dim], v [n_ctx, n_kv_heads*head_dim_v]
//   MLA: k [n_ctx, kv_lora + rope] = normalized latent | rotated shared rope key; v unused
struct KvCache {
    struct Layer {
        std::vector<float> k;
        std::vector<float> v;
    };
    std::vector<Layer> layers;
    int64_t n_ctx = 0;

    KvCache(const ModelConfig& config, int64_t n_ctx);
};

// Buffers reused across calls (grown, never shrunk).
struct ForwardScratch {
    std::vector<float> x, h, attn, ffn, q, k, v, tmp_a, tmp_b, tmp_c, router, weights, expert_in, expert_out,
        shared_gate;
    std::vector<int32_t> experts;
    std::vector<cpu::MatmulJob> jobs;                    // an MoE layer's expert products
    std::vector<int64_t> slots_by_expert, expert_start;  // (token, slot) pairs grouped by expert
};

// Runs `tokens` at positions n_past, n_past+1, ... appending their keys and values to the
// cache. logits: [all_logits ? n : 1][n_vocab].
void forward(const Model::Impl& model, KvCache& cache, int64_t n_past, std::span<const int32_t> tokens, bool all_logits,
             ForwardScratch& scratch, std::vector<float>& logits);

}  // namespace hymoe
