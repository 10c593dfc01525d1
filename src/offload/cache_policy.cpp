#include "offload/cache_policy.hpp"

#include <algorithm>
#include <array>
#include <numeric>

#include <fmt/format.h>

#include "hymoe/error.hpp"

namespace hymoe::offload {

namespace {

constexpr std::array kPolicies = {CachePolicyKind::Lru, CachePolicyKind::Lfu, CachePolicyKind::Score,
                                  CachePolicyKind::Adaptive};

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

// The experts the score credits at one step and with what: the router's top P by probability
// (ties to the lower id) and their probabilities, or without probabilities (a trace of routing
// weights only) the used experts and their routing weights, which stand in for s.
class ScoreCredit {
public:
    ScoreCredit(int64_t n_experts, int64_t top_p) : top_p_(std::min(n_experts, top_p)), order_(static_cast<size_t>(n_experts)) {}

    void set(std::span<const int32_t> used, std::span<const float> weights, std::span<const float> probs) {
        experts_.clear();
        credit_.clear();
        if (probs.size() == order_.size()) {
            std::iota(order_.begin(), order_.end(), 0);
            const auto p = static_cast<ptrdiff_t>(top_p_);
            std::partial_sort(order_.begin(), order_.begin() + p, order_.end(), [&](int32_t x, int32_t y) {
                const float px = probs[static_cast<size_t>(x)], py = probs[static_cast<size_t>(y)];
                return px > py || (px == py && x < y);
            });
            for (ptrdiff_t i = 0; i < p; ++i) {
                experts_.push_back(order_[static_cast<size_t>(i)]);
                credit_.push_back(probs[static_cast<size_t>(order_[static_cast<size_t>(i)])]);
            }
        } else {
            for (size_t i = 0; i < used.size(); ++i) {
                experts_.push_back(used[i]);
                credit_.push_back(i < weights.size() ? weights[i] : 1.0f);
            }
        }
    }

    // S <- (1-a)·S, then S[e] += a·credit for the credited experts.
    void apply(std::vector<double>& score, double a) const {
        for (double& v : score) v *= 1.0 - a;
        for (size_t i = 0; i < experts_.size(); ++i) score[static_cast<size_t>(experts_[i])] += a * credit_[i];
    }

private:
    int64_t top_p_;
    std::vector<int32_t> order_;  // scratch of the partial sort
    std::vector<int32_t> experts_;
    std::vector<double> credit_;
};

int64_t score_top_p(const ScorePolicyParams& p, int64_t n_used) {
    return p.top_p > 0 ? p.top_p : 2 * n_used;
}

// HybriMoE: an exponentially decayed router probability, counted only while the expert is among
// the router's top P. Unlike LRU it remembers the experts that were nearly chosen, and unlike
// LFU it forgets.
class ScorePolicy final : public RecencyBase {
public:
    ScorePolicy(int64_t n_experts, int64_t n_used, const ScorePolicyParams& p)
        : RecencyBase(n_experts), a_(p.a), credit_(n_experts, score_top_p(p, n_used)), score_(static_cast<size_t>(n_experts), 0.0) {}

protected:
    void update(std::span<const int32_t> used, std::span<const float> weights,
                std::span<const float> probs) override {
        credit_.set(used, weights, probs);
        credit_.apply(score_, a_);
    }
    double value(int32_t e) const override { return score_[static_cast<size_t>(e)]; }

private:
    double a_;
    ScoreCredit credit_;
    std::vector<double> score_;
};

// The score at several decays (and LFU), each judged by a shadow pool of the layer's size run
// on the same steps as the real pool is run (misses in the scheduler's order, victims among the
// residents the step does not need); the real pool evicts by the one whose shadow hit most lately. Which decay
// fits depends on how fast the routing's popular experts change, which differs between models,
// layers and texts: the layer measures it rather than the constant guessing it.
class AdaptivePolicy final : public RecencyBase {
public:
    AdaptivePolicy(int64_t n_experts, int64_t n_used, const ScorePolicyParams& p, int64_t slots)
        : RecencyBase(n_experts), slots_(static_cast<size_t>(std::max<int64_t>(slots, 0))),
          credit_(n_experts, score_top_p(p, n_used)) {
        for (double a : kDecays) {
            Shadow s;
            s.a = a;
            s.value.assign(static_cast<size_t>(n_experts), 0.0);
            s.in_pool.assign(static_cast<size_t>(n_experts), 0);
            shadows_.push_back(std::move(s));
        }
        best_ = shadows_.size() - 1;
    }

protected:
    void update(std::span<const int32_t> used, std::span<const float> weights,
                std::span<const float> probs) override {
        need_order_.order(used, weights, needed_);
        needed_sorted_ = needed_;
        std::sort(needed_sorted_.begin(), needed_sorted_.end());
        credit_.set(used, weights, probs);
        for (Shadow& s : shadows_) {
            // The pool is replayed with the values from before this step, as the real pool chose.
            if (slots_ > 0) replay(s);
            if (s.a > 0) {
                credit_.apply(s.value, s.a);
            } else {
                for (int32_t e : used) s.value[static_cast<size_t>(e)] += 1.0;
            }
        }
        best_ = 0;
        for (size_t i = 1; i < shadows_.size(); ++i)
            if (shadows_[i].hits >= shadows_[best_].hits) best_ = i;
    }
    double value(int32_t e) const override { return shadows_[best_].value[static_cast<size_t>(e)]; }

private:
    // HybriMoE's a, two slower ones, and 0: use counts (LFU). Listed fastest first: ties go to
    // the later, slower one.
    static constexpr std::array<double, 4> kDecays = {0.5, 0.1, 0.02, 0.0};
    static constexpr double kHitDecay = 1.0 - 1.0 / 256.0;  // a shadow's hits count over ~256 steps

    struct Shadow {
        double a = 0;
        std::vector<double> value;    // [n_experts] the score (a > 0) or the use count
        std::vector<uint8_t> in_pool;  // [n_experts]
        std::vector<int32_t> pool;    // [<= slots]
        double hits = 0;
    };

    void replay(Shadow& s) {
        s.hits *= kHitDecay;
        for (int32_t e : needed_)
            if (s.in_pool[static_cast<size_t>(e)]) s.hits += 1.0;
        for (int32_t e : needed_) {
            if (s.in_pool[static_cast<size_t>(e)]) continue;
            if (s.pool.size() < slots_) {
                s.pool.push_back(e);
                s.in_pool[static_cast<size_t>(e)] = 1;
                continue;
            }
            // The victim among the residents this step does not need: the lowest value, then
            // the least recently used, then the lowest id (RecencyBase::victim's order). A
            // resident's last use is not this step's, so the recency is as the real pool saw it.
            size_t victim = s.pool.size();
            for (size_t i = 0; i < s.pool.size(); ++i) {
                const int32_t r = s.pool[i];
                if (std::binary_search(needed_sorted_.begin(), needed_sorted_.end(), r)) continue;
                if (victim == s.pool.size() || less_valuable(s, r, s.pool[victim])) victim = i;
            }
            if (victim == s.pool.size()) continue;  // every resident is needed: computed uncached
            s.in_pool[static_cast<size_t>(s.pool[victim])] = 0;
            s.pool[victim] = e;
            s.in_pool[static_cast<size_t>(e)] = 1;
        }
    }

    bool less_valuable(const Shadow& s, int32_t x, int32_t y) const {
        const double vx = s.value[static_cast<size_t>(x)], vy = s.value[static_cast<size_t>(y)];
        if (vx != vy) return vx < vy;
        if (last_use(x) != last_use(y)) return last_use(x) < last_use(y);
        return x < y;
    }

    size_t slots_;
    ScoreCredit credit_;
    std::vector<Shadow> shadows_;
    size_t best_;
    NeedOrder need_order_;
    std::vector<int32_t> needed_;         // this step's distinct experts, heaviest first (the scheduler's order)
    std::vector<int32_t> needed_sorted_;  // the same, ascending
};

}  // namespace

void NeedOrder::order(std::span<const int32_t> ids, std::span<const float> weights, std::vector<int32_t>& needed,
                      std::vector<int64_t>* tokens) {
    needs_.clear();
    for (size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] < 0) continue;
        needs_.push_back({ids[i], i < weights.size() ? static_cast<double>(weights[i]) : 0.0, 1});
    }
    std::sort(needs_.begin(), needs_.end(), [](const Need& a, const Need& b) { return a.expert < b.expert; });
    size_t w = 0;
    for (size_t i = 0; i < needs_.size(); ++i) {
        if (w > 0 && needs_[w - 1].expert == needs_[i].expert) {
            needs_[w - 1].weight += needs_[i].weight;
            needs_[w - 1].tokens += needs_[i].tokens;
        } else {
            needs_[w++] = needs_[i];
        }
    }
    needs_.resize(w);
    std::stable_sort(needs_.begin(), needs_.end(), [](const Need& a, const Need& b) { return a.weight > b.weight; });
    needed.clear();
    if (tokens != nullptr) tokens->clear();
    for (const Need& n : needs_) {
        needed.push_back(n.expert);
        if (tokens != nullptr) tokens->push_back(n.tokens);
    }
}

CachePolicyKind parse_cache_policy(std::string_view name) {
    for (CachePolicyKind k : kPolicies)
        if (cache_policy_name(k) == name) return k;
    throw Error(fmt::format("--cache-policy '{}': expected lru, lfu, score or adaptive", name));
}

std::string_view cache_policy_name(CachePolicyKind kind) {
    switch (kind) {
        case CachePolicyKind::Lru: return "lru";
        case CachePolicyKind::Lfu: return "lfu";
        case CachePolicyKind::Score: return "score";
        case CachePolicyKind::Adaptive: return "adaptive";
    }
    return "?";
}

std::span<const CachePolicyKind> all_cache_policies() {
    return kPolicies;
}

bool policy_reads_probs(CachePolicyKind kind) {
    return kind == CachePolicyKind::Score || kind == CachePolicyKind::Adaptive;
}

std::unique_ptr<CachePolicy> make_cache_policy(CachePolicyKind kind, int64_t n_experts, int64_t n_experts_used,
                                               const ScorePolicyParams& score, int64_t slots) {
    switch (kind) {
        case CachePolicyKind::Lru: return std::make_unique<LruPolicy>(n_experts);
        case CachePolicyKind::Lfu: return std::make_unique<LfuPolicy>(n_experts);
        case CachePolicyKind::Score: return std::make_unique<ScorePolicy>(n_experts, n_experts_used, score);
        case CachePolicyKind::Adaptive:
            return std::make_unique<AdaptivePolicy>(n_experts, n_experts_used, score, slots);
    }
    throw Error("unknown cache policy");
}

}  // namespace hymoe::offload
