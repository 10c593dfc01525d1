// Routed experts on the CPU, each on the tokens routed to it: the CPU backend's moe_experts and
// the offload scheduler's way of computing experts the GPU (or the RAM cache) does not hold.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu/matmul.hpp"
#include "cpu/thread_pool.hpp"
#include "model/config.hpp"
#include "model/weights.hpp"

namespace hymoe::cpu {

// Scratch kept between calls so decode does not allocate.
struct MoeScratch {
    std::vector<float> in, gate, up, out;  // [pairs][d_model], [pairs][d_ff] x2, [pairs][d_model]
    std::vector<MatmulJob> jobs;
    std::vector<int64_t> slots_by_expert, expert_start;
};

// out [n][d_model] (=, or += with accumulate) Σ_k weights[t][k] · expert_{ids[t][k]}(h[t]).
//   h: [n][d_model]; ids, weights: [n][n_experts_used].
// A pair whose id is negative is skipped, so a caller can compute a layer's experts in parts
// (only the experts present in ids need valid matrices in `experts`). Within one call a token's
// pairs are summed in expert order; parts add in the order they are computed.
void moe_experts(const ModelConfig& c, const ExpertSet& experts, const float* h, int64_t n, const int32_t* ids,
                 const float* weights, float* out, bool accumulate, MoeScratch& scratch, ThreadPool& pool);

}  // namespace hymoe::cpu
