// The CUDA backend: every BackendContext op as a kernel launch (kernels/launch.hpp) or a cuBLAS
// GEMM on one stream per session, with every weight resident on one GPU under a memory budget.
//
// Decode passes (one token) after the first are captured into a CUDA graph and replayed: the
// graph is re-captured each step (positions change) and the executable graph updated in place,
// which costs far less than launching each of a pass's hundreds of kernels.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cpu/thread_pool.hpp"
#include "offload/cache_policy.hpp"
#include "offload/cost_model.hpp"
#include "runtime/backend.hpp"

namespace hymoe {

struct CudaBackendOptions {
    int device = 0;
    uint64_t gpu_mem = 0;  // budget in bytes; 0 = the device's free memory less a 512 MiB margin
    bool graphs = true;    // capture and replay decode passes (the environment's HYMOE_CUDA_GRAPHS=0 turns it off)
    // The GPU expert tier (runtime/cuda_expert_tier.hpp): -1 = every expert resident; 0 or more =
    // routed experts stay in host memory with a cache of this many bytes on the GPU (decode passes
    // then run direct, not as graphs: the split of each layer is decided on the host).
    int64_t expert_cache = -1;
    offload::CachePolicyKind cache_policy = offload::CachePolicyKind::Adaptive;
    offload::MissPolicy misses = offload::MissPolicy::Auto;
    bool prefetch = true;
    // --attn cpu: each session's KV cache in page-locked host memory the GPU writes over PCIe, and
    // attention computed on the CPU (runtime/cuda_host_attention.hpp); decode passes then run
    // direct, not as graphs. Everything else stays on the GPU.
    bool cpu_attention = false;
    // Computes the misses the CPU takes and, with cpu_attention, attention (needed with either).
    cpu::ThreadPool* cpu_pool = nullptr;
};

// Bytes every weight (non-expert and expert) takes on the GPU, for device selection: what
// make_cuda_backend will charge to the budget for them. No CUDA call; throws hymoe::Error naming
// a tensor whose type the GPU kernels do not read.
uint64_t cuda_weight_bytes(const ModelWeights& host, const ModelConfig& config);

// Uploads every weight to GPU `options.device` (the budget is checked first, with a one-line error
// naming what does not fit) and returns the backend. Throws hymoe::Error when there is no usable
// GPU (naming why) or a weight has a type the GPU kernels do not read (naming the tensor and type).
// `config` is copied; `host` may be released once this returns, except with the expert tier
// (it reads the experts from there).
std::unique_ptr<Backend> make_cuda_backend(const ModelConfig& config, const ModelWeights& host,
                                           const CudaBackendOptions& options);

// How a CUDA context ran its passes (for tests and `hymoe bench`).
struct CudaGraphStats {
    int64_t direct = 0;        // passes launched op by op (prefill, the first decode, graphs off)
    int64_t captured = 0;      // decode passes run as a graph
    int64_t replayed = 0;      // ... of which reused the executable graph (updated in place)
    int64_t instantiated = 0;  // ... of which needed a new executable graph
    int64_t split = 0;         // captures ended early because a buffer had to grow (the rest ran direct)
};

// The stats of a context made by a CUDA backend; all zero for any other context.
CudaGraphStats cuda_graph_stats(const BackendContext& context);

// "cuda:0: weights 3.10 GiB, kv cache 0.25 GiB, scratch 0.05 GiB of 8.00 GiB"; "" for another backend.
// With cpu_attention the GPU's kv cache is 0 and the host's is named after it:
// "...; kv cache in host RAM 0.25 GiB (--attn cpu)".
std::string cuda_memory_summary(const Backend& backend);

}  // namespace hymoe
