// The host-RAM expert tier: a budget of RAM holds the experts the cache policy keeps; every
// other expert is read from the model file when a token needs it (or ahead of need, when the
// prefetcher predicts it). Per model, shared by its sessions.
//
// One layer's experts, given the routing (run()):
//   1. needs = the distinct experts of the batch; hits are pinned; each miss gets a slot from
//      the policy (never one the batch needs) and is queued on the loader thread; misses that
//      find no slot (a zero or all-needed pool) go through a small staging area instead;
//   2. the predicted experts of the next MoE layer are queued behind the misses (prefetch);
//   3. experts already in RAM are computed while the misses load; then the loaded ones; then
//      the staged ones, a staging area's worth at a time.
// The logits do not depend on the budget: the same kernels run on the same bytes.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <span>
#include <vector>

#include "cpu/moe.hpp"
#include "cpu/thread_pool.hpp"
#include "hymoe/engine.hpp"
#include "offload/expert_cache.hpp"
#include "offload/expert_loader.hpp"
#include "offload/expert_store.hpp"
#include "util/aligned_buffer.hpp"

namespace hymoe::offload {

class RamTier {
public:
    // budget: bytes of RAM for cached experts (0: none; every expert is read when used).
    RamTier(const ModelConfig& config, const ModelWeights& weights, const ModelFile& file, uint64_t budget,
            CachePolicyKind policy);
    ~RamTier();
    RamTier(const RamTier&) = delete;
    RamTier& operator=(const RamTier&) = delete;

    // out [n][d_model] = the layer's routed experts over h [n][d_model], as cpu::moe_experts
    // computes them. ids, weights: [n][k]; probs: [n][n_experts] (or empty) for the policy.
    // next_layer / predicted: the next MoE layer and the experts predicted for it (prefetched
    // if there is room); next_layer < 0 for none.
    void run(int64_t layer, const ExpertSet& experts, const float* h, int64_t n, const int32_t* ids,
             const float* weights, std::span<const float> probs, float* out, int64_t next_layer,
             std::span<const int32_t> predicted, cpu::MoeScratch& scratch, cpu::ThreadPool& pool);

    ExpertCacheStats stats() const;
    // Whether run() reads the router's probabilities (only the score policy does).
    bool wants_probs() const { return cache_.policy() == CachePolicyKind::Score; }
    const ExpertStore& store() const { return store_; }

private:
    struct LayerSlots {
        AlignedBuffer memory;         // [slots][slot_bytes]
        std::vector<uint8_t> ready;   // [slots] 1 once the slot holds its expert's bytes
        std::vector<uint8_t> failed;  // [slots] the read failed (error_ says why)
        std::vector<int32_t> predicted;  // experts predicted for the next step of this layer
    };

    std::byte* slot_data(int64_t layer, int32_t slot) const;
    void queue_load(int64_t layer, int32_t expert, int32_t slot, bool release_pin);  // m_ held
    void wait_ready(std::unique_lock<std::mutex>& lk, int64_t layer, int32_t slot);
    struct Part {
        int32_t expert;
        const std::byte* data;  // a slot or a staging area holding it
        int32_t slot = -1;      // the slot, or -1 for staging
    };
    // out += the experts of `parts` over the pairs routed to them.
    void compute(int64_t layer, const ExpertSet& experts, std::span<const Part> parts, const float* h, int64_t n,
                 const int32_t* ids, const float* weights, float* out, cpu::MoeScratch& scratch,
                 cpu::ThreadPool& pool);

    const ModelConfig& config_;
    ExpertStore store_;
    mutable std::mutex m_;  // cache_, slots_, counters; one layer's run at a time
    std::mutex run_m_;
    std::condition_variable loaded_;
    ExpertCache cache_;
    std::vector<LayerSlots> slots_;
    AlignedBuffer staging_;  // [staging_experts_][max slot bytes]
    int64_t staging_experts_ = 0;
    uint64_t max_slot_bytes_ = 0;
    uint64_t cache_bytes_ = 0;
    double read_seconds_ = 0;
    std::exception_ptr error_;
    ExpertSet view_;  // the experts of the part being computed, as they lie in RAM
    std::vector<int32_t> needed_, masked_ids_;
    std::vector<uint8_t> in_part_;  // [n_experts]
    std::vector<bool> hit_;
    ExpertLoader loader_;  // last: its thread stops before the slots it reads into go away
};

}  // namespace hymoe::offload
