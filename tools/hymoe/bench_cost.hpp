// What a token costs a loaded model, counted from the weights the forward pass actually uses
// (their stored types and shapes) and the ModelConfig, and the hardware limit that follows for
// a `hymoe bench` test. docs/benchmarking.md explains every term.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "format/tensor_type.hpp"
#include "hymoe/engine.hpp"

namespace hymoe::cli {

// Operations (2 per multiply-add) by the weight type whose kernel runs them; attention's dot
// products over the KV cache count as F32.
using OpsByType = std::map<TensorType, double>;

struct ModelCost {
    // Read by every token: attention, norms, router, shared experts, dense FFNs, output norm
    // (not token_embd, not the output matrix, not routed experts).
    double base_bytes = 0;
    OpsByType base_ops;
    double embd_row_bytes = 0;  // one row of token_embd: what a token's lookup reads
    double output_bytes = 0;    // the output matrix (token_embd when tied) and its bias
    OpsByType output_ops;

    struct MoeLayer {
        int64_t n_experts = 0;
        int64_t n_used = 0;
        double expert_bytes = 0;  // one expert: gate + up + down (+ their biases)
        OpsByType expert_ops;
    };
    std::vector<MoeLayer> moe;  // one per layer with routed experts

    struct AttnLayer {
        double kv_bytes_per_key = 0;  // f32 K and V of one position (MLA: latent + rope key)
        double ops_per_key = 0;       // q·k and p·v over all heads, per visible key
        int64_t window = 0;           // keys a query sees in a sliding layer; 0 = all
    };
    std::vector<AttnLayer> attn;  // [n_layers]

    // The file as a whole.
    uint64_t file_tensor_bytes = 0;
    uint64_t file_params = 0;
    double active_params = 0;  // elements used per decoded token (one embedding row)
    std::string main_type;     // the type holding the most bytes
};

ModelCost model_cost(const Model& model);

// What one test costs per token.
struct TestCost {
    double bytes_per_token = 0;  // tg: weights + KV read per token; pp: weights read once / N + KV written
    double flops_per_token = 0;
    OpsByType ops;  // flops_per_token by the kernel that runs them
};

// tg n_gen: n_gen decode steps from an empty cache.
TestCost decode_cost(const ModelCost& cost, int64_t n_gen);
// pp n_prompt: one prefill of n_prompt tokens into an empty cache.
TestCost prefill_cost(const ModelCost& cost, int64_t n_prompt);

// The measured machine, for one thread count.
struct Probes {
    double mem_bw_gbs = 0;              // streaming read, GB/s
    std::map<TensorType, double> gops;  // matmul in-cache rate by weight type, GOP/s
};

struct Limit {
    double limit_ts = 0;
    std::string kind;      // "memory" or "compute"
    double peak_gops = 0;  // the kernels' rate over this test's mix of types
};

// tg: memory (mem_bw / bytes_per_token). pp: the lower of compute (the ops of each type at
// that type's in-cache rate) and memory (bytes_per_token at mem_bw).
Limit test_limit(const TestCost& cost, bool is_prefill, const Probes& probes);

// Seconds per token of everything but the routed experts at the hardware limit: test_limit
// of the test's cost with the routed experts left out (tg: its bytes over mem_bw; pp: the
// larger of that and its operations at the kernels' rates). An expert tier's cost model adds
// the experts' time to it (hymoe bench's bound_ts).
double non_expert_seconds(const ModelCost& cost, int64_t n_tokens, bool is_prefill, const Probes& probes);

// The kernels' rate over the routed experts' mix of weight types, GOP/s: their operations over
// the time each type's share takes at that type's rate (f32's for a type not probed); 0 for a
// model without routed experts.
double expert_gops(const ModelCost& cost, const Probes& probes);

}  // namespace hymoe::cli
