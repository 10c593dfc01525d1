#include "offload/cache_policy.hpp"

#include <algorithm>
#include <array>
#include <numeric>

#include <fmt/format.h>

#include "hymoe/error.hpp"

namespace hymoe::offload {

namespace {

constexpr std::array kPolicies = {CachePolicyKind::Lru, CachePolicyKind::Lfu, CachePolicyKind::Score};

// Recency, which every policy keeps for its tie-break.
class RecencyBase : public CachePolicy {
public:
    explicit RecencyBase(int64_t n_experts) : last_use_(static_cast<size_t>(n_experts), 0) {}

    void observe(std::span<const int32_t> used, std::span<const float> weights,
                 std::span<const float> probs) override {
        ++step_;
        for (int32_t e : used) last_use_[static_cast<size_t>(e)] = step_;
        update(used, weights, probs);
    }

    int32_t victim(std::span<const int32_t> candidates) const override {
        int32_t best = candidates[0];
        for (int32_t e : candidates.subspan(1)) {
            const double ve = value(e), vb = value(best);
            const uint64_t le = last_use_[static_cast<size_t>(e)], lb = last_use_[static_cast<size_t>(best)];
            if (ve < vb || (ve == vb && (le < lb || (le == lb && e < best)))) best = e;
        }
        return best;
    }

protected:
    virtual void update(std::span<const int32_t> used, std::span<const float> weights,
                        std::span<const float> probs) = 0;
    virtual double value(int32_t expert) const = 0;
    uint64_t last_use(int32_t e) const { return last_use_[static_cast<size_t>(e)]; }

private:
    std::vector<uint64_t> last_use_;  // step of the last use; 0 = never
    uint64_t step_ = 0;
};

class LruPolicy final : public RecencyBase {
public:
    using RecencyBase::RecencyBase;

protected:
    void update(std::span<const int32_t>, std::span<const float>, std::span<const float>) override {}
    double value(int32_t e) const override { return static_cast<double>(last_use(e)); }
};

// Counts uses since the start (no aging): what llama.cpp's "hot expert" PRs and kTransformers'
// static placement approximate.
class LfuPolicy final : public RecencyBase {
public:
    explicit LfuPolicy(int64_t n_experts) : RecencyBase(n_experts), uses_(static_cast<size_t>(n_experts), 0) {}

protected:
    void update(std::span<const int32_t> used, std::span<const float>, std::span<const float>) override {
        for (int32_t e : used) ++uses_[static_cast<size_t>(e)];
    }
    double value(int32_t e) const override { return static_cast<double>(uses_[static_cast<size_t>(e)]); }

private:
    std::vector<uint64_t> uses_;
};

// HybriMoE: an exponentially decayed router probability, counted only while the expert is among
// the router's top P. Unlike LRU it remembers the experts that were nearly chosen, and unlike
// LFU it forgets. Without probabilities (a trace of routing weights only), the routing weights
// of the used experts stand in for s.
class ScorePolicy final : public RecencyBase {
public:
    ScorePolicy(int64_t n_experts, int64_t n_used, const ScorePolicyParams& p)
        : RecencyBase(n_experts),
          a_(p.a),
          top_p_(std::min(n_experts, p.top_p > 0 ? p.top_p : 2 * n_used)),
          score_(static_cast<size_t>(n_experts), 0.0),
          order_(static_cast<size_t>(n_experts)) {}

protected:
    void update(std::span<const int32_t> used, std::span<const float> weights,
                std::span<const float> probs) override {
        for (double& s : score_) s *= 1.0 - a_;
        if (probs.size() == score_.size()) {
            std::iota(order_.begin(), order_.end(), 0);
            const auto p = static_cast<ptrdiff_t>(top_p_);
            std::partial_sort(order_.begin(), order_.begin() + p, order_.end(), [&](int32_t x, int32_t y) {
                const float px = probs[static_cast<size_t>(x)], py = probs[static_cast<size_t>(y)];
                return px > py || (px == py && x < y);
            });
            for (ptrdiff_t i = 0; i < p; ++i) {
                const auto e = static_cast<size_t>(order_[static_cast<size_t>(i)]);
                score_[e] += a_ * probs[e];
            }
        } else {
            for (size_t i = 0; i < used.size(); ++i)
                score_[static_cast<size_t>(used[i])] += a_ * (i < weights.size() ? weights[i] : 1.0f);
        }
    }
    double value(int32_t e) const override { return score_[static_cast<size_t>(e)]; }

private:
    double a_;
    int64_t top_p_;
    std::vector<double> score_;
    std::vector<int32_t> order_;
};

}  // namespace

CachePolicyKind parse_cache_policy(std::string_view name) {
    for (CachePolicyKind k : kPolicies)
        if (cache_policy_name(k) == name) return k;
    throw Error(fmt::format("--cache-policy '{}': expected lru, lfu or score", name));
}

std::string_view cache_policy_name(CachePolicyKind kind) {
    switch (kind) {
        case CachePolicyKind::Lru: return "lru";
        case CachePolicyKind::Lfu: return "lfu";
        case CachePolicyKind::Score: return "score";
    }
    return "?";
}

std::span<const CachePolicyKind> all_cache_policies() {
    return kPolicies;
}

std::unique_ptr<CachePolicy> make_cache_policy(CachePolicyKind kind, int64_t n_experts, int64_t n_experts_used,
                                               const ScorePolicyParams& score) {
    switch (kind) {
        case CachePolicyKind::Lru: return std::make_unique<LruPolicy>(n_experts);
        case CachePolicyKind::Lfu: return std::make_unique<LfuPolicy>(n_experts);
        case CachePolicyKind::Score: return std::make_unique<ScorePolicy>(n_experts, n_experts_used, score);
    }
    throw Error("unknown cache policy");
}

}  // namespace hymoe::offload
