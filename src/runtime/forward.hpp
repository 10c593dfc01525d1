// The one forward pass of every architecture. It reads ModelConfig's fields and never asks
// which architecture it runs, and it runs on any backend (runtime/backend.hpp): it is a list of
// BackendContext ops.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cpu/thread_pool.hpp"
#include "format/model_file.hpp"
#include "hymoe/engine.hpp"
#include "model/config.hpp"
#include "model/weights.hpp"
#include "offload/ram_tier.hpp"
#include "runtime/backend.hpp"

namespace hymoe {

struct Model::Impl {
    ModelFile file;
    ModelConfig config;
    ModelWeights weights;  // host views into the file (the CPU backend reads these)
    int64_t n_ctx = 0;
    std::string arch_name;
    mutable cpu::ThreadPool pool;
    std::unique_ptr<Backend> backend;  // set by Model::load
    std::string backend_name;
    std::unique_ptr<offload::RamTier> ram_tier;  // with OffloadOptions::ram_experts >= 0
    bool prefetch = true;

    Impl(ModelFile f, ModelConfig c, ModelWeights w, int64_t ctx, int n_threads);
};

// Runs `tokens` at positions n_past, n_past+1, ... appending their keys and values to the
// context's cache (which holds n_ctx positions). logits: [all_logits ? n : 1][n_vocab].
void forward(const Model::Impl& model, BackendContext& ctx, int64_t n_ctx, int64_t n_past,
             std::span<const int32_t> tokens, bool all_logits, std::vector<float>& logits);

}  // namespace hymoe
