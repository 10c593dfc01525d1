#include "offload/ram_tier.hpp"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "hymoe/error.hpp"

namespace hymoe::offload {

namespace {

using Clock = std::chrono::steady_clock;

std::vector<uint64_t> slot_sizes(const ExpertStore& store) {
    std::vector<uint64_t> bytes(static_cast<size_t>(store.n_layers()), 0);
    for (int64_t l = 0; l < store.n_layers(); ++l) bytes[static_cast<size_t>(l)] = store.slot_bytes(l);
    return bytes;
}

}  // namespace

double measure_file_read_gbs(const ExpertStore& store, uint64_t max_bytes, double max_seconds) {
    std::vector<int64_t> moe;
    uint64_t max_slot = 0;
    for (int64_t l = 0; l < store.n_layers(); ++l) {
        if (!store.is_moe(l) || store.expert_bytes(l) == 0) continue;
        moe.push_back(l);
        max_slot = std::max(max_slot, store.slot_bytes(l));
    }
    if (moe.empty() || store.n_experts() <= 0) return 0.0;
    AlignedBuffer slot(max_slot, ExpertStore::kAlign);  // [slot_bytes]
    const auto n_moe = static_cast<int64_t>(moe.size());
    const int64_t reads = n_moe * store.n_experts() + 1;  // each expert at most once, plus the untimed one
    // Experts 37 apart, layer after layer: misses are scattered, not neighbours in the file.
    const auto pick = [&](int64_t i) {
        const auto expert = static_cast<int32_t>((i / n_moe * 37 + 11) % store.n_experts());
        return std::pair{moe[static_cast<size_t>(i % n_moe)], expert};
    };
    {
        const auto [l, e] = pick(reads - 1);
        store.read(l, e, slot.data());
    }
    uint64_t bytes = 0;
    double seconds = 0;
    const auto start = Clock::now();
    for (int64_t i = 0; i + 1 < reads && bytes < max_bytes && (i == 0 || seconds < max_seconds); ++i) {
        const auto [l, e] = pick(i);
        store.read(l, e, slot.data());
        bytes += store.expert_bytes(l);
        seconds = std::chrono::duration<double>(Clock::now() - start).count();
    }
    return seconds > 0 ? static_cast<double>(bytes) / seconds / 1e9 : 0.0;
}

RamTier::RamTier(const ModelConfig& c, const ModelWeights& w, const ModelFile& file, uint64_t budget,
                 CachePolicyKind policy, const MachineRates& rates)
    : config_(c),
      store_(c, w, file),
      cache_(c.n_experts, c.n_experts_used, slots_for_budget(slot_sizes(store_), c.n_experts, budget), policy) {
    slots_.resize(static_cast<size_t>(c.n_layers));
    for (int64_t l = 0; l < c.n_layers; ++l) {
        LayerSlots& s = slots_[static_cast<size_t>(l)];
        const auto n = static_cast<size_t>(cache_.n_slots(l));
        const uint64_t bytes = store_.slot_bytes(l);
        max_slot_bytes_ = std::max(max_slot_bytes_, bytes);
        s.memory = AlignedBuffer(n * bytes, ExpertStore::kAlign);
        s.ready.assign(n, 0);
        s.failed.assign(n, 0);
        cache_bytes_ += n * bytes;
    }
    staging_experts_ = c.n_experts_used;
    view_.gate.resize(static_cast<size_t>(c.n_experts));
    view_.up.resize(static_cast<size_t>(c.n_experts));
    view_.down.resize(static_cast<size_t>(c.n_experts));
    in_part_.assign(static_cast<size_t>(c.n_experts), 0);

    if (rates.cpu_mem_gbs > 0) {
        size_.resize(static_cast<size_t>(c.n_layers));
        for (int64_t l = 0; l < c.n_layers; ++l) {
            const ExpertSet& x = w.layers[static_cast<size_t>(l)].experts;
            if (!store_.is_moe(l) || x.gate.empty()) continue;
            const double params = static_cast<double>(x.gate[0].rows * x.gate[0].cols + x.up[0].rows * x.up[0].cols +
                                                      x.down[0].rows * x.down[0].cols);
            size_[static_cast<size_t>(l)] = {static_cast<double>(store_.expert_bytes(l)), 2.0 * params};
        }
        // Up to 64 MiB or 0.1 s of reads: a fraction of a second at load, and enough expert-sized
        // reads to average over the disk's latency.
        MachineRates r = rates;
        if (r.file_read_gbs <= 0) r.file_read_gbs = measure_file_read_gbs(store_, 64ull << 20, 0.1);
        file_read_gbs_ = r.file_read_gbs;
        if (r.file_read_gbs > 0) cost_ = std::make_unique<CostModel>(r);
    }
}

RamTier::~RamTier() = default;

std::byte* RamTier::slot_data(int64_t layer, int32_t slot) const {
    return slots_[static_cast<size_t>(layer)].memory.data() +
           static_cast<uint64_t>(slot) * store_.slot_bytes(layer);
}

void RamTier::queue_load(int64_t layer, int32_t expert, int32_t slot, bool release_pin) {
    LayerSlots& s = slots_[static_cast<size_t>(layer)];
    s.ready[static_cast<size_t>(slot)] = 0;
    s.failed[static_cast<size_t>(slot)] = 0;
    loader_.enqueue([this, layer, expert, slot, release_pin] {
        const auto t0 = Clock::now();
        std::exception_ptr failure;
        try {
            store_.read(layer, expert, slot_data(layer, slot));
        } catch (...) {
            failure = std::current_exception();
        }
        const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        {
            std::lock_guard lk(m_);
            LayerSlots& ls = slots_[static_cast<size_t>(layer)];
            read_seconds_ += seconds;
            if (failure) {
                ls.failed[static_cast<size_t>(slot)] = 1;
                error_ = failure;
                cache_.forget(layer, slot);
            } else {
                ls.ready[static_cast<size_t>(slot)] = 1;
                cache_.counters(layer).bytes_loaded += store_.expert_bytes(layer);
            }
            if (release_pin) cache_.unpin(layer, slot);
        }
        loaded_.notify_all();
    });
}

void RamTier::wait_ready(std::unique_lock<std::mutex>& lk, int64_t layer, int32_t slot) {
    const LayerSlots& s = slots_[static_cast<size_t>(layer)];
    const auto i = static_cast<size_t>(slot);
    loaded_.wait(lk, [&] { return s.ready[i] != 0 || s.failed[i] != 0; });
    if (s.failed[i] != 0) std::rethrow_exception(error_);
}

void RamTier::compute(int64_t layer, const ExpertSet& experts, std::span<const Part> parts, const float* h,
                      int64_t n, const int32_t* ids, const float* weights, float* out, cpu::MoeScratch& scratch,
                      cpu::ThreadPool& pool) {
    if (parts.empty()) return;
    view_.gate_bias = experts.gate_bias;
    view_.up_bias = experts.up_bias;
    view_.down_bias = experts.down_bias;
    for (const Part& p : parts) {
        const ExpertView v = store_.view(layer, p.expert, p.data);
        const auto e = static_cast<size_t>(p.expert);
        view_.gate[e] = v.gate;
        view_.up[e] = v.up;
        view_.down[e] = v.down;
        in_part_[e] = 1;
    }
    const int64_t pairs = n * config_.n_experts_used;
    masked_ids_.resize(static_cast<size_t>(pairs));
    for (int64_t i = 0; i < pairs; ++i) masked_ids_[static_cast<size_t>(i)] = in_part_[static_cast<size_t>(ids[i])] ? ids[i] : -1;
    for (const Part& p : parts) in_part_[static_cast<size_t>(p.expert)] = 0;
    cpu::moe_experts(config_, view_, h, n, masked_ids_.data(), weights, out, true, scratch, pool);
}

void RamTier::run(int64_t layer, const ExpertSet& experts, const float* h, int64_t n, const int32_t* ids,
                  const float* weights, std::span<const float> probs, float* out, int64_t next_layer,
                  std::span<const int32_t> predicted, cpu::MoeScratch& scratch, cpu::ThreadPool& pool) {
    const int64_t k = config_.n_experts_used, ne = config_.n_experts;
    std::lock_guard run_lock(run_m_);
    std::unique_lock lk(m_);

    // The distinct experts, heaviest first (which misses get a slot when too few can be given up
    // depends on it), and the tokens routed to each.
    need_order_.order(std::span(ids, static_cast<size_t>(n * k)), std::span(weights, static_cast<size_t>(n * k)),
                      needed_, &tokens_);
    needed_sorted_ = needed_;
    std::sort(needed_sorted_.begin(), needed_sorted_.end());

    // How well this layer was predicted, if it was.
    LayerSlots& mine = slots_[static_cast<size_t>(layer)];
    CacheCounters& counters = cache_.counters(layer);
    if (!mine.predicted.empty()) {
        cache_.count_prediction(layer, mine.predicted, needed_sorted_);
        mine.predicted.clear();
    }

    // 1. hits, misses with a slot (queued), misses without one (staged)
    cache_.count_needs(layer, needed_, hit_);
    std::vector<Part> ready_now, loading, staged;
    std::vector<int32_t> pinned;
    ready_tokens_.clear();
    loading_tokens_.clear();
    staged_tokens_.clear();
    for (size_t i = 0; i < needed_.size(); ++i) {
        const int32_t e = needed_[i];
        const int64_t tokens = tokens_[i];
        int32_t slot = cache_.lookup(layer, e);
        if (!hit_[i]) {
            slot = cache_.place(layer, e, needed_).slot;
            if (slot < 0) {
                staged.push_back({e, nullptr, -1});
                staged_tokens_.push_back(tokens);
                continue;
            }
            queue_load(layer, e, slot, false);
        }
        cache_.pin(layer, slot);
        pinned.push_back(slot);
        const bool ready = mine.ready[static_cast<size_t>(slot)] != 0;
        (ready ? ready_now : loading).push_back({e, slot_data(layer, slot), slot});
        (ready ? ready_tokens_ : loading_tokens_).push_back(tokens);
    }
    // A prefetched expert still loading counts as a whole read, though part of it may be done.
    if (cost_)
        counters.predicted_seconds +=
            cost_->plan_ram_layer(ready_tokens_, loading_tokens_, staged_tokens_, size_[static_cast<size_t>(layer)])
                .seconds;
    // Pins hold every slot this run reads until it is done, whatever happens.
    struct Unpin {
        RamTier& tier;
        std::unique_lock<std::mutex>& lk;
        int64_t layer;
        std::vector<int32_t>& slots;
        ~Unpin() {
            if (!lk.owns_lock()) lk.lock();
            for (int32_t s : slots) tier.cache_.unpin(layer, s);
        }
    } unpin{*this, lk, layer, pinned};

    for (int64_t t = 0; t < n; ++t)
        cache_.observe(layer, std::span(ids + t * k, static_cast<size_t>(k)),
                       std::span(weights + t * k, static_cast<size_t>(k)),
                       probs.empty() ? std::span<const float>() : probs.subspan(static_cast<size_t>(t * ne), static_cast<size_t>(ne)));

    // 2. the next layer's predicted experts, behind this layer's misses
    if (next_layer >= 0 && !predicted.empty()) {
        LayerSlots& next = slots_[static_cast<size_t>(next_layer)];
        next.predicted.assign(predicted.begin(), predicted.end());
        for (int32_t e : predicted) {
            if (cache_.lookup(next_layer, e) >= 0) continue;
            const int32_t slot = cache_.place(next_layer, e, predicted, true).slot;
            if (slot < 0) break;
            cache_.pin(next_layer, slot);
            queue_load(next_layer, e, slot, true);
        }
    }

    // 3. compute: what is in RAM, then what was loading, then the staged experts
    lk.unlock();
    std::fill(out, out + n * config_.d_model, 0.0f);
    compute(layer, experts, ready_now, h, n, ids, weights, out, scratch, pool);
    if (!loading.empty()) {
        lk.lock();
        for (const Part& p : loading) wait_ready(lk, layer, p.slot);
        lk.unlock();
        compute(layer, experts, loading, h, n, ids, weights, out, scratch, pool);
    }
    if (!staged.empty()) {
        {
            std::lock_guard guard(m_);
            if (staging_.data() == nullptr)
                staging_ = AlignedBuffer(static_cast<size_t>(staging_experts_) * max_slot_bytes_, ExpertStore::kAlign);
        }
        for (size_t first = 0; first < staged.size(); first += static_cast<size_t>(staging_experts_)) {
            const size_t count = std::min(staged.size() - first, static_cast<size_t>(staging_experts_));
            const auto t0 = Clock::now();
            for (size_t j = 0; j < count; ++j) {
                std::byte* area = staging_.data() + j * max_slot_bytes_;
                store_.read(layer, staged[first + j].expert, area);
                staged[first + j].data = area;
            }
            const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
            {
                std::lock_guard guard(m_);
                read_seconds_ += seconds;
                counters.bytes_loaded += count * store_.expert_bytes(layer);
            }
            compute(layer, experts, std::span(staged).subspan(first, count), h, n, ids, weights, out, scratch, pool);
        }
    }
}

ExpertCacheStats RamTier::stats() const {
    std::lock_guard lk(m_);
    ExpertCacheStats s = cache_stats(cache_, slot_sizes(store_));
    s.tier = "ram";
    s.file_read_gbs = file_read_gbs_;
    s.cache_bytes = cache_bytes_;
    s.staging_bytes = staging_.size();
    s.read_seconds = read_seconds_;
    return s;
}

}  // namespace hymoe::offload
