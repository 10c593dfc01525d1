// The GPU expert tier: routed experts live in host memory (the mapped model file); a budget of
// GPU memory holds a cache of them, slot by slot, per layer. For each MoE layer and batch:
//   1. the routing comes to the host (one stream sync per MoE layer: the split depends on it);
//   2. MoeScheduler splits the pairs: hits run on the GPU; a miss is either copied into a slot
//      and run there, or run on the CPU, whichever the CostModel says ends the layer sooner
//      (--misses cpu / gpu fix the choice);
//   3. copies go on a copy stream through pinned staging; the layer's pointer arrays are
//      rewritten and uploaded after them; the GPU part (expert_ffn over the GPU's pairs, the
//      others marked -1) is queued behind an event;
//   4. while the GPU works, the CPU computes its pairs (cpu::moe_experts on the pool), and its
//      partial output is uploaded and added to the GPU's;
//   5. (batches of up to 4 tokens) the next MoE layer's router, applied on the host to this
//      layer's hidden state, predicts its experts; those not cached are copied into its slots
//      behind this layer's copies, and its GPU part waits for them.
// stats() adds what the copies cost: bytes copied (CacheCounters::bytes_loaded), the GPU time
// the compute stream waited for them (CopyWaitClock), and the cost model's predicted time of
// every layer it planned (CacheCounters::predicted_seconds, added by MoeScheduler::plan).
// NOT YET RUN ON A GPU: see docs/gpu-status.md.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "cpu/moe.hpp"
#include "cpu/thread_pool.hpp"
#include "cuda/device_pool.hpp"
#include "cuda/memory.hpp"
#include "hymoe/engine.hpp"
#include "launch.hpp"
#include "offload/cost_model.hpp"
#include "offload/expert_cache.hpp"
#include "offload/moe_scheduler.hpp"
#include "offload/prefetcher.hpp"

namespace hymoe {

// The GPU time a stream spends in cudaStreamWaitEvent, from two timing events recorded on it
// around each wait: the first completes when the stream's earlier work is done, the second when
// the wait is satisfied. Pairs wait in a ring of events created once; completed pairs are read
// (cudaEventQuery, no synchronization) when the ring wraps, and every pending pair by seconds().
class CopyWaitClock {
public:
    CopyWaitClock();
    // Records the first event, makes `stream` wait for `copied`, records the second.
    void wait(cudaStream_t stream, cudaEvent_t copied);
    // Every wait so far, in seconds; synchronizes the events of pairs still pending.
    double seconds();

private:
    static constexpr size_t kPairs = 64;
    // Adds the pending pairs that have completed, oldest first; with `block`, waits for each.
    void harvest(bool block);

    std::vector<cuda::Event> before_, after_;  // [kPairs] each, timing-enabled
    size_t next_ = 0;     // the pair the next wait() records
    size_t pending_ = 0;  // recorded, not yet read: the pairs before next_, wrapping
    double seconds_ = 0;
};

struct CudaExpertTierOptions {
    uint64_t cache_bytes = 0;  // GPU memory for cached experts
    offload::CachePolicyKind policy = offload::CachePolicyKind::Adaptive;
    offload::MissPolicy misses = offload::MissPolicy::Auto;
    bool prefetch = true;  // copy the next MoE layer's predicted experts behind this layer's copies
};

class CudaExpertTier {
public:
    // tables: [n_layers] the layers' ExpertWeights as uploaded (pointer arrays null). host: the
    // host weights (the experts' bytes; they must outlive the tier). Allocates the slots from
    // `pool` and measures the rates.
    CudaExpertTier(const ModelConfig& config, const ModelWeights& host, std::vector<kernels::ExpertWeights> tables,
                   cuda::DevicePool& pool, cpu::ThreadPool& cpu_pool, const CudaExpertTierOptions& options);
    ~CudaExpertTier();

    // The layer's experts as the GPU kernels see them (the pointer arrays name the cached ones).
    const kernels::ExpertWeights& table(int64_t layer) const { return tables_[static_cast<size_t>(layer)]; }

    // Everything between the routing and the layer's output: see the file comment. ids, weights,
    // h, out: device memory of the calling context, in order on `stream`. gpu_part runs the GPU
    // kernels over the pairs of `gpu_ids` (device [n][k], -1 for the others) into out.
    template <typename GpuPart>
    void run(int64_t layer, const float* h, int64_t n, const int32_t* ids, const float* weights, float* out,
             cudaStream_t stream, GpuPart&& gpu_part);

    ExpertCacheStats stats() const;

private:
    struct Layer {
        cuda::DeviceAllocation slots;   // [n_slots][slot_bytes]: gate | up | down per slot
        uint64_t slot_bytes = 0, gate_bytes = 0, up_bytes = 0, down_bytes = 0;
        cuda::PinnedBuffer host_table;  // [3][n_experts] device pointers, uploaded after each change
    };

    // Steps 1-3 up to the GPU part's ids (device [n][k]); returns the plan. mutex_ held.
    offload::MoePlan prepare(int64_t layer, const int32_t* ids, const float* weights, const float* h, int64_t n,
                             cudaStream_t stream);
    // Step 4 after the GPU part was queued. mutex_ held.
    void finish(int64_t layer, const offload::MoePlan& plan, int64_t n, float* out, cudaStream_t stream);
    void copy_expert(int64_t layer, int32_t expert, int32_t slot);
    // Step 5: predicts the next MoE layer's experts and queues their copies. mutex_ held.
    void prefetch_next(int64_t layer, int64_t n);
    void grow_host(int64_t n);

    const ModelConfig& c_;
    const ModelWeights& host_;
    cuda::DevicePool& pool_;
    cpu::ThreadPool& cpu_pool_;
    std::vector<kernels::ExpertWeights> tables_;
    bool prefetch_;
    offload::Prefetcher prefetcher_;
    std::vector<std::vector<int32_t>> predicted_;  // [n_layers] experts predicted for the next step
    bool copies_pending_ = false;                  // prefetch copies queued since the last wait on them
    std::vector<Layer> layers_;
    std::unique_ptr<offload::CostModel> cost_;
    std::unique_ptr<offload::ExpertCache> cache_;
    std::unique_ptr<offload::MoeScheduler> scheduler_;
    mutable std::mutex mutex_;  // one layer at a time, whichever session asks; and stats()
    cuda::Stream copy_stream_;
    cuda::Event copied_;
    mutable CopyWaitClock copy_wait_;  // stats() reads it under mutex_
    cuda::Event gpu_done_;  // after the last layer's work
    std::array<cuda::PinnedBuffer, 2> staging_;
    std::array<cuda::Event, 2> drained_;
    size_t next_staging_ = 0;
    // The routing and activations on the host, and the CPU part's output: pinned, grown as needed.
    cuda::PinnedBuffer host_ids_, host_weights_, host_h_, host_out_, host_gpu_ids_;
    cuda::DeviceAllocation gpu_ids_, cpu_out_;
    int64_t host_tokens_ = 0;
    cpu::MoeScratch scratch_;
};

template <typename GpuPart>
void CudaExpertTier::run(int64_t layer, const float* h, int64_t n, const int32_t* ids, const float* weights, float* out,
                         cudaStream_t stream, GpuPart&& gpu_part) {
    std::lock_guard lock(mutex_);
    offload::MoePlan plan = prepare(layer, ids, weights, h, n, stream);
    try {
        gpu_part(gpu_ids_.as<int32_t>(), out);
        if (prefetch_) prefetch_next(layer, n);
        finish(layer, plan, n, out, stream);
    } catch (...) {
        scheduler_->unpin(layer, plan);
        throw;
    }
    // The next layer (of any session) waits for this, so no slot, table or pinned buffer of this
    // one is rewritten while queued work still reads it.
    gpu_done_.record(stream);
    scheduler_->unpin(layer, plan);
}

}  // namespace hymoe
