// Internal to the CUDA backend: the model's weights on the GPU, and the kernels' parameters taken
// from the config (cuda_backend_weights.cpp).
#pragma once

#include <cstdint>
#include <vector>

#include "cuda/device_pool.hpp"
#include "launch.hpp"
#include "model/config.hpp"
#include "model/weights.hpp"

namespace hymoe::cuda_backend {

struct DeviceWeights {
    // The host weights' structure with every MatrixRef::data and float* pointing into device
    // memory (same shapes, same types); `owned` is empty.
    ModelWeights mirror;
    // [n_layers] each MoE layer's routed experts as expert_ffn reads them (device arrays of
    // per-expert matrix pointers); n_experts == 0 for a dense layer. The expert cache swaps these.
    std::vector<kernels::ExpertWeights> experts;
    // [0] the non-expert weights, then one per MoE layer (its experts, their biases, and the
    // pointer arrays), so a layer's experts can later be dropped or replaced as a unit.
    std::vector<cuda::DeviceAllocation> arenas;
    uint64_t bytes = 0;  // all arenas together
};

// What upload_weights will charge to the budget. No CUDA call; throws hymoe::Error naming a
// tensor whose type the GPU kernels do not read, or an expert set with mixed types.
uint64_t device_weight_bytes(const ModelConfig& config, const ModelWeights& host);

// Checks the budget for all of it first, then uploads every weight through pinned staging.
// With routed_experts false the routed experts' matrices stay on the host (the mirror keeps their
// host views; an expert tier fills the pointer arrays, which start null); their biases and the
// pointer arrays are uploaded all the same. The pool's device must be current.
DeviceWeights upload_weights(const ModelConfig& config, const ModelWeights& host, cuda::DevicePool& pool,
                             bool routed_experts = true);

// What upload_weights(..., false) charges: every weight but the routed experts' matrices.
uint64_t device_weight_bytes_without_experts(const ModelConfig& config, const ModelWeights& host);

// Bytes of a matrix in its stored type.
uint64_t matrix_bytes(const cpu::MatrixRef& m);

// The kernels' view of a weight matrix (data already in device memory).
kernels::WeightMatrix weight_matrix(const cpu::MatrixRef& w);

// The kernels' parameters for the model's routing, GLU and rotary embedding.
kernels::RouterParams router_params(const ModelConfig& c);
kernels::GluParams glu_params(const ModelConfig& c);
kernels::RopeParams rope_params(const ModelConfig& c);

}  // namespace hymoe::cuda_backend
