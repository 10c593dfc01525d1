// The library API: load a model once, run any number of sessions over it.
//
//   auto model = hymoe::Model::load("model.gguf", {.n_threads = 8, .n_ctx = 4096});
//   hymoe::Session session(model);
//   session.prefill(prompt_ids);
//   int32_t next = argmax(session.logits());
//   session.decode(next);
//
// Weights are shared and read-only; each Session keeps its own KV cache. Sessions of one model
// share its thread pool, so calls from several threads take turns.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace hymoe {

// Where routed experts live when they do not all fit (docs/offload.md). The defaults keep
// every expert where the backend put it.
struct OffloadOptions {
    // Host RAM for expert weights, in bytes: -1 = every expert stays mapped from the file (no RAM
    // tier); 0 or more = a RAM cache of that size, every other expert read from the model file
    // when a token needs it (0: every expert is read when used).
    int64_t ram_experts = -1;
    // How the expert caches pick what to give up: "lru", "lfu", "score" (HybriMoE) or "adaptive"
    // (the score with its decay chosen per layer as it runs; docs/offload.md).
    std::string cache_policy = "adaptive";
    // Predict the next layer's experts from the current hidden state and load them ahead.
    bool prefetch = true;
    // The GPU tier (a CUDA device only; errors on the CPU, except attn "cpu", which is what the
    // CPU does anyway). expert_cache: GPU bytes for cached experts, the rest computed from host
    // memory (-1: every expert resident on the GPU); misses: where an uncached expert runs,
    // "auto" (the cost model decides), "cpu" or "gpu" (copied first: naive offloading); attn:
    // where attention and its KV cache live, "auto" (the GPU, for now), "gpu", or "cpu" (the KV
    // cache in host RAM, written by the GPU over PCIe, attention on the CPU's threads: a long
    // context without the KV cache's GPU memory).
    int64_t expert_cache = -1;
    std::string attn = "auto";
    std::string misses = "auto";
    // The rates the RAM tier's cost model predicts from (ExpertCacheStats::Layer::predicted_seconds;
    // docs/offload.md): the CPU's streaming read of weights in GB/s (0: the tier predicts nothing),
    // its matmul rate over the experts' weight types in GOP/s (0: compute never binds), and the
    // model file's read rate for one expert in GB/s (0: measured when the model loads, a few
    // expert reads of up to 64 MiB). hymoe bench passes its own probes for the CPU's two.
    double cpu_read_gbs = 0;
    double cpu_gops = 0;
    double file_read_gbs = 0;
};

struct LoadOptions {
    int n_threads = 0;     // compute threads; 0 = all hardware threads
    int64_t n_ctx = 4096;  // KV cache length per session; 0 = the model's training context
    // Where the forward pass runs: "auto" (GPU 0 when one is present and the weights fit in
    // gpu_mem, else the CPU, saying why once), "cpu", "cuda" or "cuda:N" (an error when that GPU
    // cannot be used or the weights do not fit).
    std::string device = "auto";
    uint64_t gpu_mem = 0;  // GPU memory budget in bytes; 0 = the device's free memory less a margin
    OffloadOptions offload = {};
};

// The expert cache's work so far, per layer and in total (all zero without an expert tier).
struct ExpertCacheStats {
    struct Layer {
        int64_t slots = 0;                   // experts the layer's pool holds
        uint64_t slot_bytes = 0;             // memory one slot takes (an expert plus alignment)
        uint64_t hits = 0, misses = 0, evictions = 0;
        uint64_t prefetched = 0, prefetch_used = 0;
        uint64_t predicted = 0, predicted_right = 0, used = 0;
        // Expert bytes moved into slots or staging: RAM tier, read from the model file; GPU tier,
        // copied host -> device (prefetched experts included).
        uint64_t bytes_loaded = 0;
        // Seconds the cost model predicts for the layer's routed experts, summed over every batch
        // it ran: GPU tier, CostModel::plan_layer's LayerPlan::seconds (the split as planned;
        // a prefetched expert counts as cached, its copy in no layer's time); RAM tier,
        // CostModel::plan_ram_layer (0 without OffloadOptions::cpu_read_gbs).
        double predicted_seconds = 0;
    };
    std::vector<Layer> layers;  // [n_layers]; layers without routed experts stay zero
    Layer total;
    std::string tier;            // "ram", "gpu", or "" without an expert tier
    std::string policy;          // "" without an expert tier
    uint64_t cache_bytes = 0;    // memory held for cached experts (RAM or GPU)
    uint64_t staging_bytes = 0;  // RAM tier: RAM for experts read past a full cache
    double read_seconds = 0;     // RAM tier: time spent reading experts from the file (loader and staging)
    double file_read_gbs = 0;    // RAM tier: the model file's read rate the cost model used, GB/s
    // GPU tier: GPU time the compute stream spent waiting for expert copies (prefetches included),
    // in seconds, timed by CUDA events around each wait.
    double copy_wait_seconds = 0;
};

// One layer's routing of one batch, as the router chose it.
struct RoutingStep {
    int64_t layer = 0;
    int64_t position = 0;  // of the batch's first token
    int64_t n_tokens = 0;
    int64_t n_experts = 0, n_experts_used = 0;
    std::span<const int32_t> experts;  // [n_tokens][n_experts_used], best first
    std::span<const float> weights;    // [n_tokens][n_experts_used], the weights that scale them
    std::span<const float> probs;      // [n_tokens][n_experts]: softmax of the router logits
};
using RoutingObserver = std::function<void(const RoutingStep&)>;

class Model {
public:
    // Opens a GGUF file, a safetensors file or an HF model directory. Throws hymoe::Error for
    // an unsupported architecture or a missing, misshapen or unsupported tensor.
    static std::shared_ptr<const Model> load(const std::string& path, const LoadOptions& options = {});
    ~Model();

    const std::string& path() const;
    const std::string& architecture() const;  // "qwen3moe", "deepseek2", ... (GGUF names)
    int64_t n_vocab() const;
    int64_t n_ctx() const;  // per-session context length
    int n_threads() const;
    const std::string& backend_name() const;  // "cpu" or "cuda:0 (NVIDIA H100 80GB HBM3)"
    ExpertCacheStats expert_cache_stats() const;

    struct Impl;
    const Impl& impl() const { return *impl_; }

private:
    explicit Model(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

class Session {
public:
    explicit Session(std::shared_ptr<const Model> model);
    ~Session();
    Session(Session&&) noexcept;
    Session& operator=(Session&&) noexcept;

    // Evaluates tokens after those already in the cache. With all_logits, the logits of every
    // one of them are kept (all_logits()); logits() is always the last one's.
    void prefill(std::span<const int32_t> tokens, bool all_logits = false);
    // Evaluates one more token.
    void decode(int32_t token);

    std::span<const float> logits() const;      // [n_vocab] after the last evaluated token
    std::span<const float> all_logits() const;  // [n_tokens][n_vocab] of the last prefill(all_logits)
    int64_t n_past() const;                     // tokens in the cache
    void reset();                               // empties the cache
    // Keeps the first n_keep tokens and forgets the rest (0 <= n_keep <= n_past()), so a
    // conversation re-evaluates only what changed. logits() is empty until the next prefill.
    void truncate(int64_t n_keep);

    const Model& model() const;

    // Called for every MoE layer of every later prefill or decode, in layer order, before the
    // layer's experts run (an empty function stops it). Needs a backend whose buffers the host
    // can read (the CPU).
    void set_routing_observer(RoutingObserver observer);

private:
    struct State;
    std::shared_ptr<const Model> model_;
    std::unique_ptr<State> state_;
};

}  // namespace hymoe
