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
// The logits do not depend on the budget: the same kernels run on the same bytes. Given the
// CPU's rates, each layer's time is also predicted (CostModel::plan_ram_layer) from the split
// of step 1, and summed per layer in CacheCounters::predicted_seconds.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "cpu/moe.hpp"
#include "cpu/thread_pool.hpp"
#include "hymoe/engine.hpp"
#include "offload/cost_model.hpp"
#include "offload/expert_cache.hpp"
#include "offload/expert_loader.hpp"
#include "offload/expert_store.hpp"
#include "util/aligned_buffer.hpp"

namespace hymoe::offload {

// The model file's read rate, as the loader reads: experts spread over the MoE layers, one
// read each, until `max_bytes` or `max_seconds` (at least one read timed, after one untimed).
// Bytes are the experts' own (ExpertStore::expert_bytes), in GB/s; 0 for a store without experts.
double measure_file_read_gbs(const ExpertStore& store, uint64_t max_bytes, double max_seconds);

class RamTier {
public:
    // budget: bytes of RAM for cached experts (0: none; every expert is read when used).
    // rates: for the cost model, the CPU's cpu_mem_gbs (0: nothing is predicted) and cpu_gops
    // (0: compute never binds), and file_read_gbs (0: measured here by reading experts, see
    // measure_file_read_gbs; only when something is predicted). The GPU's rates are not used.
    RamTier(const ModelConfig& config, const ModelWeights& weights, const ModelFile& file, uint64_t budget,
            CachePolicyKind policy, const MachineRates& rates = {});
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
    bool wants_probs() const { return policy_reads_probs(cache_.policy()); }
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
    NeedOrder need_order_;
    std::vector<int32_t> needed_;         // the batch's distinct experts, heaviest first
    std::vector<int32_t> needed_sorted_;  // the same, ascending
    std::vector<int32_t> masked_ids_;
    std::vector<uint8_t> in_part_;  // [n_experts]
    std::vector<bool> hit_;
    // The cost model (null: no rates were given) and its inputs: one expert of each layer, and
    // the tokens of each needed expert by where run() found it.
    std::unique_ptr<CostModel> cost_;
    std::vector<ExpertSize> size_;  // [n_layers]
    double file_read_gbs_ = 0;
    std::vector<int64_t> tokens_;  // [needed_.size()]
    std::vector<int64_t> ready_tokens_, loading_tokens_, staged_tokens_;
    ExpertLoader loader_;  // last: its thread stops before the slots it reads into go away
};

}  // namespace hymoe::offload
