#include "runtime/cuda_expert_tier.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cpu/probe.hpp"
#include "cuda/probe.hpp"
#include "format/tensor_type.hpp"
#include "hymoe/error.hpp"
#include "runtime/cuda_backend_weights.hpp"

namespace hymoe {

namespace {

using cuda_backend::matrix_bytes;

constexpr uint64_t kStagingBytes = 8ull << 20;

}  // namespace

CopyWaitClock::CopyWaitClock() {
    for (size_t i = 0; i < kPairs; ++i) {
        before_.emplace_back(true);
        after_.emplace_back(true);
    }
}

void CopyWaitClock::wait(cudaStream_t stream, cudaEvent_t copied) {
    // The ring is full: read what has completed. The pairs are layers old and prepare() has
    // synchronized with later work since, so in practice every one has.
    if (pending_ == kPairs) harvest(false);
    if (pending_ == kPairs) {
        // Still pending: give up the oldest pair's reading rather than wait for it.
        --pending_;
    }
    before_[next_].record(stream);
    cuda::check(cudaStreamWaitEvent(stream, copied, 0), "cudaStreamWaitEvent (expert copies)");
    after_[next_].record(stream);
    next_ = (next_ + 1) % kPairs;
    ++pending_;
}

void CopyWaitClock::harvest(bool block) {
    while (pending_ > 0) {
        const size_t i = (next_ + kPairs - pending_) % kPairs;
        if (block) {
            after_[i].synchronize();
        } else {
            const cudaError_t done = cudaEventQuery(after_[i].get());
            if (done == cudaErrorNotReady) return;
            cuda::check(done, "cudaEventQuery (copy wait)");
        }
        seconds_ += after_[i].elapsed_ms_since(before_[i]) / 1000.0;
        --pending_;
    }
}

double CopyWaitClock::seconds() {
    harvest(true);
    return seconds_;
}

CudaExpertTier::CudaExpertTier(const ModelConfig& config, const ModelWeights& host,
                               std::vector<kernels::ExpertWeights> tables, cuda::DevicePool& pool,
                               cpu::ThreadPool& cpu_pool, const CudaExpertTierOptions& options)
    : c_(config),
      host_(host),
      pool_(pool),
      cpu_pool_(cpu_pool),
      tables_(std::move(tables)),
      prefetch_(options.prefetch),
      prefetcher_(config, host),
      predicted_(static_cast<size_t>(config.n_layers)),
      staging_{cuda::PinnedBuffer(kStagingBytes), cuda::PinnedBuffer(kStagingBytes)} {
    // The rates of this machine, measured now (a fraction of a second): copies both ways of the
    // PCIe bus and within the GPU, the CPU's streaming read, and the CPU matmul rate for the
    // experts' type. The GPU's compute rate is not probed: GPU expert time is bytes over its
    // memory bandwidth, which holds until a few hundred tokens per expert.
    const cuda::TransferRates gpu = cuda::measure_transfer_rates(pool.device());
    offload::MachineRates rates;
    rates.cpu_mem_gbs = cpu::probe_read_bandwidth(cpu_pool, 256ull << 20, 2);
    rates.pcie_gbs = gpu.h2d_gbs;
    rates.gpu_mem_gbs = gpu.device_read_gbs;
    for (const LayerWeights& l : host.layers) {
        if (l.experts.gate.empty()) continue;
        const TensorType type = l.experts.gate[0].type;
        rates.cpu_gops = cpu::probe_matmul_rate(type, cpu::in_cache_matmul_shape(type, cpu_pool.size()), cpu_pool, 0.05);
        break;
    }
    cost_ = std::make_unique<offload::CostModel>(rates);
    spdlog::info("expert tier: host->GPU {:.1f} GB/s, GPU memory {:.0f} GB/s, CPU memory {:.1f} GB/s, CPU experts "
                 "{:.0f} GOP/s",
                 rates.pcie_gbs, rates.gpu_mem_gbs, rates.cpu_mem_gbs, rates.cpu_gops);

    layers_.resize(static_cast<size_t>(c_.n_layers));
    std::vector<uint64_t> slot_bytes(static_cast<size_t>(c_.n_layers), 0);
    std::vector<offload::ExpertSize> sizes(static_cast<size_t>(c_.n_layers));
    for (int64_t l = 0; l < c_.n_layers; ++l) {
        const ExpertSet& x = host.layers[static_cast<size_t>(l)].experts;
        if (tables_[static_cast<size_t>(l)].n_experts == 0 || x.gate.empty()) continue;
        Layer& L = layers_[static_cast<size_t>(l)];
        L.gate_bytes = cuda::align_up(matrix_bytes(x.gate[0]));
        L.up_bytes = cuda::align_up(matrix_bytes(x.up[0]));
        L.down_bytes = cuda::align_up(matrix_bytes(x.down[0]));
        L.slot_bytes = L.gate_bytes + L.up_bytes + L.down_bytes;
        slot_bytes[static_cast<size_t>(l)] = L.slot_bytes;
        const double params = static_cast<double>(x.gate[0].rows * x.gate[0].cols + x.up[0].rows * x.up[0].cols +
                                                  x.down[0].rows * x.down[0].cols);
        sizes[static_cast<size_t>(l)] = {static_cast<double>(matrix_bytes(x.gate[0]) + matrix_bytes(x.up[0]) +
                                                             matrix_bytes(x.down[0])),
                                         2.0 * params};
    }
    const std::vector<int64_t> slots = offload::slots_for_budget(slot_bytes, c_.n_experts, options.cache_bytes);
    for (int64_t l = 0; l < c_.n_layers; ++l) {
        Layer& L = layers_[static_cast<size_t>(l)];
        if (L.slot_bytes == 0) continue;
        const auto n = static_cast<uint64_t>(slots[static_cast<size_t>(l)]);
        if (n > 0)
            L.slots = pool.allocate(n * L.slot_bytes, cuda::MemoryUse::Weights,
                                    fmt::format("the expert cache of blk.{} ({} slots)", l, n));
        L.host_table = cuda::PinnedBuffer(3 * static_cast<size_t>(c_.n_experts) * sizeof(void*));
        std::memset(L.host_table.get(), 0, L.host_table.bytes());
    }
    cache_ = std::make_unique<offload::ExpertCache>(c_.n_experts, c_.n_experts_used, slots, options.policy);
    scheduler_ = std::make_unique<offload::MoeScheduler>(*cache_, *cost_, std::move(sizes), c_.n_experts_used,
                                                         options.misses);
}

CudaExpertTier::~CudaExpertTier() {
    cudaStreamSynchronize(copy_stream_.get());
    cudaGetLastError();
}

void CudaExpertTier::grow_host(int64_t n) {
    if (n <= host_tokens_) return;
    // Not charged to the budget's weights, and small: [n][k] ids and weights, [n][d_model] twice.
    const auto pairs = static_cast<size_t>(n * c_.n_experts_used);
    const auto acts = static_cast<size_t>(n * c_.d_model);
    host_ids_ = cuda::PinnedBuffer(pairs * sizeof(int32_t));
    host_gpu_ids_ = cuda::PinnedBuffer(pairs * sizeof(int32_t));
    host_weights_ = cuda::PinnedBuffer(pairs * sizeof(float));
    host_h_ = cuda::PinnedBuffer(acts * sizeof(float));
    host_out_ = cuda::PinnedBuffer(acts * sizeof(float));
    gpu_ids_ = pool_.allocate(pairs * sizeof(int32_t), cuda::MemoryUse::Scratch, "the GPU tier's expert ids");
    cpu_out_ = pool_.allocate(acts * sizeof(float), cuda::MemoryUse::Scratch, "the GPU tier's CPU output");
    host_tokens_ = n;
}

// Host -> slot through the double-buffered staging on the copy stream.
void CudaExpertTier::copy_expert(int64_t layer, int32_t expert, int32_t slot) {
    const ExpertSet& x = host_.layers[static_cast<size_t>(layer)].experts;
    Layer& L = layers_[static_cast<size_t>(layer)];
    auto* dst = L.slots.as<std::byte>() + static_cast<uint64_t>(slot) * L.slot_bytes;
    const auto e = static_cast<size_t>(expert);
    const cpu::MatrixRef* parts[3] = {&x.gate[e], &x.up[e], &x.down[e]};
    const uint64_t offsets[3] = {0, L.gate_bytes, L.gate_bytes + L.up_bytes};
    for (int j = 0; j < 3; ++j) {
        const uint64_t bytes = matrix_bytes(*parts[j]);
        for (uint64_t done = 0; done < bytes; done += kStagingBytes) {
            const uint64_t chunk = std::min(kStagingBytes, bytes - done);
            const size_t i = next_staging_;
            next_staging_ ^= 1;
            drained_[i].synchronize();
            std::memcpy(staging_[i].get(), parts[j]->data + done, chunk);
            cuda::check(cudaMemcpyAsync(dst + offsets[j] + done, staging_[i].get(), chunk, cudaMemcpyHostToDevice,
                                        copy_stream_.get()),
                        "cudaMemcpyAsync (expert to the GPU cache)");
            drained_[i].record(copy_stream_.get());
        }
    }
    cache_->counters(layer).bytes_loaded += matrix_bytes(x.gate[e]) + matrix_bytes(x.up[e]) + matrix_bytes(x.down[e]);
}

offload::MoePlan CudaExpertTier::prepare(int64_t layer, const int32_t* ids, const float* weights, const float* h,
                                         int64_t n, cudaStream_t stream) {
    const int64_t k = c_.n_experts_used, ne = c_.n_experts, pairs = n * k;
    // The previous layer's queued work (perhaps another session's, on another stream) reads the
    // pinned buffers and slots rewritten below.
    gpu_done_.synchronize();
    grow_host(n);
    // 1. the routing and the activations to the host
    cuda::check(cudaMemcpyAsync(host_ids_.get(), ids, static_cast<size_t>(pairs) * sizeof(int32_t),
                                cudaMemcpyDeviceToHost, stream),
                "cudaMemcpyAsync (routing to the host)");
    cuda::check(cudaMemcpyAsync(host_weights_.get(), weights, static_cast<size_t>(pairs) * sizeof(float),
                                cudaMemcpyDeviceToHost, stream),
                "cudaMemcpyAsync (routing weights to the host)");
    cuda::check(cudaMemcpyAsync(host_h_.get(), h, static_cast<size_t>(n * c_.d_model) * sizeof(float),
                                cudaMemcpyDeviceToHost, stream),
                "cudaMemcpyAsync (activations to the host)");
    cuda::check(cudaStreamSynchronize(stream), "cudaStreamSynchronize (routing)");
    const std::span<const int32_t> host_ids(static_cast<const int32_t*>(host_ids_.get()), static_cast<size_t>(pairs));
    const std::span<const float> host_weights(static_cast<const float*>(host_weights_.get()),
                                              static_cast<size_t>(pairs));
    for (int32_t e : host_ids)
        if (e < 0 || e >= ne) throw Error(fmt::format("blk.{}: the router chose expert {} of {}", layer, e, ne));

    // How well this layer was predicted, if it was.
    std::vector<int32_t>& predicted = predicted_[static_cast<size_t>(layer)];
    if (!predicted.empty()) {
        std::vector<int32_t> used(host_ids.begin(), host_ids.end());
        std::sort(used.begin(), used.end());
        used.erase(std::unique(used.begin(), used.end()), used.end());
        cache_->count_prediction(layer, predicted, used);
        predicted.clear();
    }

    // 2. the split
    offload::MoePlan plan = scheduler_->plan(layer, host_ids, host_weights, {});

    // 3. the copies (and any prefetched for this layer), the layer's pointer arrays after them,
    // and the GPU part's ids
    Layer& L = layers_[static_cast<size_t>(layer)];
    for (const offload::MoePlan::Copy& c : plan.copies) copy_expert(layer, c.expert, c.slot);
    if (!plan.copies.empty() || copies_pending_) {
        copied_.record(copy_stream_.get());
        copy_wait_.wait(stream, copied_.get());
        copies_pending_ = false;
    }
    auto* table = static_cast<const void**>(L.host_table.get());  // [gate | up | down][n_experts]
    for (int32_t e = 0; e < ne; ++e) {
        const int32_t slot = cache_->lookup(layer, e);
        const std::byte* p =
            slot < 0 ? nullptr : L.slots.as<std::byte>() + static_cast<uint64_t>(slot) * L.slot_bytes;
        table[e] = p;
        table[ne + e] = p == nullptr ? nullptr : p + L.gate_bytes;
        table[2 * ne + e] = p == nullptr ? nullptr : p + L.gate_bytes + L.up_bytes;
    }
    const kernels::ExpertWeights& w = tables_[static_cast<size_t>(layer)];
    // w.gate is the start of the layer's device pointer arrays ([gate | up | down]), which the
    // kernels see as const; this is the one place that writes them.
    void* device_table = const_cast<void*>(static_cast<const void*>(w.gate));
    cuda::check(cudaMemcpyAsync(device_table, table,
                                L.host_table.bytes(), cudaMemcpyHostToDevice, stream),
                "cudaMemcpyAsync (expert cache pointers)");
    std::memcpy(host_gpu_ids_.get(), plan.gpu_ids.data(), static_cast<size_t>(pairs) * sizeof(int32_t));
    cuda::check(cudaMemcpyAsync(gpu_ids_.get(), host_gpu_ids_.get(), static_cast<size_t>(pairs) * sizeof(int32_t),
                                cudaMemcpyHostToDevice, stream),
                "cudaMemcpyAsync (the GPU's expert ids)");
    return plan;
}

void CudaExpertTier::prefetch_next(int64_t layer, int64_t n) {
    if (n > offload::Prefetcher::kMaxTokens) return;
    const int64_t next = prefetcher_.next_moe_layer(layer);
    if (next < 0 || cache_->n_slots(next) == 0) return;
    const std::span<const int32_t> predicted = prefetcher_.predict(
        next, static_cast<const float*>(host_h_.get()), n, n * c_.n_experts_used, cpu_pool_);
    predicted_[static_cast<size_t>(next)].assign(predicted.begin(), predicted.end());
    for (int32_t e : predicted) {
        if (cache_->lookup(next, e) >= 0) continue;
        // The next layer's slots are not read before its own prepare(), which waits for these.
        const int32_t slot = cache_->place(next, e, predicted, true).slot;
        if (slot < 0) break;
        copy_expert(next, e, slot);
        copies_pending_ = true;
    }
}

void CudaExpertTier::finish(int64_t layer, const offload::MoePlan& plan, int64_t n, float* out, cudaStream_t stream) {
    // 4. the CPU part, while the GPU runs its own
    if (std::all_of(plan.cpu_ids.begin(), plan.cpu_ids.end(), [](int32_t e) { return e < 0; })) return;
    const ExpertSet& x = host_.layers[static_cast<size_t>(layer)].experts;
    auto* host_out = static_cast<float*>(host_out_.get());
    cpu::moe_experts(c_, x, static_cast<const float*>(host_h_.get()), n, plan.cpu_ids.data(),
                     static_cast<const float*>(host_weights_.get()), host_out, false, scratch_, cpu_pool_);
    const int64_t count = n * c_.d_model;
    cuda::check(cudaMemcpyAsync(cpu_out_.get(), host_out, static_cast<size_t>(count) * sizeof(float),
                                cudaMemcpyHostToDevice, stream),
                "cudaMemcpyAsync (the CPU's expert output)");
    cuda::check(kernels::add(out, cpu_out_.as<float>(), count, stream), "kernels::add (CPU experts)");
}

ExpertCacheStats CudaExpertTier::stats() const {
    std::lock_guard lock(mutex_);
    std::vector<uint64_t> slot_bytes;
    for (const Layer& L : layers_) slot_bytes.push_back(L.slot_bytes);
    ExpertCacheStats s = offload::cache_stats(*cache_, slot_bytes);
    s.tier = "gpu";
    for (const Layer& L : layers_) s.cache_bytes += L.slots.bytes();
    s.copy_wait_seconds = copy_wait_.seconds();
    return s;
}

}  // namespace hymoe
